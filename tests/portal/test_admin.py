"""The operator CLI (publish_server.admin) through Flask's CLI runner, and `nbpress portal` for real.

What each command changes is checked from the outside where it matters: a printed one-time
password signs in, a disabled user's session stops working, a grant makes a report appear.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from publish_server import publishing
from publish_server.errors import Unauthorized
from publish_server.extensions import db
from publish_server.models import AuditEvent, Group, Publication, PublisherToken, Report, User
from publish_server.storage import FileStore
from tests.helpers import free_port, listening, wait_until_listening

from .conftest import TEST_PASSWORD, make_pdf

NBPRESS = Path(sys.executable).with_name("nbpress")


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None):
        db.session.commit()  # end the test's transaction: the command runs in its own session
        result = runner.invoke(args=list(args), input=input)
        db.session.expire_all()  # and see what it wrote
        return result

    return invoke


def one_line_error(result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert lines[-1].startswith("Error: ")
    return lines[-1]


def printed_secret(result, label: str) -> str:
    found = re.findall(rf"^{label}: (\S+)$", result.stdout, flags=re.M)
    assert len(found) == 1, result.stdout
    return found[0]


@pytest.fixture
def report_with_publication(app):
    data = make_pdf(2, marker="cli")
    stored = FileStore(app.config["FILES_DIR"]).put(io.BytesIO(data), limit=1 << 20)
    report = Report(slug="weekly_statistics", title="Weekly Statistics")
    publication = Publication(report=report, version=1, run_id="r1", period_label="2026-W47", sha256=stored.sha256, size=stored.size, pages=2)
    db.session.add_all([report, publication])
    db.session.commit()
    return report, publication


# --- users -------------------------------------------------------------------------------------


def test_users_add_prints_a_one_time_password_once_that_signs_in_and_must_be_changed(app, cli, client, login, caplog):
    caplog.set_level(logging.DEBUG)
    cli("groups", "add", "north")
    result = cli("users", "add", "Nia@Example.org", "--name", "Nia N.", "--group", "north")
    assert result.exit_code == 0, result.output
    password = printed_secret(result, "one-time password")
    assert len(password) >= 24 and result.output.count(password) == 1
    user = db.session.scalars(db.select(User).where(User.email == "nia@example.org")).one()
    assert user.must_change_password and user.display_name == "Nia N." and [g.name for g in user.groups] == ["north"]
    assert user.password_hash.startswith("$argon2id$") and password not in user.password_hash

    response = login(client, "nia@example.org", password)
    assert response.status_code == 303 and response.headers["Location"].startswith("/account")  # change it first
    # never logged, never audited
    assert password not in caplog.text
    for event in db.session.scalars(db.select(AuditEvent)):
        assert password not in str(event.detail)


def test_users_add_with_password_stdin_prints_no_password(cli, client, login):
    result = cli("users", "add", "ops@example.org", "--admin", "--password-stdin", input="a long operator passphrase 9\n")
    assert result.exit_code == 0, result.output
    assert "password" not in result.stdout
    user = db.session.scalars(db.select(User).where(User.email == "ops@example.org")).one()
    assert user.role == "admin" and not user.must_change_password
    assert login(client, "ops@example.org", "a long operator passphrase 9").headers["Location"] == "/"


@pytest.mark.parametrize(("args", "stdin", "fragment"), [
    (("users", "add", "not-an-email"), None, "not an email address"),
    (("users", "add", "x@example.org", "--group", "nope"), None, "no group named 'nope'"),
    (("users", "add", "x@example.org", "--password-stdin"), "short\n", "password refused"),
    (("users", "add", "x@example.org", "--password-stdin"), "password123456\n", "password refused"),
    (("users", "disable", "ghost@example.org"), None, "no user with email 'ghost@example.org'"),
    (("users", "reset-password", "ghost@example.org"), None, "no user with email"),
    (("groups", "add-member", "ghosts", "ghost@example.org"), None, "no group named 'ghosts'"),
    (("grant", "--report", "nope", "--user", "ghost@example.org"), None, "no user with email 'ghost@example.org'"),
    (("revoke-grant", "--report", "nope", "--user", "ghost@example.org"), None, "no user with email 'ghost@example.org'"),
    (("tokens", "revoke", "nope"), None, "no publisher token named 'nope'"),
    (("publications", "list", "--report", "nope"), None, "no report with slug 'nope'"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(cli, args, stdin, fragment):
    line = one_line_error(cli(*args, input=stdin))
    assert fragment in line
    assert not db.session.scalars(db.select(User).where(User.email == "x@example.org")).first()


def test_usage_errors_exit_2(cli):
    assert cli("grant", "--user", "a@example.org").exit_code == 2
    assert cli("grant", "--report", "a", "--publication", "b", "--user", "a@example.org").exit_code == 2
    assert cli("grant", "--report", "a", "--user", "a@example.org", "--group", "g").exit_code == 2


def test_users_add_refuses_a_duplicate(cli, make_user):
    make_user("dup@example.org")
    assert "already exists" in one_line_error(cli("users", "add", "DUP@example.org"))


def test_users_disable_ends_sessions_and_sign_in(cli, client, login, make_user):
    make_user("dee@example.org")
    login(client, "dee@example.org")
    assert client.get("/").status_code == 200
    result = cli("users", "disable", "dee@example.org")
    assert result.exit_code == 0 and "revoked" in result.stdout
    user = db.session.scalars(db.select(User).where(User.email == "dee@example.org")).one()
    assert not user.active
    assert client.get("/", follow_redirects=True).request.path == "/login"
    assert login(client, "dee@example.org").status_code == 401
    # enabling again does not bring the old session back, but allows signing in
    assert cli("users", "enable", "dee@example.org").exit_code == 0
    assert login(client, "dee@example.org").status_code == 303


def test_users_disable_also_revokes_api_tokens(app, cli, make_user, api_token):
    make_user("api@example.org")
    client = app.test_client()
    token = api_token(client, "api@example.org")
    from flask_jwt_extended import decode_token

    issued = decode_token(token)["iat"]
    cli("users", "disable", "api@example.org")
    user = db.session.scalars(db.select(User).where(User.email == "api@example.org")).one()
    assert user.tokens_valid_after.timestamp() >= issued - 1  # everything issued before is refused


def test_reset_password_prints_a_new_one_time_password_and_revokes_sessions(cli, client, login, make_user, caplog):
    caplog.set_level(logging.DEBUG)
    make_user("ray@example.org")
    login(client, "ray@example.org")
    assert client.get("/").status_code == 200
    result = cli("users", "reset-password", "ray@example.org")
    assert result.exit_code == 0, result.output
    password = printed_secret(result, "one-time password")
    assert password not in caplog.text
    assert client.get("/", follow_redirects=True).request.path == "/login"
    fresh = client.application.test_client()
    assert login(fresh, "ray@example.org", TEST_PASSWORD).status_code == 401
    assert login(fresh, "ray@example.org", password).headers["Location"].startswith("/account")
    notices = [m for m in client.application.extensions["nbpress.mailer"].sent
               if m["Subject"] == "Your Notebook Press password was changed"]
    assert len(notices) == 1 and "reset by an operator" in notices[0].get_body(preferencelist=("plain",)).get_content()
    assert password not in notices[0].as_string()  # the one-time password goes to the operator only


def test_users_list_and_groups(cli, make_user):
    make_user("gia@example.org")
    assert cli("groups", "add", "south").exit_code == 0
    assert "already exists" in one_line_error(cli("groups", "add", "south"))
    assert "1 to 80" in one_line_error(cli("groups", "add", "   "))
    assert cli("groups", "add-member", "south", "GIA@example.org").exit_code == 0
    assert "already in" in cli("groups", "add-member", "south", "gia@example.org").stdout
    listing = cli("users", "list").stdout
    assert re.search(r"^gia@example\.org\s+gia\s+recipient\s+active\s+south\s", listing, flags=re.M)
    assert "gia@example.org" in cli("groups", "list").stdout
    assert cli("groups", "remove-member", "south", "gia@example.org").exit_code == 0
    assert "not in group" in one_line_error(cli("groups", "remove-member", "south", "gia@example.org"))
    assert db.session.scalars(db.select(Group).where(Group.name == "south")).one().members == []


# --- control characters in what an operator types -------------------------------------------------

# Each would end up in a mail header, a terminal or a log line: refused at the command line (exit 2).
CONTROLS = {"CR LF": "\r\nBcc: eve@evil.example", "NUL": "\x00", "ESC": "\x1b[2J", "DEL": "\x7f", "C1 NEL": "\x85",
            "U+2028": "\u2028", "U+2029": "\u2029", "bidi override": "\u202e"}


def refused_as_usage(result, param: str) -> str:
    line = one_line_error(result, exit_code=2)
    assert f"Invalid value for {param}" in line and "control character U+" in line, line
    return line


@pytest.mark.parametrize("bad", CONTROLS.values(), ids=CONTROLS.keys())
@pytest.mark.parametrize(("command", "param"), [
    (("users", "add", "eve@example.org", "--name", "Eve{bad}"), "'--name'"),
    (("users", "add", "eve{bad}@example.org"), "'EMAIL'"),
    (("groups", "add", "north{bad}"), "'NAME'"),
    (("tokens", "create", "ci{bad}"), "'NAME'"),
])
def test_control_characters_in_names_and_emails_are_a_usage_error(cli, command, param, bad):
    result = cli(*(part.format(bad=bad) for part in command))
    refused_as_usage(result, param)
    assert not any(ch in result.output for ch in bad if not ch.isprintable() and ch != "\n")  # never echoed raw
    assert db.session.scalars(db.select(User)).first() is None
    assert db.session.scalars(db.select(Group)).first() is None
    assert db.session.scalars(db.select(PublisherToken)).first() is None


def test_names_in_any_script_are_accepted(cli):
    for name in ("Zoë Ďurková", "Mehr\u200cnaz Ahmadi", "\U0001F469\u200d\U0001F4BB Ops", "山田 太郎"):
        result = cli("users", "add", f"u{len(name)}@example.org", "--name", name)
        assert result.exit_code == 0, result.output
        assert db.session.scalars(db.select(User).where(User.email == f"u{len(name)}@example.org")).one().display_name == name


def test_users_rename_fixes_a_name_and_refuses_control_characters(cli, make_user):
    user = make_user("eve@example.org")
    user.display_name = "Eve\r\nBcc: x@evil.example"  # written before the command line refused it
    db.session.commit()
    result = cli("users", "rename", "EVE@example.org", "--name", "  Eve Example ")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "renamed eve@example.org: Eve Example"
    assert db.session.get(User, user.id).display_name == "Eve Example"
    renamed = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "user_renamed")).one()
    assert renamed.user_id == user.id
    refused_as_usage(cli("users", "rename", "eve@example.org", "--name", "Eve\u2028Bcc: x@evil.example"), "'--name'")
    assert "no user with email" in one_line_error(cli("users", "rename", "ghost@example.org", "--name", "Ghost"))
    assert "at most 120" in one_line_error(cli("users", "rename", "eve@example.org", "--name", "x" * 121))
    assert "Missing option '--name'" in one_line_error(cli("users", "rename", "eve@example.org"), exit_code=2)
    assert db.session.get(User, user.id).display_name == "Eve Example"
    assert "rename" in cli("users", "--help").stdout


def test_a_bad_name_left_in_the_database_does_not_stop_sign_in(app, client, login, make_user):
    """Mail is built with the name's control characters replaced: the code goes out, no header is added."""
    user = make_user("eve@example.org")
    user.display_name = "Eve\r\nBcc: x@evil.example\u2028X-Injected: 1"
    db.session.commit()
    response = login(client, "eve@example.org")
    assert response.status_code == 303 and response.headers["Location"] == "/", response.get_data(as_text=True)
    sent = app.extensions["nbpress.mailer"].sent
    assert [m["Subject"] for m in sent] == ["Your Notebook Press sign-in code", "New sign-in to your Notebook Press account"]
    for message in sent:
        assert message["Bcc"] is None and message["X-Injected"] is None
        assert message["To"].addresses[0].addr_spec == "eve@example.org"
        assert message["To"].addresses[0].display_name == "Eve Bcc: x@evil.example X-Injected: 1"
        assert not any(ch in message.as_string().partition("\n\n")[0] for ch in "\r\u2028")


# --- grants --------------------------------------------------------------------------------------


def test_grant_and_revoke_change_what_a_recipient_sees(cli, client, login, make_user, report_with_publication):
    _, publication = report_with_publication
    make_user("gus@example.org", groups=("east",))
    login(client, "gus@example.org")
    download = f"/p/{publication.public_id}/download"
    assert client.get(download).status_code == 404

    assert cli("grant", "--report", "weekly_statistics", "--group", "east").exit_code == 0
    assert "already granted" in cli("grant", "--report", "weekly_statistics", "--group", "east").stdout
    assert client.get(download).status_code == 200
    assert cli("revoke-grant", "--report", "weekly_statistics", "--group", "east").exit_code == 0
    assert client.get(download).status_code == 404
    assert "no such grant" in one_line_error(cli("revoke-grant", "--report", "weekly_statistics", "--group", "east"))

    assert cli("grant", "--publication", publication.public_id, "--user", "gus@example.org").exit_code == 0
    assert client.get(download).status_code == 200
    assert cli("revoke-grant", "--publication", publication.public_id, "--user", "gus@example.org").exit_code == 0
    assert client.get(download).status_code == 404


def test_grant_before_the_first_publication_creates_the_report_and_the_grant_covers_it(app, cli, client, login, make_user):
    from .test_publishing import new_publisher_token, publish_ok

    make_user("hal@example.org", groups=("west",))
    done = cli("grant", "--report", "fresh_report", "--group", "west")
    assert done.exit_code == 0 and "granted report fresh_report to group west" in done.stdout
    assert "not published yet; created it empty" in done.stderr
    assert "not a report slug" in one_line_error(cli("grant", "--report", "../x", "--group", "west"))
    published = publish_ok(client, new_publisher_token(), report="fresh_report", title="Fresh Report")
    assert published["report_title"] == "Fresh Report"  # the first publication names the report the grant made
    assert published["readers"] == {"count": 1, "groups": ["west"]}
    assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "report_created")) is not None
    # the report page tells an admin the same rule and readers; a recipient is told nothing of others
    make_user("root@example.org", role="admin")
    with app.test_client() as admin_client:
        login(admin_client, "root@example.org")
        page = " ".join(admin_client.get("/reports/fresh_report").get_data(as_text=True).split())
    assert "Every variant and version is readable by 1 user in west; a version published with its own audience adds those readers." in page
    login(client, "hal@example.org")
    page = client.get("/reports/fresh_report")
    assert page.status_code == 200 and "Fresh Report" in page.get_data(as_text=True) and 'id="readers"' not in page.get_data(as_text=True)


def test_publications_list(cli, report_with_publication):
    _, publication = report_with_publication
    out = cli("publications", "list").stdout
    assert publication.public_id in out and "weekly_statistics" in out and "2026-W47" in out
    assert publication.public_id in cli("publications", "list", "--report", "weekly_statistics").stdout


# --- publisher tokens ----------------------------------------------------------------------------


def test_tokens_create_prints_the_token_once_and_stores_only_its_hash(cli, caplog):
    caplog.set_level(logging.DEBUG)
    result = cli("tokens", "create", "ci-runner")
    assert result.exit_code == 0, result.output
    token = printed_secret(result, "token")
    row = db.session.scalars(db.select(PublisherToken).where(PublisherToken.name == "ci-runner")).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {row.token_hash, row.prefix, row.name} and token.startswith(row.prefix)
    assert publishing.authenticate_publisher(token).id == row.id
    assert token not in caplog.text
    assert all(token not in str(e.detail) for e in db.session.scalars(db.select(AuditEvent)))
    listing = cli("tokens", "list").stdout
    assert "ci-runner" in listing and token not in listing
    assert "already exists" in one_line_error(cli("tokens", "create", "ci-runner"))

    assert cli("tokens", "revoke", "ci-runner").exit_code == 0
    with pytest.raises(Unauthorized):
        publishing.authenticate_publisher(token)
    assert "revoked" in cli("tokens", "list").stdout


def test_a_created_token_publishes_through_the_api(app, cli, client):
    if "api.publish" not in app.view_functions and not any(r.rule == "/api/v1/publications" and "POST" in r.methods for r in app.url_map.iter_rules()):
        pytest.fail("POST /api/v1/publications is not registered")
    token = printed_secret(cli("tokens", "create", "toolkit"), "token")
    data = make_pdf(1, marker="via cli token")
    metadata = {"report": "cli_report", "run_id": "run-1", "sha256": hashlib.sha256(data).hexdigest(), "period_label": "2026-W48", "parameters": {}}
    import json

    response = client.post(
        "/api/v1/publications", headers={"Authorization": f"Bearer {token}"},
        data={"metadata": json.dumps(metadata), "file": (io.BytesIO(data), "report.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code in (200, 201), response.get_json()
    assert cli("tokens", "revoke", "toolkit").exit_code == 0
    again = client.post(
        "/api/v1/publications", headers={"Authorization": f"Bearer {token}"},
        data={"metadata": json.dumps({**metadata, "run_id": "run-2"}), "file": (io.BytesIO(data), "report.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert again.status_code == 401


# --- audit and database --------------------------------------------------------------------------


def test_audit_tail_shows_the_newest_events_without_secrets(cli):
    password = printed_secret(cli("users", "add", "tia@example.org"), "one-time password")
    token = printed_secret(cli("tokens", "create", "t1"), "token")
    cli("users", "disable", "tia@example.org")
    out = cli("audit", "tail", "-n", "2").stdout.splitlines()
    assert len(out) == 3  # header + 2
    assert "publisher_token_created" in out[1] and "user_disabled" in out[2] and "tia@example.org" in out[2]
    everything = cli("audit", "tail").stdout
    assert "user_added" in everything and password not in everything and token not in everything
    assert cli("audit", "tail", "-n", "0").exit_code == 2


def test_init_db_is_idempotent(cli):
    for _ in range(2):
        result = cli("init-db")
        assert result.exit_code == 0 and "latest schema" in result.stdout


# --- `nbpress portal` (a real process; SQLite) ---------------------------------------------------


def _portal_env(instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}
    env["NBPRESS_INSTANCE"] = str(instance)
    return env


def test_nbpress_portal_passes_commands_through_and_reports_settings_in_one_line(tmp_path):
    instance = tmp_path / "instance"
    env = _portal_env(instance)
    missing = subprocess.run([str(NBPRESS), "portal", "users", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()] and "SECRET_KEY is required" in missing.stderr
    assert "Traceback" not in missing.stderr
    helped = subprocess.run([str(NBPRESS), "portal", "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "serve" in helped.stdout
    assert "Traceback" not in helped.stderr and helped.stderr.strip().count("\n") == 0
    assert "SECRET_KEY is required" in helped.stderr

    env.update({"NBPRESS_SECRET_KEY": "s" * 40, "NBPRESS_JWT_SECRET": "j" * 40, "NBPRESS_ARGON2_MEMORY_KIB": "64", "NBPRESS_ARGON2_TIME_COST": "1"})
    for args in (["init-db"], ["groups", "add", "north"], ["users", "add", "pat@example.org", "--group", "north"]):
        done = subprocess.run([str(NBPRESS), "portal", *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert "one-time password: " in done.stdout
    listing = subprocess.run([str(NBPRESS), "portal", "users", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert "pat@example.org" in listing.stdout and "north" in listing.stdout
    unknown = subprocess.run([str(NBPRESS), "portal", "users", "disable", "nobody@example.org"], env=env, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 1 and unknown.stderr.strip() == "Error: no user with email 'nobody@example.org'"


def test_nbpress_portal_refuses_a_name_with_cr_lf_in_one_line(tmp_path):
    env = _portal_env(tmp_path / "instance")
    env.update({"NBPRESS_SECRET_KEY": "s" * 40, "NBPRESS_JWT_SECRET": "j" * 40})
    done = subprocess.run([str(NBPRESS), "portal", "users", "add", "eve@example.org", "--name", "Eve\r\nBcc: x@evil.example"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == "Error: Invalid value for '--name': control character U+000D at position 4: use printable text"
    assert "Traceback" not in done.stderr and "\r" not in done.stderr


def test_nbpress_portal_serve_dev_writes_secrets_once_migrates_and_serves(tmp_path):
    instance = tmp_path / "instance"
    port = free_port()
    env = _portal_env(instance)
    server = subprocess.Popen([str(NBPRESS), "portal", "serve", "--dev", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_listening(port, server, name="the dev server")
        response = requests.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert response.status_code == 200 and "Sign in" in response.text
        assert requests.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=5).headers["Location"].startswith("/login")
    finally:
        server.terminate()
        server.wait(timeout=30)
    secrets_file = instance / "dev-secrets.toml"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    first = secrets_file.read_text()
    assert "SECRET_KEY" in first and "COOKIE_SECURE = false" in first
    assert (instance / "portal.sqlite3").exists()
    # nbpress became the server (exec): stopping it stopped the server, nothing is left listening
    assert not listening(port)
    # a second start keeps the secrets (sessions survive restarts)
    again = subprocess.Popen([str(NBPRESS), "portal", "serve", "--dev", "--port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_listening(port, again, name="the dev server")
    finally:
        again.terminate()
        again.wait(timeout=30)
    assert secrets_file.read_text() == first


def test_nbpress_portal_serve_on_all_interfaces_answers_only_trusted_hosts_and_says_so(tmp_path):
    port = free_port()
    server = subprocess.Popen([str(NBPRESS), "portal", "serve", "--dev", "--host", "0.0.0.0", "--port", str(port)],
                              env=_portal_env(tmp_path / "instance"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_listening(port, server, name="the dev server")
        assert requests.get(f"http://127.0.0.1:{port}/login", timeout=10).status_code == 200
        refused = requests.get(f"http://127.0.0.1:{port}/login", headers={"Host": "evil.example"}, timeout=10)
        assert refused.status_code == 400 and "Location" not in refused.headers
        doubled = requests.get(f"http://127.0.0.1:{port}/reports//alpha", allow_redirects=False, timeout=10)
        assert doubled.status_code == 404 and "Location" not in doubled.headers
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert ("note: only requests for 127.0.0.1, [::1], localhost are answered; "
            "set NBPRESS_TRUSTED_HOSTS to the names clients use") in output.splitlines()
