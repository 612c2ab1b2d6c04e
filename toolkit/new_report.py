"""``nbpress new NAME``: a new report that runs at once, or a copy of an existing one.

A new report is ``notebooks/NAME.ipynb`` (a tagged, typed parameters cell; ``import toolkit as tk``;
one example table and one figure made from its parameters, so it needs no data source; a last
``tk.preview()`` cell), ``notebooks/NAME.yml`` (title and the usual keys, commented) and, with
``template=True``, ``templates/NAME.html.j2`` extending ``base.html.j2``. ``source`` copies an
existing report's notebook (outputs cleared) and spec under the new name instead.

Nothing is ever overwritten: every target is checked before the first file is written. The
notebook is written as plain nbformat 4.5 JSON (nbformat itself is slow to import).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

from .errors import UsageError
from .project import Project

__all__ = ["REPORT_NAME", "check_report_name", "create_report"]

# The portal's report slug (publish_server: letters, digits, _ . -, up to 64) without the dot:
# `nbpress run x.yml` means a file, so a name with a suffix could not be run by name.
REPORT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def check_report_name(name: str) -> str:
    if not REPORT_NAME.fullmatch(name):
        raise UsageError(f"{name!r} is not a report name: a letter, then letters, digits, _ or - (at most 64)")
    return name


def create_report(project: Project, name: str, *, source: str | None = None, template: bool = False) -> list[Path]:
    """Write the new report's files; returns them in the order written."""
    check_report_name(name)
    files = _copied_files(project, name, source) if source else _new_files(project, name)
    if template:
        files[project.templates_dir / f"{name}.html.j2"] = _source_template(project, source) or _template_text(name)
        spec = project.notebooks_dir / f"{name}.yml"
        files[spec] = _with_key(files[spec], "template", f"{name}.html.j2")
    for path in files:
        if path.exists():
            raise UsageError(f"{path}: already exists (nbpress new never overwrites; pick another name or remove it)")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as out:  # "x": a file made meanwhile is not overwritten either
            out.write(text)
    return list(files)


# --- a copy of an existing report ----------------------------------------------------------


def _copied_files(project: Project, name: str, source: str) -> dict[Path, str]:
    from .inputs.spec import find_report

    spec = find_report(source, project.notebooks_dir)
    try:
        notebook = json.loads(spec.notebook.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{spec.notebook}: no such notebook") from None
    except ValueError:
        raise UsageError(f"{spec.notebook}: not a valid notebook (not JSON)") from None
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":  # a clean copy: the old run's outputs would mislead
            cell["outputs"], cell["execution_count"] = [], None
    title = name.replace("_", " ").replace("-", " ").title()
    spec_text = spec.path.read_text(encoding="utf-8") if spec.path else ""
    spec_text = _with_key(_without_key(spec_text, "notebook"), "title", title)
    return {
        project.notebooks_dir / f"{name}.ipynb": _notebook_json(notebook),
        project.notebooks_dir / f"{name}.yml": spec_text,
    }


def _source_template(project: Project, source: str | None) -> str | None:
    """A copied report's own template, to start the new one from (None: it uses the base one)."""
    if source is None:
        return None
    from .inputs.spec import find_report

    own = project.templates_dir / find_report(source, project.notebooks_dir).template
    return own.read_text(encoding="utf-8") if own.name != "base.html.j2" and own.is_file() else None


def _without_key(yaml_text: str, key: str) -> str:
    """The spec without a top-level ``key`` line (the copy's notebook is found by its name)."""
    return "".join(line for line in yaml_text.splitlines(keepends=True) if not re.match(rf"{key}\s*:", line))


def _with_key(yaml_text: str, key: str, value: str) -> str:
    """Set a top-level scalar ``key``, keeping every other line and comment of the spec."""
    line = f"{key}: {json.dumps(value)}\n"  # a JSON string is a valid YAML scalar
    pattern = re.compile(rf"^{key}\s*:.*$\n?", re.MULTILINE)
    if pattern.search(yaml_text):
        return pattern.sub(lambda _: line, yaml_text, count=1)
    return yaml_text + ("" if yaml_text.endswith("\n") or not yaml_text else "\n") + line


# --- a new report --------------------------------------------------------------------------

_PARAMETERS = '''\
# Parameters: `nbpress run NAME -p start=2026-02-02` replaces these values on each run.
# This cell is tagged `parameters` (JupyterLab: right sidebar, Property Inspector, Cell Tags).
# Annotate each one (str, int, float, bool, datetime.date, list[str], Literal[...]): values are
# checked before the kernel starts; the comment after a value is its help in `nbpress params`.
import datetime
from typing import Literal

start: datetime.date = datetime.date(2026, 1, 5)  # first day of the report
days: int = 7  # how many days the report covers
region: Literal["north", "south"] = "north"  # which region's figures to show'''

_IMPORTS = '''\
import matplotlib.pyplot as plt
import pandas as pd

import toolkit as tk'''

_TABLE = '''\
# Example data, made up from the parameters: replace it with your query or file.
base = 120 if region == "north" else 80
daily = pd.DataFrame(
    {"visits": [base + 15 * i for i in range(days)], "orders": [base // 10 + i for i in range(days)]},
    index=pd.Index([start + datetime.timedelta(days=i) for i in range(days)], name="day"),
)
daily["conversion_pct"] = (100 * daily["orders"] / daily["visits"]).round(1)
tk.table("daily", daily, caption=f"Visits and orders per day, {region} region")'''

_FIGURE = '''\
fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
ax.plot(daily.index, daily["visits"], marker="o", label="visits")
ax.plot(daily.index, daily["orders"], marker="o", label="orders")
ax.set_ylabel("per day")
ax.legend()
tk.figure("trend", fig, caption="Visits and orders per day")'''

_PREVIEW = '''\
# The PDF as it stands, shown here (nothing happens under `nbpress run`, which renders it itself).
tk.preview()'''


def _new_files(project: Project, name: str) -> dict[Path, str]:
    title = name.replace("_", " ").replace("-", " ").title()
    intro = (f"# {title}\n\nMade by `nbpress new {name}`. Set the inputs in the next cell; record what the PDF "
             "shows with `tk.table`, `tk.figure`, `tk.metric` and `tk.text`; the last cell previews the PDF.\n\n"
             f"Run it: `nbpress run {name}` (the PDF lands in `runs/{name}/`).")
    cells = [
        _cell("markdown", intro),
        _cell("code", _PARAMETERS.replace("NAME", name), tags=["parameters"]),
        _cell("code", _IMPORTS),
        _cell("markdown", "## Example table"),
        _cell("code", _TABLE),
        _cell("markdown", "## Example figure"),
        _cell("code", _FIGURE),
        _cell("code", _PREVIEW),
    ]
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return {
        project.notebooks_dir / f"{name}.ipynb": _notebook_json(notebook),
        project.notebooks_dir / f"{name}.yml": _SPEC.format(name=name, title=title),
    }


_SPEC = """\
# The report spec of notebooks/{name}.ipynb; every key is optional (README.md: "Report specs").
title: {title}
description: Example report made by nbpress new; say here what it shows.
author: Notebook Press
template: base.html.j2              # in templates/ (`nbpress new NAME --template` writes NAME.html.j2)
header_parameters: [start, region]  # shown in every page's running header
period: "{{start:%Y-%m-%d}}"         # what one run covers, as readers see it
timeouts:
  cell: 600                         # seconds one cell may run
"""


def _cell(kind: str, source: str, *, tags: list[str] | None = None) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "id": secrets.token_hex(4), "metadata": {"tags": tags} if tags else {},
                            "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _notebook_json(notebook: dict[str, Any]) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"  # how Jupyter writes notebooks


def _template_text(name: str) -> str:
    return (
        f"{{#- {name}: the report's own template. It extends base.html.j2 (title, parameters, page\n"
        "    footer) and fills `content`; records are named as in the notebook. -#}\n"
        '{% extends "base.html.j2" %}\n'
        '{% import "macros.html.j2" as show %}\n\n'
        "{% block content %}\n"
        '  {% if "daily" in records %}{{ show.table(records.daily) }}{% endif %}\n'
        '  {% if "trend" in records %}{{ show.figure(records.trend) }}{% endif %}\n'
        '  {% for item in items if item.name not in ["daily", "trend"] %}{{ show.item(item) }}{% endfor %}\n'
        "{% endblock %}\n"
    )
