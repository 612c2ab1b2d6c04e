"""Long tables, the HTML side: the report cut at its marked tables, and each part's document.

:func:`split_report` finds the tables the ``table`` macro marks with :data:`BEGIN` and
:data:`END` and cuts each into rows (:class:`MarkedTable`); the markup around them becomes
*flow* parts. :meth:`SplitReport.document` turns a run of rows (or a flow) back into a whole
HTML document with the report's ``<head>``, its running header and the page counters of its
place in the joined PDF. Strings in, strings out: no layout happens here (see :mod:`.longtable`).
"""

from __future__ import annotations

import heapq
import html as html_lib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BEGIN", "END", "ROW_ID", "COL_ID", "MarkedTable", "SplitReport", "split_report", "is_blank",
           "rename_pages_counter"]

log = logging.getLogger(__name__)

BEGIN, END = "<!--nbpress:long-table-->", "<!--/nbpress:long-table-->"
_SAMPLE_PER_COLUMN = 3  # widest cells per column (by characters) laid out to size the columns
ROW_ID, COL_ID = "nbpress-row-", "nbpress-col-"  # anchors the layouts count rows and measure columns by

# Added to every part's <head>. Scoped to long tables, except the two page counters. A part that
# continues a table repeats the running header inside it (see MarkedTable.fragment); its elements
# go to the page margins, but the spaces between them made an empty line 13 pt tall, which a page
# inside one document does not have: font-size 0 makes that line 0 pt (the running elements set
# their own font).
_PART_STYLE = """<style>
@page {{ counter-reset: nbpress-pages {total}; }}
@page :first {{ counter-set: page {first}; }}
[data-nbpress-long-table] table {{ table-layout: fixed; }}
[data-nbpress-long-table] th, [data-nbpress-long-table] td,
[data-nbpress-measure] th, [data-nbpress-measure] td {{ white-space: nowrap; }}
[data-nbpress-long-table] tr {{ break-inside: avoid; }}
[data-nbpress-continued] {{ margin-top: 0 !important; padding-top: 0 !important; }}
[data-nbpress-continued] > header {{ font-size: 0; line-height: 0; }}
</style>
"""
# A part that continues a table starts like a page inside one document: the html and body
# boxes were sliced at the page break, so their top margin, border and padding are not there.
_CONTINUED_STYLE = """<style>
html, body { margin-top: 0 !important; border-top-width: 0 !important; padding-top: 0 !important; }
</style>
"""

_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)
_HEAD_CLOSE = re.compile(r"</head\s*>", re.I)
_STYLE_ELEMENT = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.I | re.S)
_RUNNING_HEADER = re.compile(r"<header\b.*?</header\s*>", re.I | re.S)
_PAGES_COUNTER = re.compile(r"(\bcounters?\(\s*)pages(?=\s*[,)])", re.I)
_SECTION = re.compile(
    r"\A\s*(?P<open><(?P<tag>[a-z][\w-]*)\b[^>]*>)(?P<caption>.*?)(?P<table><table\b[^>]*>)\s*"
    r"(?P<thead><thead\b.*?</thead\s*>)\s*<tbody\b[^>]*>(?P<body>.*)</tbody\s*>(?P<trail>.*)\Z",
    re.I | re.S,
)
_ROW = re.compile(r"<tr\b.*?</tr\s*>", re.I | re.S)
_CELL = re.compile(r"<(t[hd])\b([^>]*)>(.*?)</t[hd]\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


def rename_pages_counter(css: str) -> str:
    """``counter(pages)`` -> ``counter(nbpress-pages)``: a part's own page count is not the total."""
    return _PAGES_COUNTER.sub(r"\1nbpress-pages", css)


# --- Splitting the report -------------------------------------------------------------------


@dataclass(frozen=True)
class MarkedTable:
    """One marked table, cut into the pieces a chunk is rebuilt from."""

    open: str  # the element around the table (the macro's <section>), start tag
    tag: str
    caption: str  # markup between that start tag and <table>, shown on the first page only
    table: str  # the <table ...> start tag
    thead: str
    rows: tuple[str, ...]
    trail: str  # after </tbody>: </table>, any note, the container's end tag
    columns: int

    def container(self, *, continued: bool, measure: bool = False) -> str:
        attrs = " data-nbpress-measure" if measure else " data-nbpress-long-table"
        if continued:
            attrs += " data-nbpress-continued"
        return self.open[:-1] + attrs + ">"

    def fragment(self, start: int, end: int, widths: Sequence[float], *, ids: bool = False, running: str = "") -> str:
        """Rows ``[start, end)`` with the container, the header, and the caption when ``start`` is 0.

        The fragment that ends the table carries the trail (a "showing N of M rows" note).
        ``running`` (the report's running header) goes first inside the container: the first
        in-flow box then names the part's first page, so a table on landscape pages (named
        page ``wide``) starts on one, not after a blank page of the report's own size.
        """
        out = [self.container(continued=start > 0), running]
        if start == 0:
            out.append(self.caption)
        out += [self.table, _colgroup(widths), self.thead, "<tbody>"]
        if start % 2:
            out.append("<tr hidden></tr>")  # keeps the whole table's :nth-child(even) striping
        for index in range(start, end):
            row = self.rows[index]
            out.append(row.replace("<tr", f'<tr id="{ROW_ID}{index}"', 1) if ids else row)
        out.append("</tbody>")
        out.append(self.trail if end == len(self.rows) else f"</table></{self.tag}>")
        return "".join(out)

    def measuring_fragment(self) -> str:
        """The header and the widest cells of each column, laid out automatically.

        The first row's cells carry ids, and an empty last cell marks the right edge, so the
        page's anchors give every column's width.
        """
        lengths = [[len(_text(cell[2])) for cell in _CELL.findall(row)] for row in self.rows]
        sample: dict[int, None] = {}  # row indexes, in order, without repeats
        for column in range(self.columns):
            widest = heapq.nlargest(_SAMPLE_PER_COLUMN, range(len(self.rows)), key=lambda i: lengths[i][column])
            sample.update(dict.fromkeys(widest))
        rows = [self.rows[i] for i in sample]
        counter = iter(range(self.columns))
        first = _CELL.sub(lambda m: f'<{m[1]} id="{COL_ID}{next(counter)}"{m[2]}>{m[3]}</{m[1]}>', rows[0])
        edge = f'<td id="{COL_ID}{self.columns}" style="padding:0;border:0"></td>'
        rows[0] = first[: first.lower().rindex("</tr")] + edge + "</tr>"
        body = "".join(rows)
        return f"{self.container(continued=True, measure=True)}{self.table}{self.thead}<tbody>{body}</tbody></table></{self.tag}>"


def _text(cell_html: str) -> str:
    text = _TAG.sub("", cell_html).strip()
    return html_lib.unescape(text) if "&" in text else text


def _colgroup(widths: Sequence[float]) -> str:
    if not widths:
        return ""
    return "<colgroup>" + "".join(f'<col style="width:{w:.4f}%">' for w in widths) + "</colgroup>"


def _parse_table(marked: str) -> MarkedTable | None:
    match = _SECTION.match(marked)
    if not match:
        return None
    body, trail, tag = match["body"], match["trail"], match["tag"]
    rows = tuple(_ROW.findall(body))
    if not rows or _ROW.sub("", body).strip() or not trail.rstrip().lower().endswith(f"</{tag.lower()}>"):
        return None
    lowered = body.lower()
    if "<table" in lowered or "rowspan" in lowered or "colspan" in lowered:
        return None  # nested tables or cells spanning rows cannot be cut between rows
    counts = {len(_CELL.findall(row)) for row in rows}
    if len(counts) != 1 or not (columns := counts.pop()):
        return None
    return MarkedTable(match["open"], tag, match["caption"], match["table"], match["thead"], rows, trail, columns)


@dataclass(frozen=True)
class SplitReport:
    """The report cut at its long tables: ``flows[i]`` comes before ``tables[i]``."""

    head: str  # up to the end of <head>, with counter(pages) renamed in its <style> elements
    between: str  # from </head> to the end of the <body> start tag
    foot: str  # from </body>
    running: str  # the body's <header>: running elements every part must repeat
    flows: tuple[str, ...]
    tables: tuple[MarkedTable, ...]

    def document(self, body: str, *, first_page: int, total: int, continued: bool) -> str:
        style = _PART_STYLE.format(first=first_page, total=total) + (_CONTINUED_STYLE if continued else "")
        return self.head + style + self.between + body + self.foot


def split_report(html: str) -> SplitReport | None:
    body_open = _BODY_OPEN.search(html)
    if not body_open:
        return None
    head_close = _HEAD_CLOSE.search(html, 0, body_open.start())
    cut = head_close.start() if head_close else body_open.start()
    head = _STYLE_ELEMENT.sub(lambda m: m[1] + rename_pages_counter(m[2]) + m[3], html[:cut])
    body_close = html.lower().rfind("</body")
    if body_close < body_open.end():
        body_close = len(html)
    body = html[body_open.end() : body_close]
    flows, tables = [], []
    rest = body
    while BEGIN in rest:
        before, _, rest = rest.partition(BEGIN)
        marked, found, rest = rest.partition(END)
        table = _parse_table(marked) if found else None
        if table is None:
            log.info("a marked long table has an unexpected structure; laying the report out in one piece")
            return None
        flows.append(before)
        tables.append(table)
    flows.append(rest)
    running = _RUNNING_HEADER.search(flows[0])
    return SplitReport(
        head, html[cut : body_open.end()], html[body_close:], running[0] if running else "", tuple(flows), tuple(tables)
    )



def is_blank(flow: str, running: str) -> bool:
    return not re.sub(r"<!--.*?-->", "", flow.replace(running, "", 1), flags=re.S).strip()

