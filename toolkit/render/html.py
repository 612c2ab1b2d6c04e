"""Records -> HTML: the report's Jinja template (autoescaped, StrictUndefined) filled in.

Tables become HTML here (cells as :mod:`.cells` shows them, text columns marked for left alignment,
``max_rows`` cuts with a CSV attached), fitted
to the page by :mod:`.wide_tables`' rule (smaller font, landscape, column groups); tables
longer than ``long_table_rows`` are marked for :mod:`.longtable`. :mod:`.pdf` lays the HTML out.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from ..errors import RenderError
from ..inputs.spec import PageSettings, ReportSpec
from ..notebook import records as rec
from ..version import __version__
from ..inputs.sensitive import shareable
from . import longtable
from .cells import NA, is_number, shown_cells
from .locale import ReportLocale, install
from .page_box import PageBox, page_box
from .shown import shown_header, shown_parameters
from .template_folders import BUILTIN, folders
from .wide_tables import FONT_PT, TableLayout, fonts_in, plan_layout

__all__ = ["ReportContext", "TableBlock", "TableView", "RenderedReport", "render_report", "render_html", "write_assets"]

log = logging.getLogger(__name__)

COLUMN_GROUP = "Columns %(first)s–%(last)s of %(total)s"  # a translated message (toolkit/render/translations)

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
class TableBlock:
    """One HTML table of a record: the whole table, or one column group of it."""

    html: Markup
    label: str | None = None  # "Columns 1–12 of 40" when the table is cut into column groups
    anchor: str = ""  # added to the section's id: every group has its own


@dataclass(frozen=True)
class TableView:
    name: str
    caption: str | None
    blocks: tuple[TableBlock, ...]
    rows: int
    shown: int
    csv_name: str | None  # attached CSV when the body is cut at max_rows
    long: bool = False  # marked for the chunked layout (see toolkit.render.longtable)
    layout: TableLayout | None = None  # how it fits the page (see toolkit.render.wide_tables)
    kind = "table"

    @property
    def truncated(self) -> bool:
        return self.shown < self.rows

    @property
    def landscape(self) -> bool:
        return self.layout is not None and self.layout.landscape

    @property
    def html(self) -> Markup:
        """Every block, each after its label: for templates that place the table markup themselves."""
        return Markup("").join(
            (Markup('<p class="column-group">%s</p>') % b.label if b.label else Markup("")) + b.html for b in self.blocks
        )


def _format_frame(frame, numeric: list[bool], layout: TableLayout | None = None, group: int = 0, *,
                  long: bool = False) -> Markup:
    """``frame`` holds the cells as shown (:func:`.cells.shown_cells`); ``numeric`` says which
    columns are numbers (right-aligned), the others get ``class="text"`` (left-aligned)."""
    shown = frame
    if layout is not None and len(layout.groups) > 1:
        shown = frame.iloc[:, list(layout.groups[group])]
        numeric = [numeric[i] for i in layout.groups[group]]
    if shown.index.name and not shown.columns.name and shown.columns.nlevels == 1:
        # One header row with the index name in its corner, instead of pandas' second row.
        shown = shown.rename_axis(index=None, columns=shown.index.name)
    text = shown.to_html(border=0, classes="data", na_rep=NA, escape=True)
    text = _aligned(text, numeric, shown.index.nlevels)
    return Markup(_laid_out(_header_scopes(text), layout, group, long=long))


_ROW_HTML = re.compile(r"<tr\b.*?</tr>", re.S)


def _classed(row: str, tag: str, classes: list[str | None]) -> str:
    """``row`` with its ``tag`` cells given ``classes`` in order; unchanged unless the counts match
    (a header row of a multi-level header, whose cells span several columns)."""
    parts = row.split(f"<{tag}")
    if len(parts) - 1 != len(classes):
        return row
    return parts[0] + "".join(f'<{tag} class="{c}"{part}' if c else f"<{tag}{part}" for c, part in zip(classes, parts[1:]))


def _aligned(table_html: str, numeric: list[bool], index_levels: int) -> str:
    """Text columns' cells and headers, and the index's header, get ``class="text"``."""
    columns = [None if number else "text" for number in numeric]
    head, tag, body = table_html.partition("<tbody>")
    head = head.replace('<tr style="text-align: right;">', "<tr>")  # pandas' default; report.css decides
    head = _ROW_HTML.sub(lambda m: _classed(m[0], "th", ["text"] * index_levels + columns), head)
    if all(numeric):
        return head + tag + body
    return head + tag + _ROW_HTML.sub(lambda m: _classed(m[0], "td", columns), body)


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


def _laid_out(text: str, layout: TableLayout | None, group: int, *, long: bool) -> str:
    """The table's start tag with the layout's font size and, unless it is long (its chunks get
    measured widths), fixed column widths."""
    if layout is None or layout.widths is None and layout.font_pt == FONT_PT:
        return text
    start = text.index(">", text.index("<table")) + 1
    tag = text[:start]
    if layout.font_pt != FONT_PT:
        tag = tag.replace("<table", f'<table style="font-size: {layout.font_pt:g}pt"', 1)
    if layout.widths is None or long:
        return tag + text[start:]
    tag = tag.replace('class="dataframe data"', 'class="dataframe data fixed"', 1)
    cols = "".join(f'<col style="width: {w:.3f}%">' for w in layout.widths[group])
    return f"{tag}<colgroup>{cols}</colgroup>{text[start:]}"


def _table_view(record: rec.Table, spec: ReportSpec, long_rows: int | None, page: PageBox, fonts,
                numbers: ReportLocale) -> TableView:
    frame = record.frame
    options = spec.tables.get(record.name)
    max_rows = options.max_rows if options else None
    shown = frame if max_rows is None else frame.head(max_rows)
    csv_name = f"{record.name}.csv" if len(shown) < len(frame) else None
    formats = {**dict(record.formats), **(options.formats if options else {})}  # the spec's win
    numeric = [is_number(dtype) for dtype in shown.dtypes]
    shown = shown_cells(shown, numbers, formats, record.name)
    long = long_rows is not None and len(shown) > long_rows
    layout = plan_layout(shown, page, fonts, wrap=not long, numeric=numeric)
    if layout is None:  # a column too wide for any page on one line: wrapped, in one piece
        log.info("table %s: a column is too wide to lay out on one line; laid out as an ordinary table", record.name)
        long, layout = False, plan_layout(shown, page, fonts, numeric=numeric)
    count = len(layout.groups)
    blocks = []
    for g, columns in enumerate(layout.groups):
        label = numbers.gettext(COLUMN_GROUP) % {"first": columns[0] + 1, "last": columns[-1] + 1,
                                                 "total": layout.columns} if count > 1 else None
        anchor = f"-columns-{columns[0] + 1}" if g else ""
        blocks.append(TableBlock(_format_frame(shown, numeric, layout, g, long=long), label, anchor))
    return TableView(record.name, record.caption, tuple(blocks), len(frame), len(shown), csv_name, long, layout)


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


def _loader(template_folders: tuple[Path, ...]) -> jinja2.BaseLoader:
    """The project's templates, then the built-in ones; ``nbpress/base.html.j2`` always names the
    built-in, so a project's own ``base.html.j2`` can extend it."""
    layered = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(folder)) for folder in template_folders])
    return jinja2.ChoiceLoader([jinja2.PrefixLoader({"nbpress": jinja2.FileSystemLoader(str(BUILTIN))}), layered])


def _environment(templates_dir: Path, locale: ReportLocale) -> jinja2.Environment:
    template_folders = folders(templates_dir)
    return _cached_environment(template_folders, tuple(_mtime(f) for f in template_folders), locale.name)


def _mtime(folder: Path) -> int:
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return 0


# One environment per template folders and locale in a process: a batch worker, the scheduler
# or `nbpress worker` renders many reports, and compiling the templates again took ~50 ms each
# time. Jinja checks each loaded template file's modification time, so edits are seen; a file
# added to or removed from a folder (a new override) changes the folder's time, so a new
# environment looks again.
@functools.lru_cache(maxsize=16)
def _cached_environment(template_folders: tuple[Path, ...], mtimes: tuple[int, ...], locale_name: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_loader(template_folders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = lambda text: Markup(_markdown.render(text))
    install(env, ReportLocale.of(locale_name))  # `number` and date filters, the fixed words in the spec's locale
    return env


@dataclass(frozen=True)
class RenderedReport:
    html: str
    layouts: dict[str, dict[str, Any]]  # table name -> how it fits the page (TableLayout.summary)


def _page(spec: ReportSpec) -> PageBox:
    try:
        return page_box(spec.page)
    except RenderError as exc:  # the PDF takes the CSS as it is; only the width estimate needs a guess
        log.warning("%s; tables are fitted to an A4 page", exc)
        return page_box(PageSettings())


def render_report(
    context: ReportContext,
    records: dict[str, rec.Record],
    figure_paths: dict[str, str],
    templates_dir: Path,
    template: str | None = None,
    long_table_rows: int | None = longtable.LONG_TABLE_ROWS,
) -> RenderedReport:
    """The report's HTML and each table's layout. Tables with more rows than ``long_table_rows``
    (None: no limit) are marked for :func:`write_pdf` to lay out in parallel chunks; tables too
    wide for the page are laid out by :mod:`.wide_tables`' rule."""
    name = template or context.spec.template
    page, fonts = _page(context.spec), fonts_in(templates_dir)
    locale = ReportLocale.of(context.spec.locale)
    items = []
    for record in records.values():
        if isinstance(record, rec.Table):
            items.append(_table_view(record, context.spec, long_table_rows, page, fonts, locale))
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
        # The project's static folder, even when it has none: the fenced fetcher serves what it lacks
        # from the built-in one (toolkit.render.fetcher).
        "static": (templates_dir / "static").resolve().as_uri(),
        "provenance_json": json.dumps(context.provenance(), sort_keys=True, separators=(",", ":")),
        "toolkit_version": __version__,
        "wide_page_size": page.landscape().css_size(),  # the named page `wide`, for landscape tables
    }
    try:
        html = _environment(templates_dir, locale).get_template(name).render(values)
    except jinja2.TemplateNotFound as exc:
        where = " or ".join(str(folder) for folder in folders(templates_dir))
        raise RenderError(f"template {exc.name!r} not found in {where}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"template {exc.name or name} line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"template {name}: {exc.message}") from None
    layouts = {item.name: item.layout.summary() for item in items if isinstance(item, TableView)}
    return RenderedReport(html, layouts)


def render_html(*args, **kwargs) -> str:
    """The report's HTML (:func:`render_report` without the tables' layouts)."""
    return render_report(*args, **kwargs).html
