"""A finished run's log line for the portal, and a failed run's executed notebook as HTML.

Sent after every run that publishes or could have (``nbpress run --publish``, batch members,
scheduled ticks, ``nbpress worker``), so owners see on the portal what the command line shows:
status, trigger, timings, the error line, the parameters as readers see them
(:mod:`toolkit.render.shown`: no URL passwords, no secrets). A failed run also sends its
executed notebook, which the pipeline already masked (:mod:`toolkit.runs.masking`).

Profiles come from the processes that serve or schedule a report (``nbpress worker`` with its
``-p``, ``nbpress schedule``) at their start; a log for a report the portal does not know yet
(its first run failed before anything was published) sends the profile first, which makes it.

The log is news, not the run: when the portal cannot be reached or refuses it, one warning
line is logged and the run keeps its status.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from pathlib import Path
from typing import Any

from ..errors import NbpressError, PublishError, UsageError
from .portal_client import PublishConfig
from ..inputs.sensitive import mask_url_passwords
from ..render.shown import shown_parameters
from ..runs.run_folder import RunRecord, load_run
from .run_profile import report_profile
from .run_reports import PortalRuns

__all__ = ["run_log_body", "notebook_html", "send_run_log", "log_run", "one_line", "TRIGGERS"]

log = logging.getLogger("nbpress.runlog")
TRIGGERS = ("schedule", "request", "manual", "batch")
ERROR_LINE_MAX = 500
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # terminal colour codes, as IPython's tracebacks carry
NOTEBOOK_SENT_FOR = ("failed", "blocked", "cancelled")  # the evidence owners look at when a run did not get through


def _iso(moment) -> str | None:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def one_line(text: str, limit: int = ERROR_LINE_MAX) -> str:
    """``text``'s first line as the portal shows it: no control characters (a traceback's colour
    codes), no URL password, at most ``limit`` characters."""
    first = _ANSI.sub("", (text.splitlines() or [""])[0])
    printable = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in first)
    return mask_url_passwords(" ".join(printable.split()))[:limit]


def _error_line(record: RunRecord) -> str | None:
    if record.error is None or record.status == "succeeded":
        return None
    return one_line(record.error.message) or record.error.type


def run_log_body(record: RunRecord, spec: Any, *, request_id: str | None = None) -> dict[str, Any]:
    """The body of ``POST /api/v1/reports/<report>/runs`` for ``record``."""
    body: dict[str, Any] = {
        "run_id": record.run_id,
        "status": record.status,
        "trigger": record.trigger if record.trigger in TRIGGERS else "manual",
        "started_at": _iso(record.started),
        "parameters": shown_parameters(spec, record.parameters),
    }
    if record.finished is not None:
        body["finished_at"] = _iso(record.finished)
        body["duration_seconds"] = round((record.finished - record.started).total_seconds(), 3)
    if (line := _error_line(record)) is not None:
        body["error_line"] = line
    if request_id:
        body["request"] = request_id
    if record.publication is not None:
        body["publication"] = record.publication.id
    return body


def notebook_html(run_dir: Path) -> bytes | None:
    """The run's executed notebook (masked by the pipeline) as standalone HTML; None when it has none."""
    executed = run_dir / "executed.ipynb"
    if not executed.is_file():
        return None
    import nbformat  # nbconvert (~1 s to import) only for a run that did not get through
    from nbconvert import HTMLExporter

    notebook = nbformat.read(str(executed), as_version=4)
    html, _resources = HTMLExporter().from_notebook_node(notebook)
    return html.encode("utf-8")


def send_run_log(portal: PortalRuns, run_dir: Path, spec: Any, *, request_id: str | None = None) -> bool:
    """Send ``run_dir``'s log (and, when it did not get through, its notebook); False after a warning line."""
    try:
        record = load_run(run_dir)
        body = run_log_body(record, spec, request_id=request_id)
        _post(portal, record.report, body, spec)
        if body["status"] in NOTEBOOK_SENT_FOR and (html := notebook_html(run_dir)) is not None:
            portal.put_notebook(record.report, record.run_id, html)
    except NbpressError as exc:
        log.warning("run log of %s not sent to the portal: %s", run_dir.name, exc)
        return False
    except (OSError, ValueError) as exc:  # an unreadable notebook: the log line went, the evidence stays here
        log.warning("executed notebook of %s not sent to the portal (%s)", run_dir.name, type(exc).__name__)
        return False
    return True


def _post(portal: PortalRuns, report: str, body: dict[str, Any], spec: Any) -> None:
    """The log line; for a report the portal does not know yet (its first run failed before any
    publication), its profile first, which makes it."""
    try:
        portal.post_run_log(report, body)
        return
    except PublishError as exc:
        if exc.status != 404:
            raise
    try:
        portal.put_profile(report, report_profile(spec))
    except UsageError as exc:  # e.g. the notebook was edited into something unreadable since
        raise PublishError(f"the portal does not know {report} yet and its profile cannot be made: {exc}") from None
    portal.post_run_log(report, body)


def log_run(config: PublishConfig | None, run_dir: Path | None, spec: Any, *, request_id: str | None = None) -> bool:
    """:func:`send_run_log` to the portal runs publish to; nothing without one (or without a run folder).

    One retry only: a portal that is down already cost the publish its retries, and a batch
    must not wait on news.
    """
    if config is None or run_dir is None:
        return False
    try:
        portal = PortalRuns(config, retries=1)
    except NbpressError as exc:
        log.warning("run log of %s not sent to the portal: %s", Path(run_dir).name, exc)
        return False
    return send_run_log(portal, Path(run_dir), spec, request_id=request_id)
