"""The Dask executor on a real LocalCluster (2 worker processes), real kernels, real PDFs.

No shared filesystem is assumed: members execute and render in the workers' own scratch
folders, and their run folders reach the submitting side only as returned bytes.
"""

from __future__ import annotations

import json
import os
import time

import dask
import pytest
import yaml
from distributed import LocalCluster

from tests.conftest import cli, make_notebook, pdf_text
from tests.helpers import free_port
from toolkit.batch import members as batch
from toolkit.batch.dask_cluster import ClusterTarget, DaskExecutor, parse_cluster
from toolkit.errors import UsageError
from toolkit.inputs.spec import find_report

GRID = """
import os, toolkit as tk
if n == 2:
    raise ValueError("no data for member 2")
tk.metric("n", n, label=f"Member number {n}")
tk.metric("pid", os.getpid())
"""

# Kills the Dask worker process running this member (the first ancestor that is neither the
# kernel nor the fork server), as an out-of-memory kill or a lost machine would.
KILL_WORKER = """
import os, signal, time, psutil
if n == 2:
    worker = next(p for p in psutil.Process().parents()
                  if not any("forkserver" in a or "ipykernel" in a for a in p.cmdline()))
    assert any("multiprocessing" in a or "distributed" in a for a in worker.cmdline()), worker.cmdline()
    os.kill(worker.pid, signal.SIGKILL)
    time.sleep(60)
import toolkit as tk
tk.metric("n", n, label="Survivor")
"""


@pytest.fixture
def grid_project(project):
    make_notebook(project.notebooks_dir / "grid.ipynb", "n: int = 1", GRID)
    (project.notebooks_dir / "grid.yml").write_text(yaml.safe_dump({"title": "Grid Report"}))
    return project


def _run_json(run_dir) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _metric(run_dir, name: str):
    nb = json.loads((run_dir / "executed.ipynb").read_text())
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get("application/vnd.nbpress.record+json")
            if record and record["name"] == name:
                return record["value"]
    raise AssertionError(f"no metric {name!r} in {run_dir}")


def test_cluster_values_are_checked():
    assert parse_cluster("local:2") == ClusterTarget(workers=2)
    assert parse_cluster("tcp://10.0.0.5:8786") == ClusterTarget(address="tcp://10.0.0.5:8786")
    assert parse_cluster("tcp://sched.example.org:8786/").address == "tcp://sched.example.org:8786"
    assert parse_cluster("tls://sched.example.org:8786").address == "tls://sched.example.org:8786"
    for bad in ("local:0", "local:", "local:x", "10.0.0.5:8786", "http://h:8786", "tcp://h", "tcp://h:99999", ""):
        with pytest.raises(UsageError, match="--cluster"):
            parse_cluster(bad)


def test_a_grid_on_local_2_through_the_cli(grid_project):
    result = cli("run", "grid", "--grid", "n=1,2,3", "--cluster", "local:2", cwd=grid_project.root)
    assert result.returncode == 1, result.stderr  # one member failed
    rows = {line.split()[2]: line.split()[0] for line in result.stdout.splitlines()[1:-1]}
    assert rows == {"n=1": "succeeded", "n=2": "failed", "n=3": "succeeded"}
    assert "cell 1 raised ValueError: no data for member 2" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("2 of 3 succeeded in ")
    assert "Warning" not in result.stderr, result.stderr  # the cluster's own chatter stays out of the log

    folders = sorted((grid_project.runs_dir / "grid").iterdir())
    assert len(folders) == 3 and not [f for f in folders if f.name.startswith(".")]  # no staging left over
    by_n = {_run_json(f)["parameters"]["n"]: f for f in folders}
    for n in (1, 3):
        run_dir = by_n[n]
        assert {p.name for p in run_dir.iterdir()} >= {"executed.ipynb", "report.html", "report.pdf", "run.json", "assets"}
        record = _run_json(run_dir)
        assert record["status"] == "succeeded" and record["trigger"] == "batch"
        assert record["notebook"] == str(grid_project.notebooks_dir / "grid.ipynb")  # not the worker's copy
        text = pdf_text(run_dir / "report.pdf")
        assert "Grid Report" in text and f"Member number {n}" in text
    kernel_pids = {_metric(by_n[n], "pid") for n in (1, 3)}
    assert len(kernel_pids) == 2 and os.getpid() not in kernel_pids  # a fresh kernel process per run
    failed = by_n[2]
    assert {p.name for p in failed.iterdir()} == {"executed.ipynb", "run.json"}  # the evidence came back too
    record = _run_json(failed)
    assert record["status"] == "failed" and record["error"]["cell_index"] == 1
    assert record["error"]["evalue"] == "no data for member 2"


def test_over_tcp_no_shared_filesystem_and_a_dying_worker_fails_only_its_member(project, tmp_path):
    make_notebook(project.notebooks_dir / "kill.ipynb", "n: int = 1", KILL_WORKER)
    spec = find_report("kill", project.notebooks_dir)
    out = tmp_path / "submitted-runs"
    jobs = [batch.Job(i, label, prepared, project.root, out)
            for i, (label, prepared) in enumerate(batch.plan(spec, {}, [("n", ["1", "2"])]))]
    # An "existing" cluster reached over tcp:// (its scheduler does not retry a task whose
    # worker died, as `--cluster local:N` configures its own).
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    started = time.monotonic()
    with cluster, DaskExecutor(cluster.scheduler_address) as executor:
        assert executor.target.address.startswith("tcp://127.0.0.1:")
        outcomes = batch.run(jobs, executor)
    assert time.monotonic() - started < 50  # reported, not a hang

    survivor, killed = outcomes
    assert killed.status == "failed" and killed.run_dir is None
    assert killed.error == "the Dask worker died while running this member"
    assert survivor.status == "succeeded", survivor.error
    # It ran in another process, in that worker's own scratch folder (gone now), and what is
    # here was unpacked from the bytes it sent back.
    assert survivor.run_dir.parent == out / "kill"
    assert survivor.extra["worker_pid"] != os.getpid()
    worker_dir = survivor.extra["worker_dir"]
    assert not worker_dir.startswith(str(out)) and not os.path.exists(worker_dir)
    executed = json.loads((survivor.run_dir / "executed.ipynb").read_text())
    assert executed["metadata"]["papermill"]["output_path"].startswith(worker_dir)
    assert "Survivor" in pdf_text(survivor.run_dir / "report.pdf")
    assert sorted(p.name for p in (out / "kill").iterdir()) == [survivor.run_dir.name]


def test_bad_cluster_values_exit_2_with_one_line(grid_project):
    result = cli("run", "grid", "--grid", "n=1,2", "--cluster", "localhost:8786", cwd=grid_project.root)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "nbpress: error: --cluster 'localhost:8786': expected tcp://HOST:PORT or tls://HOST:PORT (a running Dask scheduler) or local:N"]
    result = cli("run", "grid", "--cluster", "local:2", "-w", "2", cwd=grid_project.root)
    assert result.returncode == 2 and "--workers is for this machine" in result.stderr
    assert not grid_project.runs_dir.exists()


def test_an_unreachable_scheduler_is_reported_fast(grid_project):
    port = free_port()  # a port nobody listens on
    started = time.monotonic()
    result = cli("run", "grid", "--grid", "n=1,2", "--cluster", f"tcp://127.0.0.1:{port}", cwd=grid_project.root)
    assert time.monotonic() - started < 30
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nbpress: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 5 s")
    assert not grid_project.runs_dir.exists()


def test_a_scheduler_without_workers_is_refused_not_waited_on_forever():
    from toolkit.errors import ClusterUnreachableError

    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", dashboard_address=":0") as scheduler_only:
        with pytest.raises(ClusterUnreachableError, match="has no workers .waited 1 s.; start some with `dask worker"):
            DaskExecutor(scheduler_only.scheduler_address, worker_wait=1).__enter__()
