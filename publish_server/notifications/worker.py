"""The sender's loop: ``nbpress portal mail-worker`` and the in-process thread of ``serve --dev``.

Each pass also sweeps run requests whose worker is gone and mails requesters whose run request
ended (:mod:`report_runs`)."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from ..extensions import db
from ..report_runs import claims as run_claims, requester_mail
from .sender import Sender, Totals

__all__ = ["run", "start_thread"]

log = logging.getLogger(__name__)


def run(app: Flask, *, once: bool, poll_seconds: float = 5, stop: threading.Event | None = None, **options) -> Totals:
    """Send what is due; with ``once`` return when nothing is due, else poll every ``poll_seconds``
    until ``stop`` is set (the mail in hand is finished, the rest of its batch given back)."""
    totals = Totals()
    stop = stop or threading.Event()
    with app.app_context():
        sender = Sender(app, stop=stop, **options)
        while not stop.is_set():
            try:
                done = sender.run_once()
                _run_requests(app)
            finally:
                db.session.remove()
            totals.add(done)
            if done.sent or done.failed:
                log.info("notifications: %s", done)
            if once:
                return totals
            stop.wait(poll_seconds)
    return totals


def _run_requests(app: Flask) -> None:
    """Runs from the portal: end what lapsed (no request may wait for a user to look), then tell
    the requesters whose requests ended."""
    swept = {k: v for k, v in run_claims.sweep().items() if v}
    told = requester_mail.send_due(app)
    if swept or told.sent or told.failed:
        log.info("run requests: swept %s; requester mails %s", swept or "none", told)


def _forever(app: Flask, poll_seconds: float) -> None:
    while True:
        try:
            run(app, once=False, poll_seconds=poll_seconds)
        except Exception:  # the development server keeps serving; the log says why mails stopped for a while
            log.exception("notification sender stopped; restarting in %s s", poll_seconds)
            time.sleep(poll_seconds)


def start_thread(app: Flask, *, poll_seconds: float = 2) -> threading.Thread:
    """A daemon thread sending notifications next to the development server (``serve --dev``)."""
    thread = threading.Thread(target=_forever, args=(app, poll_seconds), name="nbpress-mail-sender", daemon=True)
    thread.start()
    return thread
