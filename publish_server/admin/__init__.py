"""Operator commands: ``flask --app publish_server <command>`` or ``nbpress portal <command>``.

Each command is one transaction committed at its end; a problem is one line on stderr and a
non-zero exit (click's ``Error: ...``, status 1; usage errors status 2). Text arguments with
control characters (CR, LF, NUL, DEL, U+2028 ...) are usage errors: nothing typed here can reach a
mail header, a terminal or a log line as more than text. One-time passwords and publisher tokens
are printed to stdout exactly once and never logged or audited.

One module per command group (:mod:`users`, :mod:`groups` with the grants, :mod:`publications`
with the publisher tokens, :mod:`audit_log`, :mod:`devices`, :mod:`database`, :mod:`files`, :mod:`mail_worker`,
:mod:`run_requests`; :mod:`run_grants` serves ``grant --run``), sharing
:mod:`common`. ``python -m publish_server.admin ...`` (what ``nbpress portal ...`` runs) is
:mod:`entry`: the same command set plus ``serve``.
"""

from __future__ import annotations

from flask import Flask

from . import audit_log, database, devices, files, groups, mail_worker, publications, run_requests, users

__all__ = ["init_app", "COMMANDS"]

COMMANDS = (database.init_db, users.users, groups.groups, groups.grant, groups.revoke_grant, groups.grants_list, publications.tokens,
            publications.publications, audit_log.audit_group, devices.devices_group, files.files_group,
            mail_worker.mail_worker, run_requests.run_requests)


def init_app(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
