"""The program ``nbpress portal`` runs (``python -m publish_server.admin``): the app's commands plus ``serve``.

It differs from ``flask --app publish_server`` in two ways: a settings problem is one line instead
of a traceback, and its ``serve --dev`` writes the development secrets *before* the app is built,
which a command registered on the app cannot do (Flask builds the app to find its commands).
This is the one admin module that imports the app; the app imports only the command modules.
"""

from __future__ import annotations


import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo
from flask_migrate import upgrade
from werkzeug.serving import run_simple  # not app.run(): it refuses to start under the flask CLI

from ..app import create_app
from ..errors import ConfigError
from ..hosts import normal_host, parse_trusted_hosts
from ..notifications.worker import start_thread
from ..settings import instance_folder, write_dev_secrets

__all__ = ["main"]


def _create_app_or_fail() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:  # one line, not a traceback (click prints "Error: ...", exit 1)
        raise click.ClickException(str(exc)) from None


class _PortalGroup(FlaskGroup):
    """FlaskGroup whose `--help` says in one line why the app's own commands are missing
    (Flask prints the whole traceback of a failed app load there)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        names = set(click.Group.list_commands(self, ctx))
        try:
            names.update(ctx.ensure_object(ScriptInfo).load_app().cli.list_commands(ctx))
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()} (the commands below need it)\n", err=True)
        return sorted(names)


# `flask --app publish_server` plus a `serve` that is found before the app is built.
main = _PortalGroup(name="portal", create_app=_create_app_or_fail, add_version_option=False, load_dotenv=False,
                  help="Notebook Press portal commands (the same as `flask --app publish_server ...`).")
main.params = [p for p in main.params if p.name != "app"]  # the app is fixed: publish_server


@main.command("serve", with_appcontext=False)
@click.option("--dev", is_flag=True, help="Generate development secrets in the instance folder once (plain HTTP cookies).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
def serve(dev: bool, host: str, port: int) -> None:
    """Upgrade the database and run the development server (production: gunicorn).

    With --dev it also sends the notification mails (production: `nbpress portal mail-worker`)."""
    if dev:
        instance = instance_folder()
        click.echo(f"development secrets: {write_dev_secrets(instance)}", err=True)
    app = _create_app_or_fail()
    with app.app_context():
        upgrade()
    click.echo(f"Notebook Press portal on http://{host}:{port}/ (development server; Ctrl-C stops it)", err=True)
    trusted = parse_trusted_hosts(app.config["NBPRESS"]["TRUSTED_HOSTS"])
    if normal_host(host) not in trusted:  # e.g. --host 0.0.0.0: other machines' requests name other hosts
        click.echo(f"note: only requests for {', '.join(sorted(trusted))} are answered; "
                   "set NBPRESS_TRUSTED_HOSTS to the names clients use", err=True)
    if dev:  # production runs `nbpress portal mail-worker` next to gunicorn instead
        start_thread(app)
        click.echo("notification mails: sent by this process (production: nbpress portal mail-worker)", err=True)
    # Never the Werkzeug debugger: it executes code for whoever reaches it.
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
