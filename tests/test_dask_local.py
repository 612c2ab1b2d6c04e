"""``--cluster local:N`` on a real LocalCluster: run folders written in place, one member per
worker at a time, a worker killed with SIGKILL, and a start-up undone when the batch is refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import yaml

from tests.conftest import cli, make_notebook, pdf_text
from toolkit.batch import members as batch
from toolkit.batch.dask_cluster import DaskExecutor
from toolkit.inputs.grid import parse_grid_option
from toolkit.inputs.spec import find_report

# Member n=3 sleeps until the test kills its worker; the others take about a second each.
MEMBER = """
import time, toolkit as tk
time.sleep(60 if n == 3 else 0.5)
tk.metric("n", n, label=f"Member number {n}")
"""


@pytest.fixture
def jobs(project, tmp_path):
    make_notebook(project.notebooks_dir / "grid.ipynb", "n: int = 1", MEMBER)
    (project.notebooks_dir / "grid.yml").write_text(yaml.safe_dump({"title": "Grid Report"}))
    spec = find_report("grid", project.notebooks_dir)
    planned = batch.plan(spec, {}, [parse_grid_option("n=1,2,3,4,5")])
    return [batch.Job(i, label, prepared, project.root, tmp_path / "runs") for i, (label, prepared) in enumerate(planned)]


class _Watcher(threading.Thread):
    """Samples what the scheduler has handed each worker (every 50 ms) and kills, with SIGKILL,
    the worker process that has been running member n=3 for a second."""

    def __init__(self, executor: DaskExecutor):
        super().__init__(daemon=True)
        self.client, self.stop = executor.client, threading.Event()
        self.pids = self.client.run(os.getpid)  # worker address -> its process
        self.most_held, self.killed, self._since = 0, None, None

    def run(self) -> None:
        while not self.stop.is_set():
            processing = self.client.processing()
            self.most_held = max([self.most_held, *map(len, processing.values())])
            holder = next((w for w, keys in processing.items() if any(k.endswith("-2") for k in keys)), None)
            if holder and self.killed is None:
                self._since = self._since or time.monotonic()
                if time.monotonic() - self._since > 1.0:
                    self.killed = self.pids[holder]
                    os.kill(self.killed, signal.SIGKILL)
            time.sleep(0.05)


def test_local_cluster_members_write_in_place_one_per_worker_and_a_killed_worker_fails_its_member(jobs, project, tmp_path):
    with DaskExecutor("local:2") as executor:  # 4 worker processes, two per CPU
        watcher = _Watcher(executor)
        watcher.start()
        try:
            outcomes = batch.run(jobs, executor)
        finally:
            watcher.stop.set()
            watcher.join()

    # A member goes to a worker only when that worker is free: none waits behind a busy one
    # while another worker idles at the end of a batch.
    assert watcher.most_held == 1
    killed = outcomes[2]
    assert watcher.killed is not None and killed.status == "failed"
    assert killed.error == "the Dask worker died while running this member"
    # Its folder says so, instead of "running" for ever (nbpress history, nbpress prune).
    record = json.loads((killed.run_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["finished"]
    assert record["error"] == {"stage": "execute", "type": "ExecutorError", "message": killed.error,
                               "cell_index": None, "ename": None, "evalue": None}
    for outcome in outcomes[:2] + outcomes[3:]:
        assert outcome.status == "succeeded", outcome.error
        assert outcome.extra["worker_pid"] in watcher.pids.values()
        run_dir = outcome.run_dir
        # Written in place by the worker, as the local executor's workers do: no scratch copy.
        assert run_dir.parent == tmp_path / "runs" / "grid"
        assert {p.name for p in run_dir.iterdir()} == {"executed.ipynb", "report.html", "report.pdf", "run.json", "assets"}
        executed = json.loads((run_dir / "executed.ipynb").read_text())
        assert executed["metadata"]["papermill"]["output_path"] == str(run_dir / "executed.ipynb")
        assert json.loads((run_dir / "run.json").read_text())["notebook"] == str(project.notebooks_dir / "grid.ipynb")
        assert f"Member number {outcome.label.removeprefix('n=')}" in pdf_text(run_dir / "report.pdf")
    # Not retried on the other worker: member n=3 started once (its folder stays, like a local
    # executor's member whose worker died).
    started = [json.loads((d / "run.json").read_text())["parameters"]["n"] for d in (tmp_path / "runs" / "grid").iterdir()]
    assert sorted(started) == [1, 2, 3, 4, 5]


def test_a_started_cluster_is_stopped_when_the_batch_is_refused(project):
    this = psutil.Process()
    before = {p.pid for p in this.children(recursive=True)}
    executor = DaskExecutor("local:1").start()  # as the CLI does before planning
    started = {p.pid for p in this.children(recursive=True)} - before
    assert started  # the templates are already starting
    executor.__exit__(None, None, None)  # planning refused the grid: `with` was never entered
    left = [p for p in this.children(recursive=True) if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(p.cmdline())]  # multiprocessing's own, for this interpreter's life
    assert not left, [p.cmdline() for p in left]
    assert executor.local is None and executor.client is None


def test_a_bad_grid_value_on_local_2_is_refused_with_one_line(project):
    make_notebook(project.notebooks_dir / "grid.ipynb", "n: int = 1", MEMBER)
    result = cli("run", "grid", "--grid", "n=1,x", "--cluster", "local:2", cwd=project.root)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "parameter 'n'" in result.stderr, result.stderr
    assert not project.runs_dir.exists()


def test_the_worker_templates_quick_exit_stays_in_the_template():
    # Imported anywhere but multiprocessing's fork server, the module must not make the process
    # exit with status 0 whatever happened (a test importing every module would pass for good).
    for module in ("toolkit.batch.fork_template", "toolkit.batch.dask_worker_preload"):
        program = f"import {module}, sys; sys.exit(3)"
        result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
        assert result.returncode == 3, (module, result.stderr)
