"""`--cluster tls://HOST:PORT`: a real `dask scheduler` and two `dask worker` processes talking TLS
only, on loopback, with certificates from a CA the test makes (tests/tls_certs.py).

A grid batch runs through them and its PDFs come back; a worker whose certificate comes from
another CA never joins; a client without the TLS settings, or with the wrong CA or certificate,
gets one line at once instead of a hang. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_notebook, pdf_text
from tests.helpers import free_port, wait_for, wait_until_listening
from tests.tls_certs import TestCA
from toolkit.batch.dask_cluster import DaskExecutor
from toolkit.batch.dask_tls import tls_files
from toolkit.errors import ClusterUnreachableError, UsageError

DASK = str(Path(sys.executable).with_name("dask"))
GRID = """
import toolkit as tk
tk.metric("n", n, label=f"Member number {n} over TLS")
"""


class TlsCluster:
    def __init__(self, folder: Path):
        self.folder = folder
        self.ca, self.other_ca = TestCA(folder / "ca", "nbpress-test-ca"), TestCA(folder / "other", "someone-else")
        self.client_cert, self.client_key = self.ca.issue("client")
        self.port = free_port()
        self.address = f"tls://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.logs: dict[str, Path] = {}

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of an `nbpress` client with this cluster's settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}
        env.update(NBPRESS_DASK_TLS_CA=str(self.ca.ca_file), NBPRESS_DASK_TLS_CERT=str(self.client_cert),
                   NBPRESS_DASK_TLS_KEY=str(self.client_key))
        env.update(overrides)
        return {k: v for k, v in env.items() if v}

    def start(self, name: str, *args: str, ca: TestCA | None = None) -> subprocess.Popen:
        """`dask scheduler|worker ...` with a certificate of ``ca`` (default: the cluster's CA)."""
        cert, key = (ca or self.ca).issue(name)
        tls = ["--tls-ca-file", str(self.ca.ca_file), "--tls-cert", str(cert), "--tls-key", str(key)]
        self.logs[name] = self.folder / f"{name}.log"
        # Cold kernels: one member per worker does not repay a kernel fork server (13 s instead of 45 s here).
        env = dict(os.environ, DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION="True", NBPRESS_FORK_KERNELS="false")
        with self.logs[name].open("w") as log:
            process = subprocess.Popen([DASK, *args, *tls], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder)
        self.processes.append(process)
        return process

    def worker(self, name: str, *extra: str, ca: TestCA | None = None) -> subprocess.Popen:
        return self.start(name, "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                          "--local-directory", str(self.folder / name), *extra, ca=ca)

    def log(self, name: str) -> str:
        return self.logs[name].read_text()

    def workers(self) -> int:
        """How many workers the scheduler has, asked over TLS with the client's certificate."""
        from distributed import Client

        with Client(self.address, security=tls_files(self.address, self.env()).security(), timeout=10) as client:
            return len(client.scheduler_info()["workers"])

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(5)  # a worker closing politely may wait for its gone scheduler: no need
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def certs(tmp_path):
    """The CAs and the client's certificate; no process started."""
    return TlsCluster(tmp_path)


@pytest.fixture
def cluster(certs):
    """A TLS-only scheduler and two workers (one cluster per test: start-up is the cost, so one test uses it)."""
    try:
        scheduler = certs.start("scheduler", "scheduler", "--protocol", "tls", "--host", "127.0.0.1",
                                "--port", str(certs.port), "--no-dashboard")
        wait_until_listening(certs.port, scheduler, timeout=60, name="the TLS scheduler")
        for name in ("worker-1", "worker-2"):
            certs.worker(name)
        wait_for(lambda: sum(certs.log(w).count("Registered to:") for w in ("worker-1", "worker-2")) == 2,
                 timeout=60, what="both workers registered", interval=0.3)
        yield certs
    finally:
        certs.stop()


def _nbpress(*args: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("nbpress")
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_grid_runs_on_the_tls_cluster_and_strangers_are_refused(cluster, project, proof, monkeypatch):
    proof.case("concurrency", "a grid batch on a Dask cluster over TLS",
               "two TLS-only workers run the members; every PDF comes back to the submitting side")
    proof.case("bad input", "a Dask worker with a certificate from another CA",
               "the TLS scheduler refuses it: it never joins and exits; the cluster keeps its two workers")
    rogue = cluster.worker("rogue", "--death-timeout", "5", ca=cluster.other_ca)  # tries while the batch runs
    make_notebook(project.notebooks_dir / "grid.ipynb", "n: int = 1", GRID)
    (project.notebooks_dir / "grid.yml").write_text(yaml.safe_dump({"title": "TLS Grid"}))
    result = _nbpress("run", "grid", "--grid", "n=1,2", "--cluster", cluster.address, cwd=project.root, env=cluster.env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("2 of 2 succeeded in ")
    folders = sorted((project.runs_dir / "grid").iterdir())
    assert len(folders) == 2
    for folder in folders:
        n = json.loads((folder / "run.json").read_text())["parameters"]["n"]
        assert f"Member number {n} over TLS" in pdf_text(folder / "report.pdf")
    assert "Receive client connection" in cluster.log("scheduler")  # this scheduler, over TLS, ran them

    assert rogue.wait(60) != 0  # gave up: the scheduler never let it register
    assert "Registered to:" not in cluster.log("rogue")
    assert "CERTIFICATE_VERIFY_FAILED" in cluster.log("scheduler")
    assert cluster.workers() == 2

    rogue_cert, rogue_key = cluster.other_ca.issue("rogue-client")
    cases = [  # (settings changed, the line the client gets)
        ({"NBPRESS_DASK_TLS_CA": str(cluster.other_ca.ca_file)},
         "the scheduler's certificate is not signed by the CA in NBPRESS_DASK_TLS_CA"),
        ({"NBPRESS_DASK_TLS_CERT": str(rogue_cert), "NBPRESS_DASK_TLS_KEY": str(rogue_key)},
         "the scheduler refused this client's certificate (NBPRESS_DASK_TLS_CERT)"),
    ]
    for changed, reason in cases:
        for name, value in cluster.env(**changed).items():
            if name.startswith("NBPRESS_DASK_TLS_"):
                monkeypatch.setenv(name, value)
        started = time.monotonic()
        with pytest.raises(ClusterUnreachableError) as refused:
            DaskExecutor(cluster.address).__enter__()
        assert time.monotonic() - started < 15
        assert str(refused.value) == f"TLS handshake with the Dask scheduler at {cluster.address} failed: {reason}"


def test_a_client_without_its_tls_settings_is_one_line_at_once(certs, project):
    make_notebook(project.notebooks_dir / "grid.ipynb", "n: int = 1", GRID)
    started = time.monotonic()
    result = _nbpress("run", "grid", "--grid", "n=1,2", "--cluster", certs.address, cwd=project.root,
                      env=certs.env(NBPRESS_DASK_TLS_CA=""), timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"nbpress: error: --cluster {certs.address}: set NBPRESS_DASK_TLS_CA to the CA that signed the scheduler's"
        " and workers' certificates (see docs/scale-out.md)"]
    missing = certs.folder / "nowhere.pem"
    result = _nbpress("run", "grid", "--cluster", certs.address, cwd=project.root,
                      env=certs.env(NBPRESS_DASK_TLS_KEY=str(missing)), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"nbpress: error: NBPRESS_DASK_TLS_KEY: no such file: {missing}"]
    assert not project.runs_dir.exists()


def test_tls_files_are_only_for_tls_addresses(tmp_path):
    assert tls_files("tcp://127.0.0.1:8786", {}) is None
    assert tls_files(None, {}) is None
    with pytest.raises(UsageError, match="set NBPRESS_DASK_TLS_CERT"):
        tls_files("tls://h:1", {"NBPRESS_DASK_TLS_CA": __file__})


def test_tls_to_a_scheduler_that_speaks_tcp_is_one_line(certs, monkeypatch):
    from distributed import LocalCluster

    for name, value in certs.env().items():
        if name.startswith("NBPRESS_DASK_TLS_"):
            monkeypatch.setenv(name, value)
    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", dashboard_address=":0") as plain:
        address = plain.scheduler_address.replace("tcp://", "tls://")
        with pytest.raises(ClusterUnreachableError) as refused:
            DaskExecutor(address).__enter__()
    assert str(refused.value) == (f"TLS handshake with the Dask scheduler at {address} failed: the other side closed"
                                  " the connection (a tcp:// scheduler, or not a Dask scheduler?)")
