"""Telling a report's owner that a run needs them: blocked by a data check, or a scheduled run failed.

The message is built here; how it travels is a :class:`Mailer` (a seam, like the portal's mail
backends). The default, :class:`RunFolderMailer`, writes ``notification.eml`` into the run
folder and logs one line: the folder is the evidence, and it travels back from Dask workers
with the rest of the run. An SMTP mailer (or the portal's) plugs in with the same ``send``.
Notifications are sent from the submitting side (CLI, batch driver, scheduler), never from a
worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from .. import settings
from ..inputs.params import SECRET_SHOWN, secret_variable
from ..runs.masking import mask_text, secret_values
from ..runs.run_folder import RunRecord

__all__ = ["Notification", "Mailer", "RunFolderMailer", "RecordingMailer", "notify_owner", "needs_owner"]

log = logging.getLogger("nbpress.notify")
FILE_NAME = "notification.eml"


@dataclass(frozen=True)
class Notification:
    to: str
    subject: str
    body: str
    run_dir: Path

    def as_email(self, sender: str = settings.default("MAIL_FROM")) -> EmailMessage:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, self.to, self.subject
        message.set_content(self.body)
        return message


class Mailer(Protocol):
    def send(self, notification: Notification) -> None: ...


class RunFolderMailer:
    """Write the message into the run folder and log it (no mail server needed)."""

    def send(self, notification: Notification) -> None:
        path = notification.run_dir / FILE_NAME
        path.write_bytes(bytes(notification.as_email()))
        log.warning("owner %s told: %s (%s)", notification.to, notification.subject, path)


class RecordingMailer:
    """The test double shipped with the seam: keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)


def needs_owner(record: RunRecord) -> bool:
    """Blocked runs always; failures only when nobody is watching (scheduled runs)."""
    return record.status == "blocked" or (record.status == "failed" and record.trigger == "schedule")


def _body(record: RunRecord, run_dir: Path) -> str:
    lines = [
        f"Report: {record.report}",
        f"Run: {record.run_id} (attempt {record.attempt}, {record.trigger})",
        f"Status: {record.status}",
        f"Parameters: {', '.join(f'{k}={v}' for k, v in record.parameters.items()) or '(none)'}",
        f"Run folder: {run_dir}",
        "",
    ]
    failed_checks = [c for c in record.checks if not c.passed]
    if failed_checks:
        lines.append("Failed data checks (nothing was published):")
        lines += [f"  - {c.check}: {c.detail}" for c in failed_checks]
    elif record.error is not None:
        lines.append(f"Error in stage '{record.error.stage}': {record.error.message}")
        if record.error.cell_index is not None:
            lines.append(f"Failing cell: {record.error.cell_index} ({record.error.ename}: {record.error.evalue})")
        if (run_dir / "executed.ipynb").exists():
            lines.append(f"Executed notebook: {run_dir / 'executed.ipynb'}")
    return mask_text("\n".join(lines) + "\n", _secrets_of(record))


def _secrets_of(record: RunRecord) -> list[str]:
    """The values of the run's secrets (shown as *** in its parameters), if this process has them:
    the recorded error is masked already; this keeps a mail from ever carrying one."""
    names = [k for k, v in record.parameters.items() if v == SECRET_SHOWN]
    return secret_values({n: secret_variable(n, _sources(record)) for n in names})


def _sources(record: RunRecord) -> dict[str, object]:
    from types import SimpleNamespace

    return {k: SimpleNamespace(env=(v or {}).get("env")) for k, v in (record.spec.get("secrets") or {}).items()}


def notify_owner(run_dir: Path, record: RunRecord, owner: str | None, mailer: Mailer | None = None) -> Notification | None:
    """Tell ``owner`` about this run when :func:`needs_owner`; returns what was sent."""
    if not owner or not needs_owner(record):
        return None
    what = "blocked by data checks" if record.status == "blocked" else "failed"
    notification = Notification(
        to=owner,
        subject=f"[nbpress] {record.report} {what} ({record.run_id})",
        body=_body(record, run_dir),
        run_dir=run_dir,
    )
    (mailer or RunFolderMailer()).send(notification)
    return notification
