"""Retention and crash leftovers: `publications prune` keeps N versions per report and period and
removes files no row references; start-up sweeps what a SIGKILLed server left while publishing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask_migrate import upgrade

from publish_server import create_app
from publish_server.extensions import db
from publish_server.models import AuditEvent, Grant, Publication
from publish_server.publishing import create_publisher_token
from publish_server.storage import FileStore
from tests.conftest import ROOT
from tests.helpers import free_port
from tests.portal.conftest import base_config, make_pdf
from tests.portal.test_publishing import new_publisher_token, publish_ok, stored_files


def _versions() -> list[tuple[str, int]]:
    db.session.expire_all()
    return db.session.execute(sa.select(Publication.period_label, Publication.version).order_by(Publication.version)).all()


def test_prune_keeps_the_newest_versions_per_period_and_only_unreferenced_files(app, client, make_user):
    make_user("alice@example.com", groups=("north",))
    token = new_publisher_token()
    shared = make_pdf(marker="same bytes")
    publish_ok(client, token, make_pdf(marker="a"), run_id="r1", period_label="2026-W47", audience={"groups": ["north"]})
    publish_ok(client, token, shared, run_id="r2", period_label="2026-W47")
    publish_ok(client, token, shared, run_id="r3", period_label="2026-W47")  # same file as v2
    publish_ok(client, token, make_pdf(marker="b"), run_id="r4", period_label="2026-W46")
    assert len(stored_files(app)) == 3
    runner = app.test_cli_runner()
    db.session.commit()

    dry = runner.invoke(args=["publications", "prune", "--keep", "1"])
    assert dry.exit_code == 0, dry.output
    assert "would remove publication weekly_statistics 2026-W47 v2" in dry.output
    assert "would remove publication weekly_statistics 2026-W47 v1" in dry.output
    assert "--yes" in dry.output and len(_versions()) == 4 and len(stored_files(app)) == 3

    done = runner.invoke(args=["publications", "prune", "--keep", "1", "--yes"])
    assert done.exit_code == 0, done.output
    assert "removed 2 publications, 1 files, 0 leftovers" in done.output
    assert sorted(_versions()) == [("2026-W46", 1), ("2026-W47", 3)]  # versions count per period
    # v1's file went; the shared file stays for W47 v3, W46's for its v1.
    expected = {hashlib.sha256(b).hexdigest() for b in (shared, make_pdf(marker="b"))}
    assert {p.stem for p in stored_files(app)} == expected
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Grant).where(Grant.publication_id.is_not(None))) == 0
    pruned = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "publication_pruned")).all()
    assert sorted(e.detail["version"] for e in pruned) == [1, 2]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.event == "publish")) == 4
    assert runner.invoke(args=["publications", "prune", "--keep", "0"]).exit_code == 2


def test_prune_sweeps_old_leftovers_but_not_young_ones(app, client):
    token = new_publisher_token()
    publish_ok(client, token, make_pdf(marker="kept"), run_id="r1")
    files = Path(app.config["FILES_DIR"])
    old_part, young_part = files / ".upload-old.part", files / ".upload-young.part"
    old_part.write_bytes(b"%PDF-half")
    young_part.write_bytes(b"%PDF-in progress")
    orphan = FileStore(files).put(_bytes(make_pdf(marker="orphan")), limit=10**6).path
    hour_ago = time.time() - 3700
    for path in (old_part, orphan):
        os.utime(path, (hour_ago, hour_ago))
    runner = app.test_cli_runner()
    db.session.commit()
    dry = runner.invoke(args=["publications", "prune", "--keep", "5"])
    assert f"would remove leftover {orphan.name}" in dry.output and old_part.exists()
    done = runner.invoke(args=["publications", "prune", "--keep", "5", "--yes"])
    assert "removed 0 publications, 0 files, 2 leftovers" in done.output, done.output
    assert not old_part.exists() and not orphan.exists() and young_part.exists()
    assert len([p for p in stored_files(app) if p.suffix == ".pdf"]) == 1


def _bytes(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


# --- a real server killed mid-publish ------------------------------------------------------------


def _big_pdf(megabytes: int) -> bytes:
    """A PDF the portal accepts (head, %%EOF, SHA-256) padded with a comment to ``megabytes``."""
    pdf = make_pdf(marker="big")
    return pdf[:9] + b"%" + b"x" * (megabytes * 1024 * 1024) + b"\n" + pdf[9:]


def _start_gunicorn(instance: Path, port: int) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("NBPRESS_", "GUNICORN_", "WEB_CONCURRENCY"))}
    environment["NBPRESS_INSTANCE"] = str(instance)
    log = (instance / f"gunicorn-{port}.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--no-control-socket",
                                "publish_server:create_app()"], cwd=ROOT, env=environment, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200:
                return process
        except requests.ConnectionError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail("gunicorn did not serve within 60 s")


def test_a_server_killed_mid_publish_leaves_leftovers_that_the_next_start_sweeps(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    (instance / "portal.toml").write_text(
        f'SECRET_KEY = "{"s" * 40}"\nJWT_SECRET = "{"j" * 40}"\nCOOKIE_SECURE = false\nMAIL_URL = "memory:"\n'
        "SWEEP_AGE_SECONDS = 60\n")
    setup = create_app(base_config(SECRET_KEY="s" * 40, JWT_SECRET="j" * 40), instance_path=instance)
    with setup.app_context():
        upgrade()
        _row, token = create_publisher_token("ci")
        db.session.commit()
        db.engine.dispose()
    files = instance / "files"
    port = free_port()
    server = _start_gunicorn(instance, port)
    url = f"http://127.0.0.1:{port}/api/v1/publications"
    headers = {"Authorization": f"Bearer {token}"}
    kept = make_pdf(marker="published")

    def post(pdf: bytes, run_id: str):
        meta = {"report": "weekly", "run_id": run_id, "sha256": hashlib.sha256(pdf).hexdigest()}
        return requests.post(url, headers=headers, timeout=120,
                             files={"metadata": (None, json.dumps(meta)), "file": ("r.pdf", pdf, "application/pdf")})

    try:
        assert post(kept, "ok-1").status_code == 201
        big = _big_pdf(45)
        upload = threading.Thread(target=lambda: _ignore(post, big, "killed-1"), daemon=True)
        upload.start()
        deadline = time.monotonic() + 60
        while not list(files.glob(".upload-*.part")) and time.monotonic() < deadline:
            time.sleep(0.001)
        os.killpg(server.pid, signal.SIGKILL)  # the whole server, while it copies the upload
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    upload.join(timeout=30)

    parts = list(files.glob(".upload-*.part"))
    assert parts, "the kill left no temporary upload"
    # The other crash outcome (3 in 13 in the issue): the file stored, its row never committed.
    orphan = FileStore(files).put(_bytes(make_pdf(marker="no row")), limit=10**6).path
    kept_path = FileStore(files).path_for(hashlib.sha256(kept).hexdigest())
    an_hour_ago = time.time() - 3700
    for path in [*parts, orphan, kept_path]:
        os.utime(path, (an_hour_ago, an_hour_ago))
    in_progress = files / ".upload-now.part"  # a young one: another worker's upload, never swept
    in_progress.write_bytes(b"%PDF-")

    port = free_port()
    server = _start_gunicorn(instance, port)  # the next start sweeps
    try:
        assert not any(p.exists() for p in parts) and not orphan.exists()
        assert kept_path.exists() and in_progress.exists()
        assert f"start-up sweep removed crash leftover {orphan.name}" in (instance / f"gunicorn-{port}.log").read_text()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _ignore(post, *args):
    try:
        post(*args)
    except requests.RequestException:
        pass  # the server was killed under it: that is the point
