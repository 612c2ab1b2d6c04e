"""Operator commands: ``flask --app publish_server <command>`` or ``nbpress portal <command>``."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    pass
