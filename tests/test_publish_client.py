"""The toolkit's publishing client against a REAL portal served on loopback.

The portal (SQLite) runs in a thread via werkzeug's server; the toolkit talks HTTP to it, as in
production. Failures are real too: a closed port, a listener that hangs up, a WSGI wrapper that
answers 503/429/308 before letting requests through. The toolkit never imports publish_server;
only these tests use both sides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from publish_server import create_app
from publish_server.extensions import db
from publish_server.models import Grant, Group, Publication
from publish_server.publishing import create_publisher_token
from tests.conftest import make_notebook
from tests.helpers import free_port
from tests.portal.conftest import base_config, make_pdf
from tests.portal.test_publishing import serve
from toolkit.deliver.portal_client import load_publish_config, period_label, publish_run
from toolkit.errors import PublishError, RunDirError, SpecError
from toolkit.inputs.spec import load_spec
from toolkit.runs.run_folder import FailureRecord, RunRecord, load_run, new_run_id, save_run

FAST = {"backoff": 0.01}


@dataclass
class Portal:
    app: object
    url: str
    token: str

    def publications(self) -> list[Publication]:
        with self.app.app_context():
            rows = list(db.session.scalars(sa.select(Publication).order_by(Publication.version)))
            for row in rows:
                db.session.expunge(row)
            return rows


class Scripted:
    """WSGI middleware: answers the scripted statuses first, then passes requests to the app."""

    def __init__(self, app, *statuses: int, headers: dict | None = None):
        self.app, self.plan, self.headers, self.requests = app, list(statuses), headers or {}, 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.requests += 1
            status = self.plan.pop(0) if self.plan else None
        if status is None:
            return self.app(environ, start_response)
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))  # read it like a real server
        body = json.dumps({"error": "scripted", "message": f"scripted answer {status}"}).encode()
        start_response(f"{status} Scripted", [("Content-Type", "application/json"), *self.headers.items()])
        return [body]


@pytest.fixture
def portal_app(tmp_path):
    app = create_app(base_config(), instance_path=tmp_path / "portal")
    with app.app_context():
        upgrade()
        _row, token = create_publisher_token("toolkit")
        db.session.commit()
    app.config["TEST_PUBLISHER_TOKEN"] = token
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def portal(portal_app):
    with serve(portal_app) as url:
        yield Portal(portal_app, url, portal_app.config["TEST_PUBLISHER_TOKEN"])


def make_run_dir(root: Path, *, status: str = "succeeded", pdf: bytes | None = None, report: str = "weekly_statistics",
                 parameters: dict | None = None, spec: dict | None = None, period: str = "2026-W47",
                 variant: dict | None = None) -> Path:
    """A run folder as the pipeline leaves it: run.json and report.pdf."""
    run_id = new_run_id()
    run_dir = root / report / run_id
    run_dir.mkdir(parents=True)
    record = RunRecord(
        report=report, run_id=run_id, status=status,
        parameters=parameters if parameters is not None else {"week": "2026-11-16", "status": "all", "database_url": "postgresql://reader:hunter2@db/events"},
        period=period,  # what the pipeline made from the spec's `period` when it prepared the run
        variant=variant or {},
        spec={"title": "Weekly Statistics", "description": "Weekly numbers", "header_parameters": ["week", "status"], **(spec or {})},
        notebook="notebooks/weekly_statistics.ipynb", notebook_sha256="0" * 64,
        started=dt.datetime.now(dt.timezone.utc), pages=1,
    )
    save_run(run_dir, record)
    (run_dir / "report.pdf").write_bytes(pdf if pdf is not None else make_pdf(marker=run_id))
    return run_dir


# --- publishing a run ------------------------------------------------------------------------


def test_publish_run_publishes_the_pdf_and_records_it_in_run_json(portal, tmp_path):
    run_dir = make_run_dir(tmp_path)
    pdf = (run_dir / "report.pdf").read_bytes()
    published = publish_run(run_dir, portal.url, portal.token, **FAST)
    assert (published.report, published.version, published.created) == ("weekly_statistics", 1, True)
    assert published.sha256 == hashlib.sha256(pdf).hexdigest()
    assert published.url == f"{portal.url}/api/v1/publications/{published.id}/download"
    [row] = portal.publications()
    assert (row.public_id, row.sha256, row.size, row.period_label, row.run_id) == (
        published.id, published.sha256, len(pdf), "2026-W47", load_run(run_dir).run_id)
    assert row.parameters["database_url"] == "postgresql://reader:***@db/events"  # never the password
    stored = Path(portal.app.config["FILES_DIR"]) / published.sha256[:2] / f"{published.sha256}.pdf"
    assert stored.read_bytes() == pdf
    record = load_run(run_dir)
    assert record.publication.id == published.id and record.publication.version == 1 and record.publication.portal == portal.url
    # publishing again is harmless: the same publication, no new version
    again = publish_run(run_dir, portal.url + "/", portal.token, **FAST)
    assert (again.id, again.version, again.created) == (published.id, 1, False)
    assert len(portal.publications()) == 1


def test_a_new_run_becomes_the_next_version(portal, tmp_path):
    first = publish_run(make_run_dir(tmp_path), portal.url, portal.token, **FAST)
    second = publish_run(make_run_dir(tmp_path), portal.url, portal.token, **FAST)
    assert (first.version, second.version) == (1, 2) and first.id != second.id


@pytest.mark.parametrize("status", ["failed", "running"])
def test_a_run_that_did_not_succeed_is_never_published(portal_app, tmp_path, status):
    counter = Scripted(portal_app)
    with serve(counter) as url:
        with pytest.raises(PublishError, match=f"did not succeed \\(status: {status}\\); a failed run is never published"):
            publish_run(make_run_dir(tmp_path, status=status), url, portal_app.config["TEST_PUBLISHER_TOKEN"], **FAST)
    assert counter.requests == 0


def test_a_run_whose_upload_failed_can_be_published_later(portal, tmp_path):
    run_dir = make_run_dir(tmp_path, status="failed")
    record = load_run(run_dir)
    record.error = FailureRecord(stage="publish", type="PublishError", message="portal unreachable")
    save_run(run_dir, record)
    published = publish_run(run_dir, portal.url, portal.token, **FAST)
    record = load_run(run_dir)
    assert (record.status, record.error, record.publication.id) == ("succeeded", None, published.id)
    [row] = portal.publications()
    assert row.public_id == published.id

    # Any other failure still keeps a run off the portal, even with a PDF in its folder.
    other = make_run_dir(tmp_path / "other", status="failed")
    broken = load_run(other)
    broken.error = FailureRecord(stage="checks", type="DataCheckError", message="rows below the floor")
    save_run(other, broken)
    with pytest.raises(PublishError, match="a failed run is never published"):
        publish_run(other, portal.url, portal.token, **FAST)
    assert len(portal.publications()) == 1


def test_a_folder_without_run_json_or_pdf_is_refused(portal, tmp_path):
    with pytest.raises(RunDirError, match="not a run folder"):
        publish_run(tmp_path, portal.url, portal.token)
    run_dir = make_run_dir(tmp_path)
    (run_dir / "report.pdf").unlink()
    with pytest.raises(RunDirError, match="no report.pdf"):
        publish_run(run_dir, portal.url, portal.token)


def test_the_audience_of_the_spec_becomes_grants_and_an_argument_overrides_it(portal, tmp_path):
    with portal.app.app_context():
        db.session.add_all([Group(name="finance"), Group(name="board")])
        db.session.commit()
    from_spec = publish_run(make_run_dir(tmp_path, spec={"audience": {"groups": ["finance"], "users": []}}), portal.url, portal.token, **FAST)
    explicit = publish_run(make_run_dir(tmp_path, spec={"audience": {"groups": ["finance"]}}), portal.url, portal.token,
                           audience={"groups": ["board"]}, **FAST)
    with portal.app.app_context():
        granted = {
            pub_id: sorted(db.session.scalars(
                sa.select(Group.name).join(Grant, Grant.group_id == Group.id).join(Publication, Grant.publication_id == Publication.id)
                .where(Publication.public_id == pub_id)))
            for pub_id in (from_spec.id, explicit.id)
        }
    assert granted == {from_spec.id: ["finance"], explicit.id: ["board"]}
    with pytest.raises(PublishError, match=r"portal refused the upload \(400\): Unknown audience: group 'nobody'"):
        publish_run(make_run_dir(tmp_path), portal.url, portal.token, audience={"groups": ["nobody"]}, **FAST)


def test_two_threads_publishing_the_same_run_make_one_publication(portal, tmp_path):
    run_dir = make_run_dir(tmp_path)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def go():
        barrier.wait(timeout=10)
        try:
            results.append(publish_run(run_dir, portal.url, portal.token, **FAST))
        except PublishError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(timeout=60) for t in threads]
    assert errors == [] and len(results) == 2
    assert len({r.id for r in results}) == 1 and sorted(r.created for r in results) == [False, True]
    assert len(portal.publications()) == 1


def test_two_different_runs_at_once_get_versions_1_and_2(portal, tmp_path):
    runs = [make_run_dir(tmp_path), make_run_dir(tmp_path)]
    results = {}
    barrier = threading.Barrier(2)

    def go(run_dir):
        barrier.wait(timeout=10)
        results[run_dir] = publish_run(run_dir, portal.url, portal.token, **FAST)

    threads = [threading.Thread(target=go, args=(r,)) for r in runs]
    [t.start() for t in threads]
    [t.join(timeout=60) for t in threads]
    assert sorted(r.version for r in results.values()) == [1, 2]
    assert sorted(p.version for p in portal.publications()) == [1, 2]


# --- failures and retries --------------------------------------------------------------------


def test_a_closed_port_is_retried_then_reported_unreachable(tmp_path):
    port = free_port()
    with pytest.raises(PublishError) as caught:
        publish_run(make_run_dir(tmp_path), f"http://127.0.0.1:{port}", "nbp_secret-token-value", retries=2, **FAST)
    assert str(caught.value) == f"portal unreachable at http://127.0.0.1:{port} after 3 attempts (connection failed)"
    assert caught.value.attempts == 3 and caught.value.status is None


def test_every_attempt_reaches_the_portal_address(tmp_path):
    """A listener that hangs up at once: each attempt is a new connection, counted here."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    accepted, stop = [], threading.Event()

    def hang_up():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        with pytest.raises(PublishError, match="after 4 attempts"):
            publish_run(make_run_dir(tmp_path), f"http://127.0.0.1:{listener.getsockname()[1]}", "nbp_x", retries=3, **FAST)
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
    assert len(accepted) == 4


def test_5xx_then_ok_succeeds_after_retries(portal_app, tmp_path):
    flaky = Scripted(portal_app, 503, 502)
    with serve(flaky) as url:
        published = publish_run(make_run_dir(tmp_path), url, portal_app.config["TEST_PUBLISHER_TOKEN"], **FAST)
    assert published.version == 1 and flaky.requests == 3


def test_429_is_retried_honouring_retry_after(portal_app, tmp_path):
    limited = Scripted(portal_app, 429, headers={"Retry-After": "0"})
    with serve(limited) as url:
        assert publish_run(make_run_dir(tmp_path), url, portal_app.config["TEST_PUBLISHER_TOKEN"], **FAST).version == 1
    assert limited.requests == 2


def test_persistent_5xx_gives_up_with_the_status_and_attempts(portal_app, tmp_path):
    broken = Scripted(portal_app, *[500] * 10)
    with serve(broken) as url:
        with pytest.raises(PublishError) as caught:
            publish_run(make_run_dir(tmp_path), url, "nbp_x", retries=2, **FAST)
    assert str(caught.value) == "portal failed with 500 after 3 attempts: scripted answer 500"
    assert broken.requests == 3 and caught.value.status == 500


def test_4xx_is_never_retried(portal_app, tmp_path):
    counter = Scripted(portal_app)
    with serve(counter) as url:
        with pytest.raises(PublishError) as caught:
            publish_run(make_run_dir(tmp_path), url, "nbp_wrong-token", **FAST)
    assert str(caught.value) == "portal refused the upload (401): A valid publisher token is required."
    assert counter.requests == 1 and caught.value.attempts == 1


def test_a_non_pdf_is_refused_with_the_portals_reason(portal, tmp_path):
    run_dir = make_run_dir(tmp_path, pdf=b"<html>not a pdf</html>")
    with pytest.raises(PublishError) as caught:
        publish_run(run_dir, portal.url, portal.token, **FAST)
    assert str(caught.value) == "portal refused the upload (415): Only PDF files are accepted."
    assert load_run(run_dir).publication is None


def test_a_redirect_is_not_followed_with_the_token(portal_app, tmp_path):
    elsewhere = Scripted(portal_app)
    with serve(elsewhere) as other_url:
        mover = Scripted(portal_app, 308, headers={"Location": other_url + "/api/v1/publications"})
        with serve(mover) as url:
            with pytest.raises(PublishError, match=r"portal answered 308 \(a redirect\)"):
                publish_run(make_run_dir(tmp_path), url, portal_app.config["TEST_PUBLISHER_TOKEN"], **FAST)
    assert mover.requests == 1 and elsewhere.requests == 0


@pytest.mark.parametrize(("url", "message"), [
    ("http://portal.invalid", "refusing to send the publisher token over plain HTTP to portal.invalid"),
    ("ftp://127.0.0.1/", "must look like https://host"),
    ("http://user:pw@127.0.0.1:1", "no credentials"),
    ("http://127.0.0.1:1/?token=x", "no credentials, query or fragment"),
    ("127.0.0.1:5000", "must look like https://host"),
])
def test_unsafe_portal_urls_are_refused_before_any_request(tmp_path, url, message):
    with pytest.raises(PublishError, match=message.replace("(", r"\(").replace(")", r"\)")):
        publish_run(make_run_dir(tmp_path), url, "nbp_x", **FAST)


# --- configuration: the token never on the command line ---------------------------------------


def test_the_token_comes_from_the_environment_before_the_config_file(tmp_path):
    config = tmp_path / "publish.toml"
    config.write_text('portal = "https://portal.example"\ntoken = "from-file"\n', encoding="utf-8")
    config.chmod(0o600)
    env = {"NBPRESS_PUBLISH_CONFIG": str(config)}
    loaded = load_publish_config(environ=env)
    assert (loaded.portal, loaded.token) == ("https://portal.example", "from-file")
    loaded = load_publish_config("http://127.0.0.1:9", environ={**env, "NBPRESS_PUBLISH_TOKEN": "from-env"})
    assert (loaded.portal, loaded.token) == ("http://127.0.0.1:9", "from-env")
    assert "from-env" not in repr(loaded) and "from-file" not in repr(load_publish_config(environ=env))


def test_the_default_config_file_lives_in_the_users_config_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / ".config" / "nbpress" / "publish.toml"
    config.parent.mkdir(parents=True)
    config.write_text('portal = "https://p.example"\ntoken = "t"\n', encoding="utf-8")
    config.chmod(0o600)
    assert load_publish_config(environ={}).portal == "https://p.example"


def test_config_problems_are_one_clear_line_without_the_token(tmp_path, monkeypatch):
    config = tmp_path / "publish.toml"
    env = {"NBPRESS_PUBLISH_CONFIG": str(config)}
    with pytest.raises(PublishError, match="no such publish config"):
        load_publish_config(environ=env)
    config.write_text('token = "nbp_leaky-secret\n', encoding="utf-8")  # unterminated string
    config.chmod(0o600)
    with pytest.raises(PublishError) as caught:
        load_publish_config(environ=env)
    assert "cannot read it as TOML" in str(caught.value) and "leaky" not in str(caught.value)
    config.write_text('token = "t"\nportl = "typo"\n', encoding="utf-8")
    with pytest.raises(PublishError, match="unknown key 'portl'"):
        load_publish_config(environ=env)
    config.write_text('token = "t"\nportal = "https://p.example"\n', encoding="utf-8")
    config.chmod(0o644)
    with pytest.raises(PublishError, match="other users can read this file with its token; run: chmod 600"):
        load_publish_config(environ=env)
    config.chmod(0o600)
    config.write_text('portal = "https://p.example"\n', encoding="utf-8")
    with pytest.raises(PublishError, match="no publisher token: set NBPRESS_PUBLISH_TOKEN"):
        load_publish_config(environ=env)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no default config file there
    with pytest.raises(PublishError, match="no portal URL: pass --portal URL"):
        load_publish_config(environ={"NBPRESS_PUBLISH_TOKEN": "t"})


def _nbpress(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("nbpress")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}
    return subprocess.run([str(exe), *args], cwd=cwd, env={**clean, "HOME": str(cwd), **env},
                          capture_output=True, text=True, timeout=300)


def test_cli_publish_prints_the_version_and_url_and_never_the_token(portal, tmp_path):
    run_dir = make_run_dir(tmp_path)
    env = {"NBPRESS_PUBLISH_TOKEN": portal.token}
    first = _nbpress("publish", str(run_dir), "--portal", portal.url, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    publication = load_run(run_dir).publication
    # the link is the report's page (a browser signs in there), not the API download that answers JSON 401
    assert publication.page_url == f"{portal.url}/reports/weekly_statistics"
    assert first.stdout.strip() == f"published weekly_statistics 2026-W47 v1 (id {publication.id}): {publication.page_url}"
    assert first.stderr.strip() == ("warning: nobody can read weekly_statistics 2026-W47 v1 yet (admins only): "
                                    "grant it with `nbpress portal grant --report weekly_statistics --group GROUP`")
    again = _nbpress("publish", str(run_dir), env={**env, "NBPRESS_PORTAL_URL": portal.url}, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.startswith("already published weekly_statistics 2026-W47 v1")
    refused = _nbpress("publish", str(run_dir), "--portal", portal.url, env={"NBPRESS_PUBLISH_TOKEN": portal.token + "x"}, cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "nbpress: error: portal refused the upload (401): A valid publisher token is required."
    for result in (first, again, refused):
        assert portal.token not in result.stdout + result.stderr
    assert portal.token not in (run_dir / "run.json").read_text(encoding="utf-8")


def test_cli_has_no_token_option_and_says_where_the_token_comes_from(tmp_path):
    run_dir = make_run_dir(tmp_path)
    refused = _nbpress("publish", str(run_dir), "--token", "nbp_on-the-command-line", env={}, cwd=tmp_path)
    assert refused.returncode == 2 and "No such option" in refused.stderr
    missing = _nbpress("publish", str(run_dir), "--portal", "http://127.0.0.1:9", env={}, cwd=tmp_path)
    assert missing.returncode == 1 and "no publisher token: set NBPRESS_PUBLISH_TOKEN" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_cli_run_publish_publishes_a_succeeded_run_and_never_a_failed_one(portal, project):
    make_notebook(project.notebooks_dir / "tiny.ipynb", "n: int = 2", "import toolkit as tk\ntk.metric('n', n, label='N')")
    make_notebook(project.notebooks_dir / "boom.ipynb", "n: int = 2", "raise ValueError('boom')")
    env = {"NBPRESS_PUBLISH_TOKEN": portal.token}
    ok = _nbpress("run", "tiny", "--publish", "--portal", portal.url, env=env, cwd=project.root)
    assert ok.returncode == 0, ok.stderr
    assert "published tiny v1" in ok.stdout and portal.token not in ok.stdout + ok.stderr
    [run_dir] = (project.runs_dir / "tiny").iterdir()
    assert load_run(run_dir).publication.version == 1
    failed = _nbpress("run", "boom", "--portal", portal.url, env=env, cwd=project.root)
    assert failed.returncode == 1 and "boom" in failed.stderr
    assert [p.run_id for p in portal.publications()] == [run_dir.name]
    # no token: refused before the notebook runs, so no run folder either
    before = sorted((project.runs_dir / "tiny").iterdir())
    refused = _nbpress("run", "tiny", "--publish", "--portal", portal.url, env={}, cwd=project.root)
    assert refused.returncode == 1 and "no publisher token" in refused.stderr
    assert sorted((project.runs_dir / "tiny").iterdir()) == before


# --- the spec's audience and the period label ------------------------------------------------


def test_a_spec_audience_is_validated(tmp_path):
    spec_file = tmp_path / "weekly.yml"
    spec_file.write_text("audience:\n  groups: [finance, ' board ']\n  users: [Ann@Example.com]\n", encoding="utf-8")
    spec = load_spec(spec_file)
    assert spec.audience.groups == ["finance", "board"] and spec.audience.users == ["ann@example.com"]
    assert spec.model_dump(mode="json")["audience"] == {"groups": ["finance", "board"], "users": ["ann@example.com"]}
    for body, key in [("audience:\n  users: [not-an-email]\n", "audience.users"),
                      ("audience:\n  groups: ['']\n", "audience.groups"),
                      ("audience:\n  teams: [x]\n", "audience.teams")]:
        spec_file.write_text(body, encoding="utf-8")
        with pytest.raises(SpecError, match=f"weekly.yml: {key}"):
            load_spec(spec_file)
    spec_file.write_text("title: No audience\n", encoding="utf-8")
    assert load_spec(spec_file).audience is None


@pytest.mark.parametrize(("template", "values", "header", "label"), [
    ("{week:%G-W%V}", {"week": dt.date(2026, 11, 16)}, ["week"], "2026-W47"),
    ("{week:%G-W%V}", {"week": dt.date(2026, 1, 1)}, ["week"], "2026-W01"),  # ISO year, not calendar year
    ("{region} {month}", {"region": "north", "month": "2026-11"}, [], "north 2026-11"),
    ("{day:%d %B %Y}", {"day": dt.date(2026, 11, 16)}, [], "16 November 2026"),
    (None, {"month": "2026-11", "x": 1}, ["month", "x"], "2026-11"),  # no template: the first header parameter
    (None, {"week": dt.date(2026, 11, 16)}, ["week"], "2026-11-16"),  # ... whatever its name
    (None, {"n": 3}, [], ""),
])
def test_the_period_label_is_made_from_the_specs_template(template, values, header, label):
    from toolkit.inputs.period import period_label as made

    assert made(template, values, header) == label


@pytest.mark.parametrize("template", ["{week.year}", "{x[0]}", "{0}", "{}", "{week!r}", "{week"])
def test_a_period_template_names_parameters_only(tmp_path, template):
    spec_file = tmp_path / "weekly.yml"
    spec_file.write_text(f"period: {template!r}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="weekly.yml: period"):
        load_spec(spec_file)


def test_publishing_uses_the_label_kept_in_run_json_and_old_runs_fall_back(tmp_path):
    record = RunRecord(report="r", run_id="x", parameters={"week": "2026-11-16"}, period="2026-W47",
                       spec={"header_parameters": ["week"]}, notebook="n", notebook_sha256="0",
                       started=dt.datetime.now(dt.timezone.utc))
    assert period_label(record) == "2026-W47"
    assert period_label(record.model_copy(update={"period": ""})) == "2026-11-16"  # run.json from before `period`
