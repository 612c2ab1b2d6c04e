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
   anything is written, and each flow once more with its table's first rows: those that fit
   on the flow's last page go in the flow, so the table starts under it as in one piece;
4. writes all parts on every core, this process and spawned workers each taking the next part
   when free. Each part is a whole document with the report's ``<head>`` and running header;
   its footer says "Page N of TOTAL" because the page counter starts at N (``@page :first
   { counter-set: page N }``) and ``counter(pages)`` is renamed, in every stylesheet, to a
   counter set to TOTAL;
5. checks every part has the pages it was planned with (another pass with the real counts if
   not) and joins them with pikepdf (:mod:`.pdf_join`), keeping the first part's metadata and
   attachments and merging the parts' structure trees, so the joined PDF is tagged as well.

A table's whole pages need not even be laid out: with at least
:data:`~.longtable_direct.DIRECT_ROWS` rows of plain text, its chunks are *frames* (the page
with one empty placeholder row as tall as the page's rows, cheap to lay out) and its rows are
drawn on them with fpdf2 at the places a probe page measured (:mod:`.longtable_direct`,
:mod:`.longtable_geometry`, :mod:`.longtable_draw`, :mod:`.longtable_stamp`; the rows are stamped
on their frames as the parts are joined). A table it cannot draw the same way keeps the chunks
above, and one log line says why. When every long table is drawn, one spawned worker does all
the layouts and drawing and this process only plans and joins (:func:`_lanes`): one WeasyPrint
process at a time, and the join, the job's memory peak, in a process that never loaded it.

Workers are started with ``spawn``: forking a process that has loaded cairo/pango is unsafe
(so, as with any ``spawn``, a script that renders must guard its top level with ``if __name__
== "__main__":``). Every part gets its own fenced URL fetcher: a part can fetch no more than the
whole report could.

This module plans the pages and runs the job; :mod:`.longtable_split` cuts the HTML and builds
each part's document (step 1), :mod:`.longtable_layout` does the layouts and runs them on every
core (steps 2-4).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import longtable_direct as direct
from .longtable_draw import draw_pages
from .longtable_stamp import RowStamper
from .longtable_layout import (LayoutEnv, Lanes, Task, column_widths, count_pages, default_workers, rows_per_page,
                               weasyprint_log, write_part)
from .pdf_join import join_parts
from .pdf_options import pdf_options
from .longtable_split import BEGIN, END, MarkedTable, SplitReport, is_blank, rename_pages_counter, split_report
from .template_folders import static_folders

__all__ = ["LONG_TABLE_ROWS", "CHUNK_PAGES", "BEGIN", "END", "write_pdf", "rename_pages_counter"]

log = logging.getLogger(__name__)

LONG_TABLE_ROWS = 1500  # tables with more body rows than this are laid out in chunks
CHUNK_PAGES = 4  # pages per chunk: small enough to balance two workers and bound their memory

_CALIBRATION_ROWS = 50  # rows laid out to count a page's rows (doubled until a page is full)


# --- Planning pages -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    """How a long table falls on pages: ``lead`` rows on the last page of the flow before it
    (laid out with that flow), then ``first`` rows on its first page of its own, then ``per_page``."""

    widths: tuple[float, ...]
    first: int
    per_page: int
    lead: int = 0

    def led(self, lead: int) -> _Fit:
        """This fit once ``lead`` rows share the flow's last page: its own pages are all continued ones."""
        return _Fit(self.widths, self.per_page, self.per_page, lead) if lead else self

    def pages(self, rows: int) -> int:
        """Whole pages laid out as chunks; the remaining 1..per_page rows (the tail) start the next flow."""
        if rows - self.lead <= self.first:
            return 0
        return math.ceil((rows - self.lead - self.first) / self.per_page)

    def start(self, page: int) -> int:
        """Index of the first row on the table's ``page`` (0-based, the flow's last page not counted)."""
        return self.lead + (0 if page == 0 else self.first + (page - 1) * self.per_page)


@dataclass(frozen=True)
class _Probe:
    """A few rows of a table laid out as a first (or a continued) chunk, to count a page's rows."""

    table: MarkedTable
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
    # A frame whose rows are drawn: (its rows, [(first of them, rows, geometry)] a page, the first one's index in the table)
    drawn: tuple | None = None
    rows_path: Path | None = None  # the drawn rows' PDF, stamped on the frame when the parts are joined


def _stamper(parts: Sequence[_Part]) -> tuple[Callable, RowStamper]:
    """Stamps each drawn part's rows on its frame pages once :func:`~.pdf_join.join_parts` has
    joined them; the stamper then writes their structure elements into the joined PDF."""
    stamper = RowStamper()

    def then(number: int, joined) -> None:
        part = parts[number]
        if part.drawn:
            rows, plan, first_row = part.drawn
            stamper.stamp(joined, part.rows_path, rows, plan, first_row)

    return then, stamper


def _flow(report: SplitReport, fits: Sequence[_Fit], index: int) -> _Part:
    """Flow ``index``: the tail of the table before it (if any), then the report's next markup.

    Its pages are counted by laying it out (:meth:`_Job.plan`); the rows of the next table that
    share its last page (:meth:`_Job.lead`) are added to it afterwards.
    """
    if index == 0:
        return _Part(report.flows[0], 0, continued=False)
    table, fit = report.tables[index - 1], fits[index - 1]
    tail = fit.start(fit.pages(len(table.rows)))
    body = table.fragment(tail, len(table.rows), fit.widths, running=report.running) + report.flows[index]
    return _Part(body, 0, continued=tail > 0)


def _chunks(report: SplitReport, table: MarkedTable, fit: _Fit, chunk_pages: int, geometries=None) -> list[_Part]:
    pages = fit.pages(len(table.rows))
    if geometries is not None:
        return _frames(report, table, fit, geometries, direct.FRAME_PAGES)
    return [
        _Part(
            table.fragment(fit.start(a), fit.start(min(a + chunk_pages, pages)), fit.widths, running=report.running),
            min(chunk_pages, pages - a),
            continued=a > 0 or fit.lead > 0,
            chunk=True,
        )
        for a in range(0, pages, chunk_pages)
    ]


def _frames(report: SplitReport, table: MarkedTable, fit: _Fit, geometries, chunk_pages: int) -> list[_Part]:
    """Chunks of frame pages whose rows are drawn (:mod:`.longtable_direct`)."""
    pages, parts = fit.pages(len(table.rows)), []
    for a in range(0, pages, chunk_pages):
        plan = []
        for page in range(a, min(a + chunk_pages, pages)):
            # The table's first page; a later part's first page; a page after a break inside a part.
            geometry = geometries[0 if page == 0 and not fit.lead else 1 if page == a else 2]
            plan.append((fit.start(page), fit.start(page + 1) - fit.start(page), geometry))
        heights = [direct.slots_height(g, rows) for _, rows, g in plan]
        body = direct.frame_fragment(table, heights, fit.widths, first=a == 0 and not fit.lead, running=report.running)
        rows = table.rows[plan[0][0] : plan[-1][0] + plan[-1][1]]
        offset = plan[0][0]
        drawn = (rows, [(start - offset, count, g) for start, count, g in plan], offset)
        parts.append(_Part(body, len(plan), continued=a > 0 or fit.lead > 0, chunk=True, drawn=drawn))
    return parts


# --- The whole job --------------------------------------------------------------------------


def write_pdf(
    html: str,
    pdf_path: Path,
    *,
    base_dir: Path,
    templates_dir: Path,
    attachments: Sequence[tuple[str, bytes]] = (),
    workers: int | None = None,
    chunk_pages: int | None = None,
    options: dict[str, object] | None = None,
) -> tuple[int, list[str]] | None:
    """Write ``html``'s PDF with its marked long tables laid out in parallel chunks.

    ``workers``: processes laying out, this one included (default: one per core). ``options``:
    WeasyPrint's (:func:`~toolkit.render.pdf_options.pdf_options`), the same for every part. Returns
    ``(pages, refused URLs)``, or ``None`` when the HTML cannot be cut safely or the parts do
    not come out with the planned pages (the caller then lays it out in one piece).
    """
    report = split_report(html)
    if report is None:
        return None
    options = pdf_options() if options is None else options
    env = LayoutEnv(base_dir.resolve().as_uri() + "/", (str(base_dir),), tuple(options.items()),
                    tuple(str(folder) for folder in static_folders(templates_dir)))
    with tempfile.TemporaryDirectory(prefix=".parts-", dir=pdf_path.parent) as tmp:
        started = time.perf_counter()
        lanes = _lanes(report, options, max(1, workers or default_workers()))
        weasyprint_log().seen = set()
        try:
            job = _Job(report, env, lanes, max(1, chunk_pages or CHUNK_PAGES))  # read now: tests set CHUNK_PAGES
            parts = job.plan()
            planned = time.perf_counter()
            parts[0].attachments = attachments
            refused = job.write(parts, Path(tmp))
        finally:
            lanes.close()  # the workers' memory is given back before the join needs some
            weasyprint_log().seen = None
        if refused is None:
            return None
        written = time.perf_counter()
        _give_back_memory()
        then, stamper = _stamper(parts)
        join_parts([part.path for part in parts], pdf_path, then, stamper.write_structure)
        log.debug(
            "%d long table(s), %d parts: planned in %.2f s, written in %.2f s, joined in %.2f s",
            len(report.tables), len(parts), planned - started, written - planned, time.perf_counter() - written,
        )
    return sum(part.pages for part in parts), refused


def _give_back_memory() -> None:
    """Return the freed heap to the system before the join, the job's peak: the tasks' HTML and
    their pickles leave ~10 MiB free but scattered, which glibc would otherwise keep."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _lanes(report: SplitReport, options: dict, workers: int) -> Lanes:
    """Where the layouts run. When every long table will likely be drawn directly, the pages
    left to lay out are cheap frames: one spawned worker does them all and this process none,
    so the tree holds one WeasyPrint process at a time and the join (its peak) runs in a lean
    one: ~0.6x the memory of two lanes at the same speed (the second lane's spawn, imports and
    document set-ups cost about what it saved). A table that falls back to WeasyPrint's chunks
    makes this process a lane again (:meth:`_Job.plan`)."""
    drawn = workers > 1 and all(direct.why_not(table, options, ()) is None for table in report.tables)
    return Lanes(1, here=False) if drawn else Lanes(workers)


class _Job:
    """One report's parts, planned and then written, each step's layouts run on all lanes."""

    def __init__(self, report: SplitReport, env: LayoutEnv, lanes: Lanes, chunk_pages: int):
        self.report, self.env, self.lanes, self.chunk_pages = report, env, lanes, chunk_pages
        options = dict(env.options)
        self.tagged = bool(options.get("pdf_tags") or options.get("pdf_variant"))

    def task(self, function: Callable, body: str, *args, continued: bool = False, first_page: int = 1, total: int = 0) -> Task:
        html = self.report.document(body, first_page=first_page, total=total, continued=continued)
        return function, (html, self.env, *args)

    def plan(self) -> list[_Part]:
        """Measure the tables and count the flows' pages: every part with its planned pages."""
        report, tables = self.report, self.report.tables
        flows = [_flow(report, (), 0)]
        # Step 1, all at once: column widths, rows per page, and the first flow's pages.
        probes = [_Probe(t, continued, _CALIBRATION_ROWS) for t in tables for continued in (False, True)]
        tasks = [self.task(column_widths, t.measuring_fragment(), t.columns) for t in tables]
        tasks += [self._probe(probe) for probe in probes]
        first_flow = not is_blank(report.flows[0], report.running)
        tasks += [self.task(count_pages, flows[0].body)] if first_flow else []
        results = self.lanes.run(tasks)
        widths, rows_per_page = results[: len(tables)], self._rows(probes, results[len(tables) : 3 * len(tables)])
        flows[0].pages = results[-1] if first_flow else 0
        fits = [_Fit(tuple(widths[i]), rows_per_page[2 * i], max(rows_per_page[2 * i + 1], 1)) for i in range(len(tables))]
        log.debug("long tables fit %s", fits)
        # Step 2, a round per table: each flow's pages, and the next table's rows sharing its last page.
        for i in range(len(tables)):
            if i:
                flows.append(_flow(report, fits, i))
            fits[i] = fits[i].led(self.lead(flows[i], tables[i], fits[i], count=i > 0))
        # Step 3: the last flow's pages, and where drawn rows go.
        last = [_flow(report, fits, i) for i in range(len(flows), len(report.flows))]
        flows += last
        options = dict(self.env.options)
        candidates = [i for i, t in enumerate(tables) if direct.why_not(t, options, ()) is None and fits[i].pages(len(t.rows)) > 0]
        # A table's own first page is probed only when no rows share the flow's last page.
        geometry_tasks = [self._geometry(tables[i], fits[i], continued) for i in candidates
                          for continued in ((True,) if fits[i].lead else (False, True))]
        results = self.lanes.run([self.task(count_pages, f.body, continued=f.continued) for f in last] + geometry_tasks)
        for flow, pages in zip(last, results):
            flow.pages = pages
        geometries = iter(results[len(last) :])
        probed = {i: (None if fits[i].lead else next(geometries), next(geometries)) for i in candidates}
        drawn = self._choose(fits, probed)
        if len(drawn) < len(tables):
            self.lanes.here = True  # WeasyPrint's chunks are not cheap: this process lays out too
        parts = []
        for i, flow in enumerate(flows):
            if flow.pages:
                parts.append(flow)
            if i < len(tables):
                parts += _chunks(report, tables[i], fits[i], self.chunk_pages, drawn.get(i))
        return parts

    def lead(self, flow: _Part, table: MarkedTable, fit: _Fit, *, count: bool) -> int:
        """How many of ``table``'s first rows share the last page of ``flow``, the flow before it
        (``count``: lay the flow out to count its pages first), as WeasyPrint puts them in one
        piece; they are added to the flow, so the table's own pages start with a continued one."""
        probe = flow.body + table.fragment(0, min(len(table.rows), fit.first), fit.widths, ids=True)
        tasks = [self.task(rows_per_page, probe, continued=flow.continued)]
        tasks += [self.task(count_pages, flow.body, continued=flow.continued)] if count else []
        results = self.lanes.run(tasks)
        flow.pages = results[1] if count else flow.pages
        rows = results[0][flow.pages - 1] if 0 < flow.pages <= len(results[0]) else 0
        if 0 < rows < len(table.rows):
            flow.body += table.fragment(0, rows, fit.widths)
            return rows
        return 0

    def _choose(self, fits: list[_Fit], probed: dict[int, tuple]) -> dict[int, tuple]:
        """The tables whose whole pages are drawn (index -> the geometry of the table's first page,
        of a later part's first page and of a page inside a part, None where no such page is
        drawn); each of the others says in one log line why it is not. ``probed``: index -> the
        geometries of a first and of a continued probe (first None when rows share the flow's page)."""
        options, chosen = dict(self.env.options), {}
        for i, table in enumerate(self.report.tables):
            fit = fits[i]
            pages, found = fit.pages(len(table.rows)), ()
            if i in probed:
                first, continued = probed[i][0], probed[i][1] + [None]
                found = (None if fit.lead else first[0], continued[0] if pages > direct.FRAME_PAGES or fit.lead else None,
                         continued[1] if pages > 1 else None)
            reason = direct.why_not(table, options, [g for g in found if g is not None])
            if reason is None and not found:
                reason = "it has too few whole pages"
            elif reason is None and any(g is not None and len(g.slots) < rows for g, rows in zip(found, (fit.first, fit.per_page, fit.per_page))):
                reason = "its probe pages hold fewer rows than planned"
            elif reason is None and pages > 1 and found[2] is None:
                reason = "its probe did not reach a second page"
            if reason is None:
                chosen[i] = found
            else:
                log.info("long table %d of %s rows laid out by WeasyPrint, not drawn directly: %s", i + 1, f"{len(table.rows):,}", reason)
        return chosen

    def _geometry(self, table: MarkedTable, fit: _Fit, continued: bool) -> Task:
        """A probe page of the table with its real column widths: where its rows go."""
        start = 1 if continued else 0
        end = min(len(table.rows), start + (2 * fit.per_page + 2 if continued else fit.first))  # continued: two pages
        fragment = table.fragment(start, end, fit.widths, ids=True, running=self.report.running)
        return self.task(direct.geometry_of, fragment, continued=continued)

    def _probe(self, probe: _Probe) -> Task:
        start = 1 if probe.continued else 0
        end = min(len(probe.table.rows), start + probe.rows)
        fragment = probe.table.fragment(start, end, (), ids=True, running=self.report.running)
        return self.task(rows_per_page, fragment, continued=probe.continued)

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
                tasks.append(self.task(write_part, *args, continued=part.continued, first_page=first_page, total=total))
                first_page += part.pages
            # Chunks first: the smaller flow parts fill in while the last chunks finish.
            order = sorted(range(len(parts)), key=lambda i: not parts[i].chunk)
            for i in range(len(parts)):
                if parts[i].drawn:
                    rows, plan, first_row = parts[i].drawn
                    parts[i].rows_path = folder / f"{attempt}-{i:04d}-rows.pdf"
                    tasks.append((draw_pages, (rows, plan, str(parts[i].rows_path), self.tagged, first_row)))
            results = self.lanes.run([tasks[i] for i in order] + tasks[len(parts):])
            written = dict(zip(order, results))
            wrong = {i: pages for i, (pages, _) in written.items() if pages != parts[i].pages}
            if not wrong:
                return list(dict.fromkeys(url for i in range(len(parts)) for url in written[i][1]))
            log.warning("long-table parts %s came out with other page counts than planned; writing them again", wrong)
            for i, pages in wrong.items():
                parts[i].pages = pages
        return None
