"""Long tables: laid out in page-aligned chunks on every core, then joined into one PDF.

WeasyPrint lays a document out in one process, at ~10 ms and ~190 KiB per table row, and a
little worse than linearly: a 5,000-row table takes over a minute and ~0.9 GiB. Pages of a long
table do not depend on each other once every row has the same height, so :func:`write_pdf`:

1. splits the report's HTML at the tables the ``table`` macro marks with :data:`BEGIN` and
   :data:`END`; the rest of the report becomes *flow* parts laid out as usual;
2. measures each long table in three small layouts: its column widths (automatic layout of
   its widest cells, so every chunk gets the same columns) and how many rows fit on its first
   page and on the following ones; with ``table-layout: fixed`` and ``white-space: nowrap``
   each row is one line high, so pages hold a constant number of rows;
3. lays the flow parts out once to count their pages, so every page number is known before
   anything is written;
4. writes all parts on every core, this process and spawned workers each taking the next part
   when free. Each part is a whole document with the report's ``<head>`` and running header;
   its footer says "Page N of TOTAL" because the page counter starts at N (``@page :first
   { counter-set: page N }``) and ``counter(pages)`` is renamed, in every stylesheet, to a
   counter set to TOTAL;
5. checks every part has the pages it was planned with (another pass with the real counts if
   not) and joins them with pypdf, keeping the first part's metadata and attachments.

Workers are started with ``spawn``: forking a process that has loaded cairo/pango is unsafe
(so, as with any ``spawn``, a script that renders must guard its top level with ``if __name__
== "__main__":``). Every part gets its own fenced URL fetcher: a part can fetch no more than the
whole report could.
"""

from __future__ import annotations

import collections
import functools
import heapq
import html as html_lib
import logging
import math
import multiprocessing
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from ..errors import RenderError

__all__ = ["LONG_TABLE_ROWS", "CHUNK_PAGES", "BEGIN", "END", "write_pdf"]

log = logging.getLogger(__name__)

LONG_TABLE_ROWS = 1500  # tables with more body rows than this are laid out in chunks
CHUNK_PAGES = 4  # pages per chunk: small enough to balance two workers and bound their memory
BEGIN, END = "<!--nbpress:long-table-->", "<!--/nbpress:long-table-->"

_CALIBRATION_ROWS = 50  # rows laid out to count a page's rows (doubled until a page is full)
_SAMPLE_PER_COLUMN = 3  # widest cells per column (by characters) laid out to size the columns
_ROW_ID, _COL_ID = "nbpress-row-", "nbpress-col-"

# Added to every part's <head>. Scoped to long tables, except the two page counters.
_PART_STYLE = """<style>
@page {{ counter-reset: nbpress-pages {total}; }}
@page :first {{ counter-set: page {first}; }}
[data-nbpress-long-table] table {{ table-layout: fixed; }}
[data-nbpress-long-table] th, [data-nbpress-long-table] td,
[data-nbpress-measure] th, [data-nbpress-measure] td {{ white-space: nowrap; }}
[data-nbpress-long-table] tr {{ break-inside: avoid; }}
[data-nbpress-continued] {{ margin-top: 0 !important; padding-top: 0 !important; }}
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
class _Table:
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

    def fragment(self, start: int, end: int, widths: Sequence[float], *, ids: bool = False) -> str:
        """Rows ``[start, end)`` with the container, the header, and the caption when ``start`` is 0.

        The fragment that ends the table carries the trail (a "showing N of M rows" note).
        """
        out = [self.container(continued=start > 0)]
        if start == 0:
            out.append(self.caption)
        out += [self.table, _colgroup(widths), self.thead, "<tbody>"]
        if start % 2:
            out.append("<tr hidden></tr>")  # keeps the whole table's :nth-child(even) striping
        for index in range(start, end):
            row = self.rows[index]
            out.append(row.replace("<tr", f'<tr id="{_ROW_ID}{index}"', 1) if ids else row)
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
        first = _CELL.sub(lambda m: f'<{m[1]} id="{_COL_ID}{next(counter)}"{m[2]}>{m[3]}</{m[1]}>', rows[0])
        edge = f'<td id="{_COL_ID}{self.columns}" style="padding:0;border:0"></td>'
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


def _parse_table(marked: str) -> _Table | None:
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
    return _Table(match["open"], tag, match["caption"], match["table"], match["thead"], rows, trail, columns)


@dataclass(frozen=True)
class _Report:
    """The report cut at its long tables: ``flows[i]`` comes before ``tables[i]``."""

    head: str  # up to the end of <head>, with counter(pages) renamed in its <style> elements
    between: str  # from </head> to the end of the <body> start tag
    foot: str  # from </body>
    running: str  # the body's <header>: running elements every part must repeat
    flows: tuple[str, ...]
    tables: tuple[_Table, ...]

    def document(self, body: str, *, first_page: int, total: int, continued: bool) -> str:
        style = _PART_STYLE.format(first=first_page, total=total) + (_CONTINUED_STYLE if continued else "")
        return self.head + style + self.between + body + self.foot


def _split(html: str) -> _Report | None:
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
    return _Report(
        head, html[cut : body_open.end()], html[body_close:], running[0] if running else "", tuple(flows), tuple(tables)
    )


# --- Work done in the worker processes ------------------------------------------------------


@dataclass(frozen=True)
class _Env:
    """What a worker needs to lay a part out as the whole report would have been."""

    base_url: str
    roots: tuple[str, ...]  # folders the fenced fetcher serves


@functools.cache
def _part_fetcher_class():
    from weasyprint.urls import URLFetcherResponse

    from .html import _fetcher_class

    class PartFetcher(_fetcher_class()):
        """The report's fenced fetcher; stylesheets come back with ``counter(pages)`` renamed."""

        def fetch(self, url, headers=None):
            response = super().fetch(url, headers)
            if response.content_type != "text/css":
                return response
            try:
                css = response.read().decode(response.charset or "utf-8")
            finally:
                response.close()
            return URLFetcherResponse(response.url, rename_pages_counter(css), {"Content-Type": "text/css"})

    return PartFetcher


class _WeasyPrintLog(logging.Filter):
    """Keeps WeasyPrint's log readable when a report is laid out in parts.

    Layouts that only measure are muted (the written parts log the same things), and during a
    job each message is logged once, not once per part (every part has the same <head>).
    """

    def __init__(self):
        super().__init__()
        self.muted_threads: set[int] = set()
        self.seen: set[str] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread in self.muted_threads:
            return False
        if self.seen is not None:
            message = record.getMessage()
            if message in self.seen:
                return False
            self.seen.add(message)
        return True


@functools.cache
def _weasyprint_log() -> _WeasyPrintLog:
    log_filter = _WeasyPrintLog()
    logging.getLogger("weasyprint").addFilter(log_filter)
    return log_filter


def _init_worker() -> None:
    _weasyprint_log().seen = set()  # a worker lives for one job


@contextmanager
def _quiet():
    thread, log_filter = threading.get_ident(), _weasyprint_log()
    log_filter.muted_threads.add(thread)
    try:
        yield
    finally:
        log_filter.muted_threads.discard(thread)


def _layout(html: str, env: _Env, *, quiet: bool = True):
    import weasyprint

    fetcher = _part_fetcher_class()([Path(root) for root in env.roots])
    try:
        with _quiet() if quiet else nullcontext():
            document = weasyprint.HTML(string=html, base_url=env.base_url, url_fetcher=fetcher).render()
    except Exception as exc:  # WeasyPrint raises many types; report them as one
        raise RenderError(f"PDF rendering failed ({type(exc).__name__}: {exc})") from None
    return document, fetcher


def _count_pages(html: str, env: _Env) -> int:
    document, _ = _layout(html, env)
    return len(document.pages)


def _rows_per_page(html: str, env: _Env) -> list[int]:
    document, _ = _layout(html, env)
    return [sum(1 for name in page.anchors if name.startswith(_ROW_ID)) for page in document.pages]


def _column_widths(html: str, env: _Env, columns: int) -> list[float]:
    document, _ = _layout(html, env)
    anchors = document.pages[0].anchors
    try:
        edges = [anchors[f"{_COL_ID}{i}"][0] for i in range(columns + 1)]
    except KeyError:
        return []  # not measurable: the chunks share equal columns instead
    widths = [max(right - left, 0.0) for left, right in zip(edges, edges[1:])]
    total = sum(widths)
    return [100 * w / total for w in widths] if total > 0 else []


def _write_part(html: str, env: _Env, path: str, attachments: Sequence[tuple[str, bytes]]) -> tuple[int, list[str]]:
    import weasyprint

    document, fetcher = _layout(html, env, quiet=False)
    files = [weasyprint.Attachment(string=data, name=name, url_fetcher=fetcher) for name, data in attachments]
    try:
        document.write_pdf(path, custom_metadata=True, attachments=files)
    except Exception as exc:
        raise RenderError(f"PDF rendering failed ({type(exc).__name__}: {exc})") from None
    return len(document.pages), list(fetcher.refused)


# --- Planning pages -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    """How a long table falls on pages: ``first`` rows on its first page, then ``per_page``."""

    widths: tuple[float, ...]
    first: int
    per_page: int

    def pages(self, rows: int) -> int:
        """Whole pages laid out as chunks; the remaining 1..per_page rows (the tail) start the next flow."""
        if rows <= self.first:
            return 0
        return math.ceil((rows - self.first) / self.per_page)

    def start(self, page: int) -> int:
        """Index of the first row on the table's ``page`` (0-based)."""
        return 0 if page == 0 else self.first + (page - 1) * self.per_page


@dataclass(frozen=True)
class _Probe:
    """A few rows of a table laid out as a first (or a continued) chunk, to count a page's rows."""

    table: _Table
    continued: bool
    rows: int

    def full(self, pages: list[int]) -> bool:
        """Whether the first page was filled (or the table has no more rows to try)."""
        return len(pages) > 1 or (1 if self.continued else 0) + self.rows >= len(self.table.rows)

    def doubled(self) -> _Probe:
        return _Probe(self.table, self.continued, self.rows * 2)


@dataclass
class _Part:
    """One document of the joined PDF: a flow part, or a run of a long table's pages."""

    body: str
    pages: int  # planned: counted for flows, computed for chunks
    continued: bool  # starts in the middle of a table
    chunk: bool = False
    attachments: Sequence[tuple[str, bytes]] = ()
    path: Path | None = None


def _flow(report: _Report, fits: Sequence[_Fit], index: int) -> _Part:
    """Flow ``index``: the tail of the table before it (if any), then the report's next markup.

    Its pages are counted by laying it out (:meth:`_Job.plan`).
    """
    if index == 0:
        return _Part(report.flows[0], 0, continued=False)
    table, fit = report.tables[index - 1], fits[index - 1]
    tail = fit.start(fit.pages(len(table.rows)))
    body = report.running + table.fragment(tail, len(table.rows), fit.widths) + report.flows[index]
    return _Part(body, 0, continued=tail > 0)


def _chunks(report: _Report, table: _Table, fit: _Fit, chunk_pages: int) -> list[_Part]:
    pages = fit.pages(len(table.rows))
    return [
        _Part(
            report.running + table.fragment(fit.start(a), fit.start(min(a + chunk_pages, pages)), fit.widths),
            min(chunk_pages, pages - a),
            continued=a > 0,
            chunk=True,
        )
        for a in range(0, pages, chunk_pages)
    ]


def _is_blank(flow: str, running: str) -> bool:
    return not re.sub(r"<!--.*?-->", "", flow.replace(running, "", 1), flags=re.S).strip()


# --- Running tasks on every core -----------------------------------------------------------


def default_workers() -> int:
    """Cores this process may use (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


Task = tuple[Callable, tuple]


class _Lanes:
    """This process and ``workers - 1`` spawned processes, each taking the next task when free.

    The calling process lays out too: one fewer Python + WeasyPrint process in memory than a
    pool of one worker per core, for the same parallelism. With one core there is no pool,
    and the chunks still bound memory.
    """

    def __init__(self, workers: int):
        self.pool = None
        if multiprocessing.current_process().daemon:
            workers = 1  # a daemonic process may not start children: chunks are laid out here
        if workers > 1:
            context = multiprocessing.get_context("spawn")  # never fork a process that has loaded cairo/pango
            self.pool = ProcessPoolExecutor(max_workers=workers - 1, mp_context=context, initializer=_init_worker)
        self.remote_lanes = workers - 1

    def run(self, tasks: Sequence[Task]) -> list:
        """Results of ``tasks`` in their order; the first error stops the others from starting."""
        queue, results, errors = collections.deque(enumerate(tasks)), [None] * len(tasks), []

        def lane(remote: bool) -> None:
            while queue and not errors:
                try:
                    index, (task, args) = queue.popleft()
                except IndexError:
                    return
                try:
                    results[index] = self.pool.submit(task, *args).result() if remote else task(*args)
                except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
                    errors.append(exc)

        threads = [threading.Thread(target=lane, args=(True,), daemon=True) for _ in range(min(self.remote_lanes, len(tasks) - 1))]
        for thread in threads:
            thread.start()
        lane(remote=False)
        for thread in threads:
            thread.join()
        if errors:
            if isinstance(errors[0], BrokenProcessPool):
                raise RenderError(
                    "PDF rendering failed (a layout worker process died: out of memory, or a script that"
                    " renders without an `if __name__ == '__main__':` guard)"
                )
            raise errors[0]
        return results

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


# --- The whole job --------------------------------------------------------------------------


def write_pdf(
    html: str,
    pdf_path: Path,
    *,
    base_dir: Path,
    templates_dir: Path,
    attachments: Sequence[tuple[str, bytes]] = (),
    workers: int | None = None,
    chunk_pages: int = CHUNK_PAGES,
) -> tuple[int, list[str]] | None:
    """Write ``html``'s PDF with its marked long tables laid out in parallel chunks.

    ``workers``: processes laying out, this one included (default: one per core). Returns
    ``(pages, refused URLs)``, or ``None`` when the HTML cannot be cut safely or the parts do
    not come out with the planned pages (the caller then lays it out in one piece).
    """
    report = _split(html)
    if report is None:
        return None
    env = _Env(base_dir.resolve().as_uri() + "/", (str(templates_dir / "static"), str(base_dir)))
    with tempfile.TemporaryDirectory(prefix=".parts-", dir=pdf_path.parent) as tmp:
        started = time.perf_counter()
        lanes = _Lanes(max(1, workers or default_workers()))
        _weasyprint_log().seen = set()
        try:
            job = _Job(report, env, lanes, max(1, chunk_pages))
            parts = job.plan()
            planned = time.perf_counter()
            parts[0].attachments = attachments
            refused = job.write(parts, Path(tmp))
        finally:
            lanes.close()  # the workers' memory is given back before the join needs some
            _weasyprint_log().seen = None
        if refused is None:
            return None
        written = time.perf_counter()
        _join([part.path for part in parts], pdf_path)
        log.debug(
            "%d long table(s), %d parts: planned in %.2f s, written in %.2f s, joined in %.2f s",
            len(report.tables), len(parts), planned - started, written - planned, time.perf_counter() - written,
        )
    return sum(part.pages for part in parts), refused


class _Job:
    """One report's parts, planned and then written, each step's layouts run on all lanes."""

    def __init__(self, report: _Report, env: _Env, lanes: _Lanes, chunk_pages: int):
        self.report, self.env, self.lanes, self.chunk_pages = report, env, lanes, chunk_pages

    def task(self, function: Callable, body: str, *args, continued: bool = False, first_page: int = 1, total: int = 0) -> Task:
        html = self.report.document(body, first_page=first_page, total=total, continued=continued)
        return function, (html, self.env, *args)

    def plan(self) -> list[_Part]:
        """Measure the tables and count the flows' pages: every part with its planned pages."""
        report, tables = self.report, self.report.tables
        flows = [_flow(report, (), 0)]
        # Step 1, all at once: column widths, rows per page, and the first flow's pages.
        probes = [_Probe(t, continued, _CALIBRATION_ROWS) for t in tables for continued in (False, True)]
        tasks = [self.task(_column_widths, t.measuring_fragment(), t.columns) for t in tables]
        tasks += [self._probe(probe) for probe in probes]
        first_flow = not _is_blank(report.flows[0], report.running)
        tasks += [self.task(_count_pages, flows[0].body)] if first_flow else []
        results = self.lanes.run(tasks)
        widths, rows_per_page = results[: len(tables)], self._rows(probes, results[len(tables) : 3 * len(tables)])
        flows[0].pages = results[-1] if first_flow else 0
        fits = [_Fit(tuple(widths[i]), rows_per_page[2 * i], max(rows_per_page[2 * i + 1], 1)) for i in range(len(tables))]
        log.debug("long tables fit %s", fits)
        # Step 2: the flows that start with a table's tail, now that the tails are known.
        flows += [_flow(report, fits, i) for i in range(1, len(report.flows))]
        counts = self.lanes.run([self.task(_count_pages, f.body, continued=f.continued) for f in flows[1:]])
        for flow, pages in zip(flows[1:], counts):
            flow.pages = pages
        parts = []
        for i, flow in enumerate(flows):
            if flow.pages:
                parts.append(flow)
            if i < len(tables):
                parts += _chunks(report, tables[i], fits[i], self.chunk_pages)
        return parts

    def _probe(self, probe: _Probe) -> Task:
        start = 1 if probe.continued else 0
        end = min(len(probe.table.rows), start + probe.rows)
        fragment = self.report.running + probe.table.fragment(start, end, (), ids=True)
        return self.task(_rows_per_page, fragment, continued=probe.continued)

    def _rows(self, probes: list[_Probe], pages: list[list[int]]) -> list[int]:
        """Rows on each probe's first page; a page that held every row laid out was not full,
        so those probes are laid out again with twice the rows."""
        while retry := [i for i, probe in enumerate(probes) if not probe.full(pages[i])]:
            for i in retry:
                probes[i] = probes[i].doubled()
            for i, again in zip(retry, self.lanes.run([self._probe(probes[i]) for i in retry])):
                pages[i] = again
        return [p[0] for p in pages]

    def write(self, parts: list[_Part], folder: Path) -> list[str] | None:
        """Write every part; returns the refused URLs, or None if pages still differ from the plan.

        A part that comes out with other pages than planned (a row taller than the rest, say)
        shifts every later page number, so all parts are written again with the real counts.
        """
        for attempt in (1, 2):
            total, first_page, tasks = sum(p.pages for p in parts), 1, []
            for i, part in enumerate(parts):
                part.path = folder / f"{attempt}-{i:04d}.pdf"
                args = (part.body, str(part.path), part.attachments)
                tasks.append(self.task(_write_part, *args, continued=part.continued, first_page=first_page, total=total))
                first_page += part.pages
            # Chunks first: the smaller flow parts fill in while the last chunks finish.
            order = sorted(range(len(parts)), key=lambda i: not parts[i].chunk)
            written = dict(zip(order, self.lanes.run([tasks[i] for i in order])))
            wrong = {i: pages for i, (pages, _) in written.items() if pages != parts[i].pages}
            if not wrong:
                return list(dict.fromkeys(url for i in range(len(parts)) for url in written[i][1]))
            log.warning("long-table parts %s came out with other page counts than planned; writing them again", wrong)
            for i, pages in wrong.items():
                parts[i].pages = pages
        return None


def _join(paths: Sequence[Path], pdf_path: Path) -> None:
    """Concatenate the parts; the first one's catalog (metadata, attachments, outline) is kept."""
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(paths[0]))
    for path in paths[1:]:
        writer.append(str(path))
    tmp = pdf_path.with_name(pdf_path.name + ".part")
    with open(tmp, "wb") as out:
        writer.write(out)
    os.replace(tmp, pdf_path)
