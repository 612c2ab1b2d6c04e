"""``nbpress portal mail-worker``: send the queued notification mails (see :mod:`notifications`)."""

from __future__ import annotations

import signal
import threading

import click
from flask import current_app

from ..notifications import worker

__all__ = ["mail_worker"]


@click.command("mail-worker")
@click.option("--once", is_flag=True, help="Send what is due now, print the totals and exit (cron, tests).")
@click.option("--poll", "poll_seconds", type=click.FloatRange(0.1, 3600), default=5, show_default=True,
              help="Seconds between looks at the queue when running on.")
@click.option("--batch", "batch_size", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="Jobs taken at once and sent over one SMTP connection.")
@click.option("--lease", "lease_seconds", type=click.FloatRange(1, 86_400), default=120, show_default=True,
              help="Seconds a taken batch stays this worker's (plus its time at the rate cap); a killed "
                   "worker's jobs are taken again after it.")
@click.option("--retry-seconds", type=click.FloatRange(0.1, 3600), default=30, show_default=True,
              help="Wait before the first retry while SMTP is down; it doubles with each try (at most an hour).")
def mail_worker(once: bool, poll_seconds: float, batch_size: int, lease_seconds: float, retry_seconds: float) -> None:
    """Send notification mails from the queue until stopped (SIGTERM / Ctrl-C).

    Each pass also ends run requests whose worker stopped answering or that no worker took in
    time, and mails each requester whose run request ended (once).

    Run one or more next to the portal (any number may run at once: each mail goes out once).
    Mail goes through NBPRESS_MAIL_URL; NBPRESS_NOTIFY_MAX_PER_MINUTE caps each worker. SIGTERM or
    Ctrl-C finishes the mail in hand and gives the rest of the batch back to the queue.
    """
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    totals = worker.run(current_app._get_current_object(), once=once, poll_seconds=poll_seconds, stop=stop,
                        batch_size=batch_size, lease_seconds=lease_seconds, retry_seconds=retry_seconds)
    click.echo(f"notifications: {totals}", err=True)
