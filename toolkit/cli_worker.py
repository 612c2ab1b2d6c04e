"""``nbpress worker``: run the reports users ask for on the portal (imports inside the function, as in :mod:`cli`)."""

from __future__ import annotations

import sys

import click

from .cli_support import _logging, _project, handle_errors

__all__ = ["worker"]

PORTAL_HELP = "NBPRESS_PORTAL_URL, else `portal` in the publish config file"


@click.command()
@click.option("--portal", metavar="URL", help=f"Portal to take requests from and publish to [default: {PORTAL_HELP}].")
@click.option("--report", "reports", multiple=True, metavar="NAME",
              help="Serve only this report (repeatable) [default: every spec in notebooks/].")
@click.option("-p", "--param", "assignments", multiple=True, metavar="NAME=VALUE",
              help="A value for the runs of every served report that has NAME, e.g. the database URL a request may not set (repeatable).")
@click.option("--once", is_flag=True, help="Take at most one request, run it and exit: 0 when it succeeded or none was queued.")
@click.option("--poll", type=click.FloatRange(0.1, 3600), default=5.0, show_default=True, metavar="SECONDS",
              help="Seconds between claims while nothing is queued.")
@click.pass_context
@handle_errors
def worker(ctx: click.Context, portal: str | None, reports: tuple[str, ...], assignments: tuple[str, ...], once: bool,
           poll: float) -> None:
    """Run the reports users ask for on the portal, until SIGTERM or Ctrl-C.

    At start each report served sends the portal its profile: the form of the parameters a
    portal user may set (the spec's run_parameters, else the shown ones; never a Secret) with
    their types and defaults, the schedule and owners. The other parameters keep the spec's
    values, or -p's. Then the worker claims queued run requests for those reports, checks
    their values again, and runs each as a scheduled run goes: execute -> data checks -> PDF ->
    publish, owner e-mail for blocked and failed runs, the run's log on the portal. The
    portal sees each stage; a cancel there stops the kernel. One request at a time: run more
    workers for more (the portal gives a request to one worker only, under a lease renewed
    every third of it).

    The publisher token comes from NBPRESS_PUBLISH_TOKEN or the publish config file, as for
    `nbpress publish`. On SIGTERM/SIGINT the running request's kernel is stopped and the
    request handed back to the portal (queued again), then the worker exits 0.
    """
    from .deliver.portal_client import load_publish_config
    from .deliver.run_reports import PortalRuns
    from .request_worker.claim_loop import served_specs, serve_requests, worker_values
    from .scheduler.tick import owner_mail

    project = _project(ctx)
    config = load_publish_config(portal)  # a missing token or URL: one line, before anything runs
    endpoints = PortalRuns(config)  # and a URL the token may not go to
    specs = served_specs(project, reports)
    values = worker_values(specs, assignments)  # a bad -p is one line and exit 2, before the portal hears of us
    _logging()
    mailer, mail_line = owner_mail()
    click.echo(mail_line, err=True)
    sys.exit(serve_requests(project, config, specs, once=once, poll=poll, values=values, mailer=mailer, portal=endpoints,
                            say=lambda line: click.echo(f"nbpress: {line}", err=True)))
