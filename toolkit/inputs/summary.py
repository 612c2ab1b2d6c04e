"""The one-line summary a notification mail shows: the spec's ``notify.summary``, rendered.

A Jinja template (sandboxed: a spec is configuration, not code) over the run's parameters
(``params``), its period (``period``) and its key figures (``metrics``: the notebook's metric
records, name -> value). The result is one line of printable text of at most 300 characters, as
the portal accepts it; an unknown name renders empty rather than failing a finished run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["SUMMARY_MAX", "check_template", "render_summary"]

SUMMARY_MAX = 300
_ENV = SandboxedEnvironment(autoescape=False)


def check_template(template: str) -> str:
    """``template`` if it compiles; ``ValueError`` naming the problem (for the spec's validation)."""
    try:
        _ENV.parse(template)
    except TemplateSyntaxError as exc:
        raise ValueError(f"notify.summary is not a valid template: {exc.message} (line {exc.lineno})") from None
    return template


def render_summary(template: str, *, params: Mapping[str, Any], period: str, metrics: Mapping[str, Any]) -> str:
    text = _ENV.from_string(template).render(params=dict(params), period=period, metrics=dict(metrics))
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return line if len(line) <= SUMMARY_MAX else line[: SUMMARY_MAX - 1] + "…"
