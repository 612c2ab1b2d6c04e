"""The operator's commands for runs from the portal: project tokens, run grants, roles, run-requests."""

from __future__ import annotations

import re

import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import AuditEvent, Grant, PublisherToken, RunGrant, User
from tests.portal.run_helpers import PROFILE, bearer, claim, finish, queue
from tests.portal.test_admin import cli, one_line_error, printed_secret  # noqa: F401  (cli is a fixture)


def test_a_token_made_for_a_project_acts_only_for_it(cli, client):
    made = cli("tokens", "add", "etl", "--project", "finance")
    assert made.exit_code == 0 and "for project finance" in made.stdout
    token = printed_secret(made, "token")
    legacy = printed_secret(cli("tokens", "create", "old"), "token")
    assert db.session.scalars(sa.select(PublisherToken.project).where(PublisherToken.name == "etl")).one() == "finance"
    listing = cli("tokens", "list").stdout
    assert "finance" in listing and "(every report)" in listing and token not in listing
    assert client.put("/api/v1/reports/ledger/profile", json=PROFILE, headers=bearer(legacy)).status_code == 200
    assert client.put("/api/v1/reports/ledger/profile", json=PROFILE, headers=bearer(token)).status_code == 200  # takes it
    other = printed_secret(cli("tokens", "add", "other", "--project", "sales"), "token")
    assert client.put("/api/v1/reports/ledger/profile", json=PROFILE, headers=bearer(other)).get_json()["error"] == "wrong_project"
    assert "a project name is" in one_line_error(cli("tokens", "add", "bad", "--project", "../x"))
    moved = cli("tokens", "set-project", "old", "sales")
    assert moved.exit_code == 0 and "acts for project sales (before: every report)" in moved.stdout
    assert client.put("/api/v1/reports/ledger/profile", json=PROFILE, headers=bearer(legacy)).get_json()["error"] == "wrong_project"
    assert "no publisher token named" in one_line_error(cli("tokens", "set-project", "nope", "sales"))


def test_grant_run_adds_the_run_and_read_grants_and_revoke_removes_only_the_run_grant(cli, make_user):
    make_user("alice@example.com")
    make_user("bob@example.com", groups=("east",))
    done = cli("grant", "--run", "--report", "weekly", "--user", "alice@example.com")
    assert done.exit_code == 0 and "granted runs of report weekly to user alice@example.com (and reading it)" in done.stdout
    assert "already granted" in cli("grant", "--run", "--report", "weekly", "--user", "alice@example.com").stdout
    cli("grant", "--report", "weekly", "--group", "east")
    group = cli("grant", "--run", "--report", "weekly", "--group", "east")
    assert group.exit_code == 0 and "(and reading it)" not in group.stdout  # the read grant was there
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RunGrant)) == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Grant)) == 2
    listed = cli("grants", "--report", "weekly").stdout
    assert re.search(r"^weekly +- +run +user alice@example.com$", listed, re.M) and re.search(r"^weekly +- +run +group east$", listed, re.M)
    assert cli("revoke-grant", "--run", "--report", "weekly", "--user", "alice@example.com").exit_code == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RunGrant)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Grant)) == 2  # reading stays
    assert "no such grant" in one_line_error(cli("revoke-grant", "--run", "--report", "weekly", "--user", "alice@example.com"))
    assert cli("grant", "--run", "--report", "weekly", "--variant", "north", "--user", "alice@example.com").exit_code == 2
    assert cli("grant", "--run", "--publication", "x", "--user", "alice@example.com").exit_code == 2
    events = [e.event for e in db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event.like("run_grant%")))]
    assert events == ["run_grant_added", "run_grant_added", "run_grant_revoked"]


def test_operators_are_added_and_roles_changed(cli, make_user):
    made = cli("users", "add", "olga@example.com", "--operator")
    assert made.exit_code == 0 and "added operator olga@example.com" in made.stdout
    assert cli("users", "add", "x@example.com", "--operator", "--admin").exit_code == 2
    make_user("rita@example.com")
    assert "recipient -> operator" in cli("users", "set-role", "rita@example.com", "operator").stdout
    assert db.session.scalars(sa.select(User.role).where(User.email == "rita@example.com")).one() == "operator"
    assert "operator -> admin" in cli("users", "set-role", "rita@example.com", "admin").stdout
    assert "already admin" in cli("users", "set-role", "rita@example.com", "admin").stdout
    assert cli("users", "set-role", "rita@example.com", "root").exit_code == 2
    assert "operator" in cli("users", "list").stdout


def test_run_requests_lists_requests_and_sweeps_first(cli, client, make_user):
    token = printed_secret(cli("tokens", "add", "etl", "--project", "finance"), "token")
    alice = make_user("alice@example.com")
    done = queue("weekly", alice, project="finance")
    claim(client, token)
    finish(client, token, done.public_id, status="failed", error_line="cell 2: ValueError: no data")
    waiting = queue("weekly", alice, project="finance")
    old = queue("monthly", alice, minutes=-5, project="finance")
    listed = cli("run-requests")
    assert listed.exit_code == 0
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "failed" in lines[done.public_id] and "cell 2: ValueError: no data" in lines[done.public_id]
    assert "queued" in lines[waiting.public_id] and "expired" in lines[old.public_id]  # swept before listing
    only = cli("run-requests", "--report", "weekly", "--status", "queued").stdout
    assert waiting.public_id in only and done.public_id not in only and old.public_id not in only
    assert cli("run-requests", "--status", "lost").exit_code == 2
    assert "no report with slug" in one_line_error(cli("run-requests", "--report", "nope"))
