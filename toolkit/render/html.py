"""Records -> HTML (Jinja, autoescaped, StrictUndefined) -> PDF (WeasyPrint, fenced URL fetcher).

WeasyPrint can read any local file and the network. The fetcher here serves only files under
the template's static folder and the run folder; everything else is refused and listed, so a
template cannot embed ``/etc/passwd`` or call out over HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from .. import __version__
from . import longtable
from ..notebook import records as rec
from ..errors import RenderError

if TYPE_CHECKING:  # pydantic stays out of the long-table layout workers, which import this module
    from ..inputs.spec import ReportSpec

__all__ = ["ReportContext", "render_html", "write_pdf", "PdfResult", "FencedFetcher"]

log = logging.getLogger(__name__)
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass
class ReportContext:
    """Everything a template sees besides the records."""

    spec: ReportSpec
    params: dict[str, Any]  # JSON-able values
    run_id: str
    generated: dt.datetime
    notebook_sha256: str = ""

    def provenance(self) -> dict[str, Any]:
        return {
            "report": self.spec.name,
            "run_id": self.run_id,
            "parameters": self.params,
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
    long: bool = False  # marked for the chunked layout (see toolkit.longtable)
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
    return Markup(text), len(shown)


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
            items.append({"kind": "figure", "name": record.name, "caption": record.caption, "src": figure_paths[record.name]})
        else:
            items.append(record)
    by_name = {item.name if not isinstance(item, dict) else item["name"]: item for item in items}
    header = {k: context.params[k] for k in context.spec.header_parameters if k in context.params}
    values = {
        "report": context.spec,
        "params": context.params,
        "header_params": header,
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


class _Refused(ValueError):
    pass


def _fetcher_class():
    from weasyprint.urls import URLFetcher

    class FencedFetcher(URLFetcher):
        """Serves ``file:`` URLs under the allowed roots only; refuses everything else."""

        def __init__(self, roots: list[Path]):
            super().__init__(allowed_protocols={"file"}, allow_redirects=False)
            self.roots = [Path(os.path.realpath(r)) for r in roots]
            self.refused: list[str] = []

        def fetch(self, url, headers=None):
            parts = urlsplit(url)
            if parts.scheme == "file" and parts.netloc in ("", "localhost"):
                path = Path(os.path.realpath(unquote(parts.path)))
                if any(path.is_relative_to(root) for root in self.roots):
                    return super().fetch(url, headers)
            self.refused.append(url)
            raise _Refused(f"refused by nbpress: {url}")

    return FencedFetcher


def FencedFetcher(roots: list[Path]):  # noqa: N802 - a factory that reads like the class
    return _fetcher_class()(roots)


@dataclass
class PdfResult:
    pages: int
    refused: list[str] = field(default_factory=list)


def write_pdf(
    html: str,
    pdf_path: Path,
    *,
    base_dir: Path,
    templates_dir: Path,
    attachments: list[tuple[str, bytes]] = (),
    workers: int | None = None,
) -> PdfResult:
    """Lay out ``html`` and write the PDF atomically (temp file + rename).

    HTML with long tables marked by :func:`render_html` goes to :mod:`toolkit.longtable`
    (parallel chunks on ``workers`` processes, default one per core); anything else, or
    marked HTML that cannot be cut safely, is laid out in one piece here.
    """
    if longtable.BEGIN in html:
        done = longtable.write_pdf(
            html, pdf_path, base_dir=base_dir, templates_dir=templates_dir, attachments=attachments, workers=workers
        )
        if done is not None:
            pages, refused = done
            for url in refused:
                log.warning("refused resource %s", url)
            return PdfResult(pages=pages, refused=refused)

    import weasyprint

    fetcher = FencedFetcher([templates_dir / "static", base_dir])
    files = [weasyprint.Attachment(string=data, name=name, url_fetcher=fetcher) for name, data in attachments]
    try:
        document = weasyprint.HTML(string=html, base_url=base_dir.resolve().as_uri() + "/", url_fetcher=fetcher).render()
        tmp = pdf_path.with_name(pdf_path.name + ".part")
        document.write_pdf(tmp, custom_metadata=True, attachments=files)
    except Exception as exc:  # WeasyPrint raises many types; the run records which
        raise RenderError(f"PDF rendering failed ({type(exc).__name__}: {exc})") from exc
    os.replace(tmp, pdf_path)
    for url in fetcher.refused:
        log.warning("refused resource %s", url)
    return PdfResult(pages=len(document.pages), refused=list(fetcher.refused))
