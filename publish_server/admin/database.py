"""``init-db``: create or upgrade the database schema (the migrations in publish_server/migrations)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from flask_migrate import upgrade

__all__ = ["init_db"]


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database to the latest schema (same as `db upgrade`)."""
    upgrade()
    click.echo("database is at the latest schema")
