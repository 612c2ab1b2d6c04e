"""The toolkit's settings: one declared table of ``NBPRESS_*`` environment variables.

Every variable the toolkit reads is declared here with its type, default and what it does;
``docs/toolkit-settings.md`` is generated from this table (a test keeps them equal). A bad value
is a :class:`UsageError` naming the variable (never a secret's value). The mail settings are the
portal's own variables with the portal's defaults, so one set of ``NBPRESS_MAIL_*`` serves both
(the toolkit never imports the portal; a test compares the two tables).

Command-line options win over these (``--project``, ``--portal``, ``--jobs-db``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .notebook.run_env import RUN_ENV

__all__ = ["Setting", "SETTINGS", "PREFIX", "RUN_ID", "SECRET_PREFIX", "PATTERNS", "get", "default", "settings_table_markdown"]

PREFIX = "NBPRESS_"
# Set by the toolkit itself for the kernel of a run (the notebook API reads it), not by users.
RUN_ID = RUN_ENV
# A notebook's `Secret` parameter NAME is read from NBPRESS_SECRET_<NAME> unless its spec names
# another variable (`secrets: {name: {env: VAR}}`); one variable per secret, not a setting.
SECRET_PREFIX = PREFIX + "SECRET_"
PATTERNS: tuple[tuple[str, str], ...] = (
    (SECRET_PREFIX, "The value of the notebook's `Secret` parameter `<name>` (upper case), unless the report spec names another variable under `secrets:`. Never given with `-p` or a values file; masked as `***` in the run folder."),
)


@dataclass(frozen=True)
class Setting:
    name: str  # without the prefix
    type: type
    default: Any
    doc: str
    secret: bool = False
    minimum: int | None = None

    @property
    def variable(self) -> str:
        return PREFIX + self.name


SETTINGS: tuple[Setting, ...] = (
    Setting("PROJECT", str, ".", "Project root (with notebooks/, templates/, runs/) when `--project` is not given."),
    Setting("DEBUG", bool, False, "Print the traceback of an unexpected error instead of one line."),
    Setting("PORTAL_URL", str, "", "Portal to publish to when `--portal` is not given; else `portal` in the publish config file."),
    Setting("PUBLISH_TOKEN", str, "", "Publisher token (`nbpress portal tokens create`); else `token` in the publish config file. Never give it on the command line.", secret=True),
    Setting("PUBLISH_CONFIG", str, "~/.config/nbpress/publish.toml", "TOML file with `portal` and `token`; must be readable by its owner only."),
    Setting("PUBLISH_ALLOW_HTTP", bool, False, "Send the publisher token over plain HTTP to another machine. Off: HTTPS, or plain HTTP to this machine only. For test benches on a private network."),
    Setting("JOBS_DB", str, "", "The scheduler's job store, a SQLAlchemy URL, when `--jobs-db` is not given; default `sqlite:///PROJECT/runs/.schedule.sqlite`. Keep passwords in `~/.pgpass`, not in the URL."),
    Setting("SCHEDULE_LEASE_SECONDS", int, 15, "`nbpress schedule`: several daemons may share one job store; the one holding this lease fires the jobs and renews it every third of it. A killed leader is replaced after about the lease plus 2 s.", minimum=3),
    Setting("FORK_KERNELS", bool, True, "Batches fork each member's fresh kernel from one warm template process (imports paid once). Off: a new kernel process per member."),
    Setting("DASK_TLS_CA", str, "", "With `--cluster tls://HOST:PORT`: PEM file of the CA that signed the Dask scheduler's and workers' certificates (required for `tls://`)."),
    Setting("DASK_TLS_CERT", str, "", "With `--cluster tls://...`: this client's certificate (PEM), signed by that CA (required for `tls://`)."),
    Setting("DASK_TLS_KEY", str, "", "Private key of DASK_TLS_CERT, when not in the same file."),
    Setting("INSTANCE", str, "", "The portal's instance folder, for `nbpress portal ...` and `nbpress demo` (the portal reads it; see portal-settings.md)."),
    Setting("MAIL_URL", str, "file:outbox", "Owner mail transport: `smtp+starttls://host:587`, `smtps://host:465` or `smtp://host:25` (a relay on this machine, no login); anything else (`file:...`): `notification.eml` in the run folder only."),
    Setting("MAIL_FROM", str, "Notebook Press <nbpress@localhost>", "Sender of owner mails: `Name <address>` or an address."),
    Setting("MAIL_USERNAME", str, "", "SMTP login, sent only after TLS (empty: no login)."),
    Setting("MAIL_PASSWORD", str, "", "SMTP password.", secret=True),
    Setting("MAIL_EHLO", str, "", "Name given in EHLO; default: this host's fully qualified name."),
    Setting("MAIL_TIMEOUT_SECONDS", int, 10, "Timeout of each SMTP connection and command.", minimum=1),
    Setting("MAIL_CA_FILE", str, "", "PEM file of CAs to trust for the SMTP server, instead of the system's."),
    Setting("MAIL_CERT_FILE", str, "", "Client certificate (PEM) for SMTP servers that ask for one."),
    Setting("MAIL_KEY_FILE", str, "", "Private key of MAIL_CERT_FILE, when not in the same file."),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _parse(setting: Setting, raw: str) -> Any:
    if setting.type is bool:
        lowered = raw.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise UsageError(f"{setting.variable}: expected true or false, got {raw!r}")
        return lowered in _TRUE
    if setting.type is int:
        try:
            value = int(raw)
        except ValueError:
            shown = "" if setting.secret else f", got {raw!r}"
            raise UsageError(f"{setting.variable}: expected a whole number{shown}") from None
        if setting.minimum is not None and value < setting.minimum:
            raise UsageError(f"{setting.variable}: must be at least {setting.minimum}")
        return value
    return raw


def get(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The value of setting ``name`` (without the prefix) from ``environ`` (default: this process's)."""
    setting = _BY_NAME[name]
    env = os.environ if environ is None else environ
    raw = env.get(setting.variable)
    return setting.default if raw is None else _parse(setting, raw)


def default(name: str) -> Any:
    return _BY_NAME[name].default


def settings_table_markdown() -> str:
    """The settings as a Markdown table (docs/toolkit-settings.md is checked against it)."""
    lines = ["| variable | default | what |", "|---|---|---|"]
    for s in SETTINGS:
        default = "(empty)" if s.default == "" else str(s.default).lower() if isinstance(s.default, bool) else f"`{s.default}`"
        lines.append(f"| `{s.variable}` | {default} | {s.doc} |")
    for prefix, doc in PATTERNS:
        lines.append(f"| `{prefix}<NAME>` | (none) | {doc} |")
    return "\n".join(lines) + "\n"
