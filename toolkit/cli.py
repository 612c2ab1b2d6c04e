"""The ``nbpress`` command line. Thin: parse, call the pipeline, print one clear line.

Exit status: 0 success; 1 a run failed (the run folder says why); 2 bad input (spec,
parameters, notebook, arguments), refused before any kernel starts.

Every command imports what it needs inside its function, on purpose: each ``nbpress`` call
must start fast (``nbpress --help`` or ``nbpress runs`` do not load papermill, WeasyPrint,
pandas or dask). This is the one module where imports inside functions are the rule.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import yaml

from .cli_runs import runs
from .cli_support import _logging, _project, handle_errors
from .cli_worker import worker
from .errors import DataCheckError, NbpressError, SchedulerError, UsageError
from .version import __version__

PROJECT_HELP = "Project root holding notebooks/, templates/ and runs/ [default: current directory]."
PORTAL_HELP = "NBPRESS_PORTAL_URL, else `portal` in the publish config file"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nbpress")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=".", envvar="NBPRESS_PROJECT", help=PROJECT_HELP)
@click.pass_context
def main(ctx: click.Context, project: Path) -> None:
    """Notebook Press: parameterized notebooks -> PDF reports."""
    ctx.ensure_object(dict)["project"] = project


@main.command()
@click.argument("report")
@click.pass_context
@handle_errors
def params(ctx: click.Context, report: str) -> None:
    """Print the parameters REPORT (a name, spec or notebook) accepts."""
    from rich.console import Console
    from rich.table import Table

    from .inputs.params import TAG_HOW_TO, read_schema, to_jsonable
    from .inputs.spec import find_report

    spec = find_report(report, _project(ctx).notebooks_dir)
    schema = read_schema(spec.notebook)
    if not schema.tagged:
        click.echo(f"{spec.notebook.name} takes no parameters: it has no cell tagged 'parameters' ({TAG_HOW_TO})")
        return
    table = Table(title=f"{spec.title} ({spec.notebook.name})", title_justify="left")
    for column in ("name", "type", "default", "choices", "help"):
        table.add_column(column)
    for p in schema.parameters:
        default = "(required)" if p.required else json.dumps(to_jsonable(spec.parameters.get(p.name, p.default)))
        choices = ", ".join(map(str, p.type.choices)) if p.type.kind == "literal" else ""
        table.add_row(p.name, p.type.describe() if p.type.kind != "literal" else "literal", default, choices, p.help)
    Console(width=120).print(table)


@main.command()
@click.argument("name")
@click.option("--from", "source", metavar="REPORT", help="Copy this report's notebook (outputs cleared) and spec instead.")
@click.option("--template", is_flag=True, help="Also write templates/NAME.html.j2 extending base.html.j2 (set in the spec).")
@click.pass_context
@handle_errors
def new(ctx: click.Context, name: str, source: str | None, template: bool) -> None:
    """Start report NAME: notebooks/NAME.ipynb and NAME.yml, ready to run. Never overwrites.

    The notebook has a tagged, typed parameters cell, one example table and figure made from
    its parameters (no data source needed) and a last `tk.preview()` cell.
    """
    from .new_report import create_report

    project = _project(ctx)
    for path in create_report(project, name, source=source, template=template):
        click.echo(f"wrote {_shown_path(path)}")
    where = "" if Path(ctx.obj["project"]).resolve() == Path.cwd() else f"--project {ctx.obj['project']} "
    click.echo(f"next: nbpress {where}run {name}   (or open {_shown_path(project.notebooks_dir / (name + '.ipynb'))} "
               "in JupyterLab: make lab)")


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _load_param_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read parameters ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of parameter names to values")
    return data


@main.command()
@click.argument("report")
@click.option("-p", "--param", "assignments", multiple=True, metavar="NAME=VALUE", help="Set a parameter (repeatable).")
@click.option("-f", "--param-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="YAML file of parameter values.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Runs folder [default: PROJECT/runs].")
@click.option("--publish", "publish_after", is_flag=True, help="Publish the PDF to the portal when the run succeeds.")
@click.option("--portal", metavar="URL", help=f"Portal to publish to (implies --publish) [default: {PORTAL_HELP}].")
@click.option("-g", "--grid", "grid_options", multiple=True, metavar="NAME=V1,V2",
              help="Run every combination of these values (repeatable; NAME='last N' for recent weeks); adds to the spec's grid.")
@click.option("--no-grid", is_flag=True, help="Ignore the spec's grid: one run with its defaults.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Day that 'last N' grid values count back from [default: today].")
@click.option("-w", "--workers", type=click.IntRange(1, 256), help="Batch worker processes on this machine [default: two per CPU].")
@click.option("--cluster", metavar="tcp://HOST:PORT|tls://HOST:PORT|local:N",
              help="Run the batch on a Dask cluster: a running scheduler's address (tls://: certificates from NBPRESS_DASK_TLS_*), or local:N for a LocalCluster using N CPUs here (two worker processes per CPU, as locally).")
@click.pass_context
@handle_errors
def run(ctx: click.Context, report: str, assignments: tuple[str, ...], param_file: Path | None, out_dir: Path | None,
        publish_after: bool, portal: str | None, grid_options: tuple[str, ...], no_grid: bool, as_of: dt.datetime | None,
        workers: int | None, cluster: str | None) -> None:
    """Execute REPORT in a fresh kernel and write its PDF to a new run folder.

    With a grid (the spec's `grid`, or --grid) every combination runs, each in its own run
    folder and fresh kernel; a failed member does not stop the others. Exit status 1 when any
    member failed or was blocked.

    With --cluster the members run on Dask workers (same environment, no shared filesystem:
    the notebook's folder and templates/ travel to them, run folders come back here; with
    local:N they write their run folders in place); publishing and owner notices happen here.

    \b
    Workers on other machines: see docs/scale-out.md.
    """
    from .inputs.prepare import read_inputs
    from .inputs.spec import find_report

    if cluster:
        from .batch.dask_cluster import parse_cluster
        from .batch.dask_tls import tls_files

        tls_files(parse_cluster(cluster).address)  # a bad value or missing TLS file is refused before anything else
        if workers:
            raise UsageError("--workers is for this machine; with --cluster use local:N or size the cluster")
    project = _project(ctx)
    spec = find_report(report, project.notebooks_dir)
    inputs = read_inputs(spec)  # the notebook and its parameters cell, read once for the whole command
    given = inputs.given(_load_param_file(param_file) if param_file else {}, assignments)
    config = None
    if publish_after or portal:
        from .deliver.portal_client import load_publish_config

        config = load_publish_config(portal)  # before the run: a missing token fails fast
    from .runs.finish import AfterRun, finish  # the run's modules load papermill and WeasyPrint: not for refused input

    policy = AfterRun(publish=config)
    if grid_options or (spec.grid and not no_grid) or cluster:
        from .inputs.grid import parse_grid_option

        grid = [parse_grid_option(g) for g in grid_options]
        executor = _executor(workers, spec, cluster)
        try:
            members = _plan(spec, inputs, given, grid, not no_grid, as_of)
        except BaseException:
            executor.__exit__(None, None, None)  # a refused grid: what start() began must stop
            raise
        _run_batch(project, spec, members, out_dir, policy, executor)
        return
    prepared = inputs.prepare(given)
    from .progress import run_progress
    from .runs.pipeline import run_report
    from .runs.run_folder import variant_label

    try:
        with run_progress(spec.name) as progress:
            run_dir, record = run_report(prepared, project, out_dir=out_dir, progress=progress)
    except DataCheckError as exc:
        finish(exc.run_dir, spec, policy)  # the owner hears about a blocked run
        raise
    except NbpressError as exc:  # never published; with --publish its log still reaches the portal
        from .deliver.run_log import log_run

        log_run(config, getattr(exc, "run_dir", None), spec)
        raise
    variant = f"{variant_label(record.variant)}, " if record.variant else ""
    click.echo(f"{run_dir / 'report.pdf'}  ({variant}{record.pages} pages, {sum(record.timings.values()):.1f} s)")
    done = finish(run_dir, spec, policy)  # a failed run raised above: it is never published
    if done.published is not None:
        _say_published(done.published)
    if done.error is not None:
        raise done.error


def _plan(spec, inputs, given, grid_options, use_spec_grid: bool, as_of: dt.datetime | None):
    from .batch.members import plan

    return plan(spec, given, grid_options, use_spec_grid=use_spec_grid, as_of=as_of.date() if as_of else None,
                inputs=inputs)


def _executor(workers: int | None, spec, cluster: str | None):
    """The batch's executor, already starting (a local:N cluster starts while the members are planned)."""
    from .batch.executors import make_executor

    return make_executor(workers=workers, preload=spec.preload, cluster=cluster).start()


def _run_batch(project, spec, members, out_dir: Path | None, policy, executor) -> None:
    from .batch import members as batch
    from .progress import interactive

    jobs = [batch.Job(i, label, prepared, project.root, out_dir.resolve() if out_dir else None)
            for i, (label, prepared) in enumerate(members)]
    started = time.perf_counter()
    with executor:
        with batch.Reporter(len(jobs), interactive=interactive()) as reporter:
            outcomes = batch.run(jobs, executor, on_done=reporter)
    wall = time.perf_counter() - started
    batch.after_batch(outcomes, spec, policy)
    for line in batch.summary_lines(outcomes, wall):
        click.echo(line)
    if any(o.status != "succeeded" for o in outcomes):
        sys.exit(1)


def _publish(run_dir: Path, config) -> None:
    from .deliver.portal_client import publish_run

    _say_published(publish_run(run_dir, config.portal, config.token))


def _say_published(published) -> None:
    verb = "published" if published.created else "already published"
    click.echo(f"{verb} {published.name} (id {published.id}): {published.link}")
    if published.readers:
        click.echo(f"readable by {published.readers_text()}")
    if published.nobody_can_read:
        click.echo(f"warning: nobody can read {published.name} yet (admins only): "
                   f"grant it with `nbpress portal grant --report {published.report} --group GROUP`", err=True)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--portal", metavar="URL", help=f"Portal base URL [default: {PORTAL_HELP}].")
@handle_errors
def publish(run_dir: Path, portal: str | None) -> None:
    """Publish a succeeded run's PDF to the portal.

    The publisher token comes from NBPRESS_PUBLISH_TOKEN or the config file
    (NBPRESS_PUBLISH_CONFIG, default ~/.config/nbpress/publish.toml, keys portal and token),
    never from the command line. Publishing the same run again is harmless.
    """
    from .deliver.portal_client import load_publish_config

    _publish(run_dir, load_publish_config(portal))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--template", help="Template name in templates/ [default: the run's].")
@click.pass_context
@handle_errors
def render(ctx: click.Context, run_dir: Path, template: str | None) -> None:
    """Render a finished run again from its executed notebook (no execution)."""
    from .runs.pipeline import render_run

    record = render_run(run_dir, _project(ctx), template=template)
    click.echo(f"{run_dir / 'report.pdf'}  ({record.pages} pages)")


@main.command()
@click.argument("report_or_run_dir")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port on 127.0.0.1 [default: any free port].")
@click.option("--execute", is_flag=True, help="Also run the notebook again each time it is saved (spec defaults and -p).")
@click.option("-p", "--param", "assignments", multiple=True, metavar="NAME=VALUE", help="Parameter for runs made here (repeatable).")
@click.pass_context
@handle_errors
def preview(ctx: click.Context, report_or_run_dir: str, port: int, execute: bool, assignments: tuple[str, ...]) -> None:
    """Serve a run's HTML and PDF on 127.0.0.1, rendered again when a template, CSS or spec file
    changes (no execution); the page reloads by itself. REPORT: its newest succeeded run (run
    once if there is none). Ctrl-C stops it."""
    from .live.serve import serve_preview

    serve_preview(report_or_run_dir, _project(ctx), port=port, execute=execute, assignments=assignments, say=click.echo)


@main.command()
@click.argument("pdf", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def inspect(pdf: Path, as_json: bool) -> None:
    """Print a report PDF's metadata and provenance (report, run, parameters, notebook hash)."""
    from .render.inspect_pdf import inspect_pdf

    info = inspect_pdf(pdf)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    provenance = info.pop("provenance") or {}
    for key, value in info.items():
        click.echo(f"{key:>16}: {value}")
    for key, value in provenance.items():
        click.echo(f"{key:>16}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")


@main.command()
@click.option("--list", "list_only", is_flag=True, help="Show each scheduled report's cron, time zone and next fire times, then exit (no daemon needed).")
@click.option("--status", is_flag=True, help="Show which daemon leads the schedule on this job store (several may share it; one fires), then exit.")
@click.option("--count", type=click.IntRange(1, 100), default=3, show_default=True, help="Fire times shown per report with --list.")
@click.option("--once", metavar="REPORT", help="Run REPORT's job now exactly as the daemon would (retries, checks, publish, owner e-mail); exit 0 when it succeeded.")
@click.option("--jobs-db", metavar="URL", envvar="NBPRESS_JOBS_DB",
              help="SQLAlchemy URL of the job store, or NBPRESS_JOBS_DB (keep passwords out of the URL: ~/.pgpass) [default: sqlite:///PROJECT/runs/.schedule.sqlite].")
@click.option("--max-runs", type=click.IntRange(1, 64), default=2, show_default=True, help="Scheduled jobs running at the same time; later ticks wait for a free slot.")
@click.option("--grace", type=click.FloatRange(0), default=300, show_default=True, help="Seconds running notebooks get to finish after SIGTERM/SIGINT before they are cancelled.")
@click.pass_context
@handle_errors
def schedule(ctx: click.Context, status: bool, list_only: bool, count: int, once: str | None, jobs_db: str | None, max_runs: int,
             grace: float) -> None:
    """Run the specs' schedules until SIGTERM or Ctrl-C (the scheduler daemon).

    Every spec in notebooks/ with a `schedule` (cron + time zone) is a job. Jobs are kept in a
    database, so a restart loses nothing: a tick missed while the daemon was down runs once at
    start when it is within the spec's `misfire_grace`. Each tick runs the report (its whole
    grid, if it has one) -> data checks -> PDF -> publish (when a publisher token is configured).
    Kernel deaths and unreachable databases are retried with the spec's `retries`; notebook
    errors and failed checks are not. The owner is e-mailed about blocked runs and final failures.
    On SIGTERM/SIGINT no new run starts, running ones get --grace seconds, then are cancelled
    (run.json `cancelled`), and the daemon exits 0.

    Several daemons (on several hosts) may share one job store: the one holding the lease
    (NBPRESS_SCHEDULE_LEASE_SECONDS) fires the jobs, the others wait and take over when it is gone.
    """
    from .scheduler import jobs

    project = _project(ctx)
    if sum(map(bool, (list_only, once, status))) > 1:
        raise UsageError("--list, --once and --status do not go together")
    if status:
        _leader_status(jobs_db or jobs.default_jobs_url(project))
        return
    if list_only:
        _list_schedules(jobs.scheduled_specs(project), count)
        return
    if once:
        _run_once(project, once)
        return
    from . import settings

    settings.get("SCHEDULE_LEASE_SECONDS")  # a bad value is one line before the daemon's modules load
    from .scheduler.daemon import serve

    _logging()
    sys.exit(serve(project, jobs_url=jobs_db or jobs.default_jobs_url(project), max_runs=max_runs, grace=grace))


def _leader_status(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from .scheduler.lease import leader_status

    try:
        click.echo(leader_status(url))
    except SQLAlchemyError as exc:  # the driver's message may quote the URL: name the class only
        shown = make_url(url).render_as_string(hide_password=True)
        raise SchedulerError(f"job store {shown} cannot be opened ({type(exc).__name__})") from None


def _list_schedules(specs, count: int) -> None:
    from .scheduler.jobs import next_fire_times

    if not specs:
        click.echo("no report in notebooks/ has a schedule", err=True)
    for spec in specs:
        times = ", ".join(t.strftime("%Y-%m-%d %H:%M %z (%Z)") for t in next_fire_times(spec.schedule, count))
        click.echo(f"{spec.name}  cron '{spec.schedule.cron}'  {spec.schedule.timezone}  next: {times}")


def _run_once(project, report: str) -> None:
    from .scheduler.tick import Settings, owner_mail, publishing, run_tick, runnable
    from .inputs.spec import find_report

    runnable(find_report(report, project.notebooks_dir))  # bad input is exit 2, not a failed run
    _logging()
    config, publish_line = publishing()
    mailer, mail_line = owner_mail()
    click.echo(publish_line, err=True)
    click.echo(mail_line, err=True)
    settings = Settings(publish=config, mailer=mailer)
    with settings.control.cancel_on_signals(lambda line: click.echo(f"nbpress: {line}", err=True)):
        result = run_tick(project, report, settings)
    for run_dir in result.runs:
        record = _safe_record(run_dir)
        click.echo(f"{run_dir}  {record.status if record else '?'} (attempt {record.attempt if record else '?'})")
    click.echo(f"{report}: {result.status}" + (f" ({result.message})" if result.message else ""))
    if not result.ok:
        sys.exit(1)


def _safe_record(run_dir: Path):
    from .runs.run_folder import load_run

    try:
        return load_run(run_dir)
    except NbpressError:
        return None


@main.command("demo-data")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("data/events.sqlite"), show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Last day covered [default: last Sunday].")
@click.option("--weeks", type=click.IntRange(1, 520), default=16, show_default=True)
@click.option("--rows", type=click.IntRange(1000, 50_000_000), default=120_000, show_default=True)
@handle_errors
def demo_data(out: Path, seed: int, end: dt.datetime | None, weeks: int, rows: int) -> None:
    """Generate the demo event log (a SQLite file), deterministic given the seed."""
    from .demo.demo_data import generate

    summary = generate(out, seed=seed, end=end.date() if end else None, weeks=weeks, rows=rows)
    click.echo(f"{summary.path}: {summary.rows:,} events, {summary.first_day} .. {summary.last_day}")


@main.command()
@click.option("--weeks", type=click.IntRange(1, 16), default=4, show_default=True, help="How many recent weeks to report.")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Publish to a local portal and serve it until Ctrl-C.")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True, help="Portal port on 127.0.0.1 (0: any free port).")
@click.pass_context
@handle_errors
def demo(ctx: click.Context, weeks: int, serve: bool, port: int) -> None:
    """Demo data -> Weekly Statistics PDFs for the last weeks -> a local portal serving them."""
    from .demo.demo import run_demo

    run_demo(_project(ctx), weeks, serve=serve, port=port, say=click.echo)


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def portal(args: tuple[str, ...]) -> None:
    """Operate the portal: `nbpress portal COMMAND ...` = `flask --app publish_server COMMAND ...`.

    `nbpress portal serve [--dev] [--host 127.0.0.1] [--port 5000]` upgrades the database and runs
    the development server (--dev writes development secrets once). NBPRESS_INSTANCE selects the
    instance folder. Try `nbpress portal --help` for the portal's commands.
    """
    # Another program: the toolkit never imports publish_server (and vice versa). The portal's
    # own entry is `flask --app publish_server` plus one-line settings errors and `serve --dev`.
    command = [sys.executable, "-m", "publish_server.admin", *args]
    if os.name == "posix":  # become it: signals (Ctrl-C, SIGTERM from a supervisor) reach the server
        sys.stdout.flush()
        os.execv(sys.executable, command)
    sys.exit(subprocess.call(command))


main.add_command(runs)  # `nbpress runs` and `runs prune` live in cli_runs (this module stays under 500 lines)
main.add_command(worker)  # `nbpress worker` lives in cli_worker


if __name__ == "__main__":  # pragma: no cover - registered above, so `python -m toolkit.cli worker` works too
    main()
