"""After a run: the one policy for what happens next, the same for the command line, batches and schedules.

- **blocked** (a data check failed): the owner is told (``notification.eml`` in the run folder,
  and a mail when one is configured);
- **failed**: the owner is told when nobody is watching (``unattended``: a scheduled run that
  failed for good); at a terminal the person who ran it sees the error;
- **succeeded**: published when a portal is configured. A failed upload marks the run ``failed``
  at stage ``publish`` (the PDF is kept; ``nbpress publish RUN_DIR`` sends it later) and, when
  unattended, the owner is told.

With a portal configured, every run ends with its log line there (:mod:`toolkit.deliver.run_log`;
a portal that does not take it costs a warning line, never the run).

Everything runs on the submitting side (never on a batch worker).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..deliver.owner_notice import Mailer, notify_owner
from ..deliver.portal_client import PublishConfig, PublishedRun, publish_run
from ..deliver.run_log import log_run
from ..errors import NbpressError
from ..inputs.spec import ReportSpec
from .run_folder import FailureRecord, load_run, save_run

__all__ = ["AfterRun", "Finished", "finish"]

log = logging.getLogger("nbpress.finish")


@dataclass(frozen=True)
class AfterRun:
    """Who is told and where results go: the same for every run of one command or daemon."""

    publish: PublishConfig | None = None  # None: the PDF stays in the run folder
    mailer: Mailer | None = None  # None: notification.eml in the run folder only
    unattended: bool = False  # failures go to the owner (nobody watches the terminal)
    retries: int = 4  # the publish client's retries of a portal that is down, 5xx or 429
    backoff: float = 0.5
    request_id: str | None = None  # the portal's run request this run answers (nbpress worker)


@dataclass(frozen=True)
class Finished:
    status: str  # the run's final status
    published: PublishedRun | None = None
    error: NbpressError | None = None  # why the upload failed


def finish(run_dir: Path, spec: ReportSpec, policy: AfterRun) -> Finished:
    """Apply the policy to the run in ``run_dir`` (its status is read from ``run.json``); then
    its log line goes to the portal."""
    done = _finish(run_dir, spec, policy)
    log_run(policy.publish, run_dir, spec, request_id=policy.request_id)
    return done


def _finish(run_dir: Path, spec: ReportSpec, policy: AfterRun) -> Finished:
    record = load_run(run_dir)
    if record.status == "blocked" or (record.status == "failed" and policy.unattended):
        notify_owner(run_dir, record, spec.owner, policy.mailer)
        return Finished(record.status)
    if record.status != "succeeded" or policy.publish is None:
        return Finished(record.status)
    try:
        published = publish_run(run_dir, policy.publish.portal, policy.publish.token, retries=policy.retries,
                                backoff=policy.backoff)
    except NbpressError as exc:
        # The PDF exists but did not reach its readers: the run failed at its last stage.
        record = load_run(run_dir)
        record.status = "failed"
        record.error = FailureRecord(stage="publish", type=type(exc).__name__, message=str(exc))
        save_run(run_dir, record)
        if policy.unattended:
            notify_owner(run_dir, record, spec.owner, policy.mailer)
        return Finished("failed", error=exc)
    log.info("%s: published v%s: %s", spec.name, published.version, published.link)
    if published.nobody_can_read:
        log.warning("%s v%s: nobody can read it yet (admins only): grant it with `nbpress portal grant --report %s --group GROUP`",
                    spec.name, published.version, published.report)
    return Finished("succeeded", published)
