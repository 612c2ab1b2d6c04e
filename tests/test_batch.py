"""Batches over a grid: fresh forked kernels (isolation), failures that do not stop the batch, summary."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.conftest import cli, make_notebook
from tests.helpers import pid_alive
from toolkit.batch import members as batch
from toolkit.batch.local import LocalExecutor
from toolkit.execute.forked_kernels import fork_available
from toolkit.inputs.spec import find_report

# Each member checks that nothing from an earlier run is visible, then leaves traces of its own:
# a global, an attribute on an imported module, a sys.modules entry and a matplotlib rcParam.
ISOLATION = """
import os, sys, json
import matplotlib.pyplot as plt
import toolkit as tk
leaks = []
if "leftover" in globals(): leaks.append("global variable")
if hasattr(json, "nbpress_mark"): leaks.append("module attribute")
if "sidefx" in sys.modules: leaks.append("sys.modules entry")
if plt.rcParams["lines.linewidth"] != 1.5: leaks.append("rcParams")
if leaks: raise AssertionError("visible from an earlier run: " + ", ".join(leaks))
leftover = i
json.nbpress_mark = i
sys.path.insert(0, os.getcwd()); import sidefx
plt.rcParams["lines.linewidth"] = 7
tk.metric("pid", os.getpid())
tk.metric("ppid", os.getppid())
tk.metric("numbers", float(__import__("numpy").random.random()))
tk.metric("frozen", __import__("gc").get_freeze_count())
"""


@pytest.mark.skipif(not fork_available(), reason="needs fork")
def test_every_member_gets_a_fresh_forked_kernel(project):
    make_notebook(project.notebooks_dir / "iso.ipynb", "i: int = 0", ISOLATION)
    (project.notebooks_dir / "sidefx.py").write_text("LOADED = True\n")
    spec = find_report("iso", project.notebooks_dir)
    members = batch.plan(spec, {}, [("i", ["1", "2", "3"])])
    jobs = [batch.Job(n, label, prepared, project.root) for n, (label, prepared) in enumerate(members)]
    with LocalExecutor(workers=1) as executor:  # one worker: the runs follow each other
        outcomes = batch.run(jobs, executor)
        server_pid = executor.server.process.pid
    assert [o.status for o in outcomes] == ["succeeded"] * 3, [o.error for o in outcomes]
    metrics = []
    for outcome in outcomes:
        nb = json.loads((outcome.run_dir / "executed.ipynb").read_text())
        found = {}
        for cell in nb["cells"]:
            for output in cell.get("outputs", []):
                record = output.get("data", {}).get("application/vnd.nbpress.record+json")
                if record:
                    found[record["name"]] = record["value"]
        metrics.append(found)
    assert len({m["pid"] for m in metrics}) == 3  # a new process every time
    assert {m["ppid"] for m in metrics} == {server_pid}  # forked by the template, not started cold
    assert len({m["numbers"] for m in metrics}) == 3  # random state is not inherited
    # The template's imports stay out of the kernels' garbage collections (gc.freeze before forking).
    assert all(m["frozen"] > 10_000 for m in metrics), [m["frozen"] for m in metrics]
    assert len({o.run_dir for o in outcomes}) == 3 and not any(pid_alive(m["pid"]) for m in metrics)


@pytest.fixture
def grid_project(project):
    make_notebook(
        project.notebooks_dir / "grid.ipynb",
        "n: int = 1\nregion: str = 'north'",
        """
        import toolkit as tk
        if n == 2 and region == "south":
            raise ValueError("no data for south 2")
        tk.metric("n", n, label=f"Region {region}")
        """,
    )
    spec = {"grid": {"region": ["north", "south"]}, "owner": "owner@example.com",
            "checks": [{"metric": "n", "max": 2}]}
    (project.notebooks_dir / "grid.yml").write_text(yaml.safe_dump(spec))
    return project


def test_a_failed_member_does_not_stop_the_batch(grid_project):
    result = cli("run", "grid", "--grid", "n=1,2,3", "-w", "2", cwd=grid_project.root)
    assert result.returncode == 1, result.stderr
    summary = result.stdout.strip().splitlines()
    assert summary[0].split() == ["status", "seconds", "member", "pdf", "or", "error"]
    rows = {" ".join(line.split()[2:4]): line.split()[0] for line in summary[1:-1]}
    assert rows == {"region=north n=1": "succeeded", "region=north n=2": "succeeded",  # the spec's keys first
                    "region=north n=3": "blocked", "region=south n=1": "succeeded",
                    "region=south n=2": "failed", "region=south n=3": "blocked"}
    assert "cell 1 raised ValueError: no data for south 2" in result.stdout
    assert summary[-1].startswith("3 of 6 succeeded in ")
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 6 and progress[-1].startswith("[6/6]")  # plain lines in a pipe
    folders = list((grid_project.runs_dir / "grid").iterdir())
    assert len(folders) == 6  # each member in its own folder
    blocked = [f for f in folders if json.loads((f / "run.json").read_text())["status"] == "blocked"]
    assert len(blocked) == 2 and all((f / "notification.eml").exists() for f in blocked)
    assert all(json.loads((f / "run.json").read_text())["trigger"] == "batch" for f in folders)


def test_a_bad_grid_value_refuses_the_whole_batch(grid_project):
    result = cli("run", "grid", "--grid", "n=1,two", cwd=grid_project.root)
    assert result.returncode == 2 and "parameter 'n': got 'two', expected int" in result.stderr
    result = cli("run", "grid", "--grid", "colour=red", cwd=grid_project.root)
    assert result.returncode == 2 and "grid: 'colour' is not a parameter" in result.stderr
    assert not grid_project.runs_dir.exists()


def test_parameters_given_leave_the_grid_and_no_grid_runs_once(grid_project):
    spec = find_report("grid", grid_project.notebooks_dir)
    labels = [label for label, _ in batch.plan(spec, {"region": "east"}, [("n", ["1", "2"])])]
    assert labels == ["n=1", "n=2"]
    assert [label for label, _ in batch.plan(spec, {}, [], use_spec_grid=False)] == ["(defaults)"]


def test_the_default_is_two_workers_per_cpu():
    """One worker renders while another waits on its kernel: faster on 2 cores (CHANGELOG)."""
    from toolkit.batch.local import default_workers

    assert default_workers() == 2 * (os.cpu_count() or 1)
    assert LocalExecutor().workers == default_workers()


@pytest.mark.skipif(not fork_available(), reason="needs fork")
def test_more_workers_than_cpus_when_asked_run_that_many_members_at_once(project):
    """-w above the CPU count is honoured: that many members are in flight at once."""
    from toolkit.runs.run_folder import load_run

    cpus = os.cpu_count() or 1
    count = 2 * cpus
    make_notebook(project.notebooks_dir / "nap.ipynb", "i: int = 0", "import time\ntime.sleep(2)")
    spec = find_report("nap", project.notebooks_dir)
    members = batch.plan(spec, {}, [("i", [str(n) for n in range(count)])])
    jobs = [batch.Job(n, label, prepared, project.root) for n, (label, prepared) in enumerate(members)]
    with LocalExecutor(workers=count) as executor:
        assert executor.workers == count
        outcomes = batch.run(jobs, executor)
    assert [o.status for o in outcomes] == ["succeeded"] * count, [o.error for o in outcomes]
    spans = [(r.started, r.finished) for r in (load_run(o.run_dir) for o in outcomes)]
    at_once = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert at_once > cpus, spans


@pytest.mark.skipif(not fork_available(), reason="needs fork")
def test_a_member_whose_worker_is_killed_is_marked_failed_in_its_folder(project, tmp_path):
    import multiprocessing.forkserver
    import signal
    import time

    import psutil

    started = tmp_path / "started"
    make_notebook(project.notebooks_dir / "slow.ipynb", "n: int = 1",
                  f"import pathlib, time\nif n == 2:\n    pathlib.Path({str(started)!r}).touch()\n    time.sleep(60)")
    spec = find_report("slow", project.notebooks_dir)
    jobs = [batch.Job(i, label, prepared, project.root) for i, (label, prepared) in enumerate(batch.plan(spec, {}, [("n", ["1", "2"])]))]
    with LocalExecutor(workers=1) as executor:
        outcomes = []
        for outcome in executor.run(jobs):
            outcomes.append(outcome)
            if outcome.index == 0:  # the only worker now runs n=2: kill it once its kernel has started
                deadline = time.monotonic() + 60
                while not started.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                template = psutil.Process(multiprocessing.forkserver._forkserver._forkserver_pid)
                for worker in template.children():
                    worker.send_signal(signal.SIGKILL)
    first, killed = sorted(outcomes, key=lambda o: o.index)
    assert first.status == "succeeded", first.error
    assert killed.status == "failed" and killed.error.startswith("worker lost"), killed.error
    record = json.loads((killed.run_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["error"]["type"] == "ExecutorError"
    assert record["error"]["stage"] == "execute" and record["error"]["message"] == killed.error
    assert killed.run_dir.name == jobs[1].run_id
