"""``nbpress runs``: the run history, and ``nbpress runs prune`` (imports inside functions, as in :mod:`cli`)."""

from __future__ import annotations

import json
import sys

import click

from .cli_support import _project, handle_errors

__all__ = ["runs"]


class _RunsGroup(click.Group):
    """``nbpress runs [REPORT]`` lists; ``nbpress runs prune ...`` prunes. A first argument naming
    a subcommand is that subcommand, anything else is the REPORT of the listing, whose options may
    come after it (`nbpress runs weekly --limit 1`)."""

    allow_interspersed_args = True  # the listing's options after REPORT

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:  # the subcommand's options are its own
            own = self.params
            self.params = [p for p in own if not isinstance(p, click.Argument)]
            ctx.allow_interspersed_args = False
            try:
                return super().parse_args(ctx, args)
            finally:
                self.params = own
        return super().parse_args(ctx, args)


@click.group(cls=_RunsGroup, invoke_without_command=True)
@click.argument("report", required=False)
@click.option("-n", "--limit", type=click.IntRange(1), default=20, show_default=True, help="Show at most this many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--failed", is_flag=True, help="Only runs that did not get through: failed or blocked by a data check.")
@click.pass_context
@handle_errors
def runs(ctx: click.Context, limit: int, as_json: bool, failed: bool, report: str | None = None) -> None:
    """The run history, newest first: when, report, status, duration, trigger and attempt,
    parameters and publication, read from each run folder's run.json (of REPORT only, if given).
    A table on a terminal, tab-separated lines otherwise. `nbpress runs prune` removes old runs."""
    if ctx.invoked_subcommand:
        return
    from .runs.history import NOT_THROUGH, history, plain_lines, rich_table

    skipped: list[str] = []
    rows = history(_project(ctx).runs_dir, report, limit=limit, skipped=skipped,
                   statuses=NOT_THROUGH if failed else None)
    for note in skipped:
        click.echo(f"nbpress: skipped {note}", err=True)
    if as_json:
        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
    elif sys.stdout.isatty():
        from rich.console import Console

        Console().print(rich_table(rows))
    else:
        for line in plain_lines(rows):
            click.echo(line)


@runs.command("prune")
@click.option("--older-than", "older_than", type=click.IntRange(0), metavar="DAYS", help="Only runs started more than DAYS days ago.")
@click.option("--keep", type=click.IntRange(0), metavar="N", help="Keep the newest N runs of each report.")
@click.option("--yes", is_flag=True, help="Remove them; without it, only print what would go.")
@click.pass_context
@handle_errors
def runs_prune(ctx: click.Context, older_than: int | None, keep: int | None, yes: bool) -> None:
    """Remove old run folders (a dry run unless --yes). Runs still `running` are never removed."""
    from .runs.prune import plan_prune, remove

    skipped: list[str] = []
    plan = plan_prune(_project(ctx).runs_dir, older_than_days=older_than, keep=keep, skipped=skipped)
    for note in skipped:
        click.echo(f"nbpress: skipped {note}", err=True)
    done = remove(plan) if yes else plan
    verb = "removed" if yes else "would remove"
    for row in done:
        click.echo(f"{verb} {row.record.report} {row.record.run_id} ({row.record.status}, started {row.record.started:%Y-%m-%d}) {row.run_dir}")
    click.echo(f"{verb} {len(done)} run folders" + ("" if yes else "; run again with --yes to remove them"))
