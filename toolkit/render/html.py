"""Records -> HTML: the report's Jinja template (autoescaped, StrictUndefined) filled in.

Tables become HTML here (thousands separators, ``max_rows`` cuts with a CSV attached); tables
longer than ``long_table_rows`` are marked for :mod:`.longtable`. :mod:`.pdf` lays the HTML out.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from ..errors import RenderError
from ..inputs.spec import ReportSpec
from ..notebook import records as rec
from ..version import __version__
from ..inputs.sensitive import shareable
from . import longtable
from .shown import shown_header, shown_parameters

__all__ = ["ReportContext", "TableView", "render_html", "write_assets"]

_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass
class ReportContext:
    """Everything a template sees besides the records."""

    spec: ReportSpec
    params: dict[str, Any]  # every parameter, JSON-able values (the PDF shows only some: see .shown)
    run_id: str
    generated: dt.datetime
    notebook_sha256: str = ""

    def provenance(self) -> dict[str, Any]:
        return {
            "report": self.spec.name,
            "run_id": self.run_id,
            "parameters": shareable(self.params),  # for `nbpress inspect`: no secrets, no URL passwords
            "notebook_sha256": self.notebook_sha256,
            "toolkit_version": __version__,
            "generated": self.generated.isoformat(timespec="seconds"),
        }


@dataclass(frozen=True)
class TableView:
    name: str
    caption: str | None
    html: Markup
    rows: int
    shown: int
    csv_name: str | None  # attached CSV when the body is cut at max_rows
    long: bool = False  # marked for the chunked layout (see toolkit.render.longtable)
    kind = "table"

    @property
    def truncated(self) -> bool:
        return self.shown < self.rows


def _format_frame(frame, max_rows: int | None) -> tuple[Markup, int]:
    shown = frame if max_rows is None else frame.head(max_rows)
    if shown.index.name and not shown.columns.name and shown.columns.nlevels == 1:
        # One header row with the index name in its corner, instead of pandas' second row.
        shown = shown.rename_axis(index=None, columns=shown.index.name)
    # Integer columns get thousands separators too (pandas only formats floats by default).
    ints = {c: "{:,}".format for c, dtype in shown.dtypes.items() if dtype.kind in "iu"}
    text = shown.to_html(
        border=0,
        classes="data",
        na_rep="–",
        formatters=ints,
        float_format=lambda x: f"{x:,.2f}",
        escape=True,
    )
    return Markup(_header_scopes(text)), len(shown)


_TH = re.compile(r"<th\b(?![^>]*\bscope=)")
_THEAD = re.compile(r"<thead\b.*?</thead\s*>", re.S)


def _header_scopes(table_html: str) -> str:
    """Header cells say what they head: ``scope="col"`` in <thead>, ``scope="row"`` (the index) in <tbody>.

    A tagged PDF turns them into TH cells that screen readers announce with every data cell.
    """
    head = _THEAD.search(table_html)
    if head is None:
        return _TH.sub('<th scope="row"', table_html)
    before, after = table_html[: head.start()], table_html[head.end() :]
    return before + _TH.sub('<th scope="col"', head[0]) + _TH.sub('<th scope="row"', after)


def _table_view(record: rec.Table, spec: ReportSpec, long_rows: int | None) -> TableView:
    frame = record.frame
    options = spec.tables.get(record.name)
    max_rows = options.max_rows if options else None
    html, shown = _format_frame(frame, max_rows)
    csv_name = f"{record.name}.csv" if shown < len(frame) else None
    long = long_rows is not None and shown > long_rows
    return TableView(record.name, record.caption, html, len(frame), shown, csv_name, long)


def write_assets(records: dict[str, rec.Record], assets_dir: Path) -> dict[str, str]:
    """Write figures as files the PDF references; returns name -> path relative to the run folder."""
    assets_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for record in records.values():
        if isinstance(record, rec.Figure):
            target = assets_dir / f"{record.name}.svg"
            target.write_text(record.svg, encoding="utf-8")
            (assets_dir / f"{record.name}.png").write_bytes(record.png)
            paths[record.name] = f"{assets_dir.name}/{target.name}"
    return paths


def _environment(templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = lambda text: Markup(_markdown.render(text))
    env.filters["number"] = _format_number
    return env


def _format_number(value: Any, digits: int = 0) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and digits == 0 and not value.is_integer():
        digits = 2
    return f"{value:,.{digits}f}"


def render_html(
    context: ReportContext,
    records: dict[str, rec.Record],
    figure_paths: dict[str, str],
    templates_dir: Path,
    template: str | None = None,
    long_table_rows: int | None = longtable.LONG_TABLE_ROWS,
) -> str:
    """The report's HTML. Tables with more rows than ``long_table_rows`` (None: no limit) are
    marked for :func:`write_pdf` to lay out in parallel chunks."""
    name = template or context.spec.template
    items = []
    for record in records.values():
        if isinstance(record, rec.Table):
            items.append(_table_view(record, context.spec, long_table_rows))
        elif isinstance(record, rec.Figure):
            items.append({"kind": "figure", "name": record.name, "caption": record.caption, "alt": record.alt,
                          "src": figure_paths[record.name]})
        else:
            items.append(record)
    by_name = {item.name if not isinstance(item, dict) else item["name"]: item for item in items}
    values = {
        "report": context.spec,
        "params": shown_parameters(context.spec, context.params),  # label -> value
        "header_params": shown_header(context.spec, context.params),
        "run_id": context.run_id,
        "generated": context.generated,
        "items": items,
        "records": by_name,
        "static": (templates_dir / "static").resolve().as_uri(),
        "provenance_json": json.dumps(context.provenance(), sort_keys=True, separators=(",", ":")),
        "toolkit_version": __version__,
    }
    try:
        return _environment(templates_dir).get_template(name).render(values)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name!r} not found in {templates_dir}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"template {exc.name or name} line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"template {name}: {exc.message}") from None
