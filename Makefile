# Notebook Press. `make demo` and `make test` work on a fresh Debian machine with Python 3.11:
# they create .venv, install Python and Debian packages when missing, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check --no-input
export PIP_NO_INPUT := 1
export DEBIAN_FRONTEND := noninteractive

# WeasyPrint's native libraries and the fonts reports and charts use: DejaVu, then Noto for the
# scripts DejaVu lacks (fonts-noto-core ~42 MB: Arabic, Hebrew, ...; fonts-noto-cjk ~91 MB:
# Chinese, Japanese, Korean); fontconfig's fc-list tells which characters no font has. The tests
# add PDF text extraction (poppler-utils), and a PostgreSQL server and a Redis server the tests start themselves.
DEBIAN_RUNTIME := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig fonts-dejavu-core fonts-noto-core fonts-noto-cjk
DEBIAN_TEST := poppler-utils postgresql chromium redis-server
# The download benchmark (bench-portal): nginx serves the static baseline and the X-Accel-Redirect front; wrk loads them.
DEBIAN_BENCH := nginx wrk

.PHONY: demo test proof bench bench-batch bench-portal bench-capacity lab lint clean venv screenshots

demo: $(VENV)/.runtime
	$(BIN)/nbpress demo

test: $(VENV)/.test
	$(BIN)/python -m pytest -n 2 --durations=10 $(PYTEST_ARGS)

# The proof suite (tests/proof) with its full profiles: longer fuzzing, more and longer load;
# then docs/reliability.md is written from the run's results. `make test` runs the quick profiles.
# The scheduler's fault cases live beside its other tests.
PROOF_TESTS := tests/proof tests/test_schedule_ticks.py tests/test_schedule_daemon.py tests/test_schedule_leader.py tests/test_dask_tls.py tests/test_run_worker.py
proof: $(VENV)/.test
	NBPRESS_PROOF=full $(BIN)/python -m pytest -n 2 --durations=10 $(PROOF_TESTS) $(PYTEST_ARGS); \
	status=$$?; $(BIN)/python -m tests.proof.report; exit $$status

bench: $(VENV)/.test
	$(BIN)/python -m benchmarks.pipeline $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.cli_startup
	$(BIN)/python -m benchmarks.notifications

# A 16-member batch of the demo report: raw papermill+weasyprint loop vs --grid vs --cluster local:2.
bench-batch: $(VENV)/.test
	$(BIN)/python -m benchmarks.batch $(BENCH_ARGS)

# CPU seconds per sign-in, download, publication, mail and report run, for docs/capacity.md.
bench-capacity: $(VENV)/.test
	$(BIN)/python -m benchmarks.capacity $(BENCH_ARGS)

# Signed-in 1 MB downloads: gunicorn direct and behind nginx (X-Accel-Redirect) vs nginx static, three runs
# (the page quotes medians); then where one download's CPU goes (BEFORE=<another checkout>: that tree's
# portal and this one, stage by stage); then docs/performance.md from benchmarks/results/.
bench-portal: $(VENV)/.test
	@.ci/debian-packages $(DEBIAN_BENCH)
	rm -f benchmarks/results/portal-*.json
	for run in 1 2 3; do $(BIN)/python -m benchmarks.portal $(BENCH_ARGS) --json benchmarks/results/portal-$$run.json || exit 1; done
	$(BIN)/python -m benchmarks.portal_profile --profile --top 15 $(if $(BEFORE),--against $(BEFORE)) --json benchmarks/results/portal_profile.json
	$(BIN)/python -m benchmarks.performance_doc

# The README's pictures, made from the demo (nbpress demo, Chromium, pdftoppm): docs/screenshots/*.png.
screenshots: $(VENV)/.test
	$(BIN)/python docs/screenshots/make.py

# As root (containers, CI machines) Jupyter refuses to start without --allow-root.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
lab: $(VENV)/.runtime
	$(PIP) install -e '.[lab]'
	cd notebooks && ../$(BIN)/jupyter lab $(LAB_ROOT)

lint: $(VENV)/.test
	$(BIN)/python -m compileall -q toolkit publish_server tests benchmarks

venv: $(VENV)/.runtime

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip 2>&1 | grep -v 'is ignored' || true

# Stamps: reinstall when pyproject.toml or this file (its package lists) changes. pip's 'is ignored' warnings (package indexes
# configured with options pip does not know) are filtered; a real failure still fails the step (pipefail).
$(VENV)/.runtime: pyproject.toml Makefile | $(BIN)/python
	@.ci/debian-packages $(DEBIAN_RUNTIME)
	set -o pipefail; $(PIP) install -e . 2>&1 | { grep -v 'is ignored' || true; }
	touch $@

$(VENV)/.test: pyproject.toml Makefile $(VENV)/.runtime
	@.ci/debian-packages $(DEBIAN_RUNTIME) $(DEBIAN_TEST)
	set -o pipefail; $(PIP) install -e '.[test,scale]' 2>&1 | { grep -v 'is ignored' || true; }
	touch $@

clean:
	rm -rf $(VENV) runs data .pytest_cache
