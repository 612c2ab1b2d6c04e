"""Per-IP rate limits kept in memory:// count per process: several gunicorn workers on memory://
would each allow the full limit, so the portal refuses to run that way unless told to
(RATELIMIT_PER_PROCESS). Checked with a real gunicorn; the per-request backstop with the test client.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from publish_server import create_app
from publish_server.errors import ConfigError
from tests.conftest import ROOT
from tests.helpers import free_port

from .conftest import base_config

REFUSAL = ("setting RATELIMIT_STORAGE_URL: memory:// counts rate limits in each process, and gunicorn runs {n} worker "
           "processes (each would allow the full per-IP limits): use redis://... or set NBPRESS_RATELIMIT_PER_PROCESS=true")


@pytest.fixture
def instance(tmp_path) -> Path:
    folder = tmp_path / "instance"
    folder.mkdir(mode=0o700)
    (folder / "portal.toml").write_text(
        f'SECRET_KEY = "{"s" * 40}"\nJWT_SECRET = "{"j" * 40}"\nCOOKIE_SECURE = false\nMAIL_URL = "memory:"\n')
    return folder


def gunicorn(instance: Path, *args: str, **env: str) -> tuple[int | None, str, int]:
    """Start gunicorn on a free loopback port: (exit status or None while serving, its output, port).

    It either exits (refused) or answers GET /login; a serving one is stopped here, by its id."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("NBPRESS_", "GUNICORN_", "WEB_CONCURRENCY"))}
    environment.update({"NBPRESS_INSTANCE": str(instance), **env})
    log = instance / f"gunicorn-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", *args, "--bind", f"127.0.0.1:{port}",
                                    "--no-control-socket", "publish_server:create_app()"],
                                   cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return process.returncode, log.read_text(), port
            try:
                if requests.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200:
                    return None, log.read_text(), port
            except (requests.ConnectionError, requests.Timeout):  # a worker still loading the app under load: ask again
                pass
            time.sleep(0.2)
        pytest.fail("gunicorn neither served nor exited within 60 s:\n" + log.read_text())
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


@pytest.mark.parametrize(("args", "env"), [
    (("--workers", "2"), {}),
    (("--workers", "3", "--worker-class", "gthread", "--threads", "2"), {}),
    ((), {"GUNICORN_CMD_ARGS": "--workers 2"}),
    ((), {"WEB_CONCURRENCY": "2"}),
], ids=["--workers 2", "gthread 3 workers", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY"])
def test_several_gunicorn_workers_on_memory_limits_refuse_to_start_in_one_line(instance, args, env):
    status, output, _port = gunicorn(instance, *args, **env)
    assert status is not None and status != 0, "gunicorn served with per-process limits:\n" + output
    workers = int(args[1]) if args else 2
    assert REFUSAL.format(n=workers) in output.splitlines(), output
    # No traceback of the portal's (gunicorn's "Exception in worker process"). gunicorn itself may
    # print one of its arbiter's when a second worker fails while it halts (exit 1 instead of 4).
    assert "Exception in worker process" not in output and 'publish_server/' not in output, output


@pytest.mark.parametrize(("args", "env"), [
    (("--workers", "2"), {"NBPRESS_RATELIMIT_PER_PROCESS": "true"}),
    (("--workers", "1"), {}),
    ((), {}),
], ids=["told to", "one worker", "gunicorn's default"])
def test_gunicorn_starts_with_one_worker_or_when_told_to(instance, args, env):
    status, output, _port = gunicorn(instance, *args, **env)
    assert status is None, output
    assert "RATELIMIT" not in output


def test_a_shared_store_needs_no_flag(tmp_path, monkeypatch):
    """Only memory:// is per process; the start-up check does not look at other stores (none run here)."""
    from publish_server.processes import check_rate_limit_storage

    settings = {"RATELIMIT_STORAGE_URL": "redis://127.0.0.1:6379/0", "RATELIMIT_PER_PROCESS": False}
    check_rate_limit_storage(settings, workers=4)  # no error
    with pytest.raises(ConfigError, match="RATELIMIT_PER_PROCESS"):
        check_rate_limit_storage({**settings, "RATELIMIT_STORAGE_URL": "memory://"}, workers=4)
    check_rate_limit_storage({"RATELIMIT_STORAGE_URL": "memory://", "RATELIMIT_PER_PROCESS": True}, workers=4)
    check_rate_limit_storage({"RATELIMIT_STORAGE_URL": "memory://", "RATELIMIT_PER_PROCESS": False}, workers=1)
    check_rate_limit_storage({"RATELIMIT_STORAGE_URL": "memory://", "RATELIMIT_PER_PROCESS": False}, workers=None)


def test_a_multiprocess_server_not_seen_at_start_up_gets_503_and_one_log_line(tmp_path, caplog):
    """The backstop: a server that says wsgi.multiprocess (another server, or workers added later)."""
    caplog.set_level(logging.ERROR)
    app = create_app(base_config(), instance_path=tmp_path / "instance")
    client = app.test_client()
    many = {"wsgi.multiprocess": True}
    page = client.get("/login", environ_overrides=many)
    assert page.status_code == 503 and page.mimetype == "text/html"
    api = client.get("/api/v1/publications", environ_overrides=many)
    assert api.status_code == 503 and api.get_json()["error"] == "unavailable"
    lines = [r.getMessage() for r in caplog.records if "RATELIMIT_PER_PROCESS" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert client.get("/login").status_code == 200  # one process: served

    told = create_app(base_config(RATELIMIT_PER_PROCESS=True), instance_path=tmp_path / "other").test_client()
    assert told.get("/login", environ_overrides=many).status_code == 200
