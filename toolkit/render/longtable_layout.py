"""Long tables, the layout side: WeasyPrint layouts of parts, on this process and spawned workers.

Every function here that lays a part out runs in a worker process as well as in this one, with
a :class:`LayoutEnv` (the base URL and the folders the fenced fetcher serves), so a part can
fetch no more than the whole report could. :class:`Lanes` runs a list of such tasks on every
core. WeasyPrint (~0.4 s to import) and the fetcher class load on the first layout.
"""

from __future__ import annotations

import collections
import functools
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from ..errors import RenderError
from .fetcher import fetcher_class
from .pdf_options import CSV_RELATIONSHIP
from .longtable_split import COL_ID, ROW_ID, rename_pages_counter

__all__ = ["LayoutEnv", "Lanes", "Task", "default_workers", "weasyprint_log", "count_pages", "rows_per_page",
           "column_widths", "write_part"]

# --- Work done in the worker processes ------------------------------------------------------


@dataclass(frozen=True)
class LayoutEnv:
    """What a worker needs to lay a part out as the whole report would have been."""

    base_url: str
    roots: tuple[str, ...]  # folders the fenced fetcher serves (the run folder)
    options: tuple[tuple[str, object], ...] = ()  # WeasyPrint's options (see .pdf_options), as pairs
    layers: tuple[str, ...] = ()  # static folders it overlays: the project's, then the built-in


@functools.cache
def _part_fetcher_class():
    from weasyprint.urls import URLFetcherResponse

    class PartFetcher(fetcher_class()):
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
def weasyprint_log() -> _WeasyPrintLog:
    log_filter = _WeasyPrintLog()
    logging.getLogger("weasyprint").addFilter(log_filter)
    return log_filter


def _init_worker() -> None:
    weasyprint_log().seen = set()  # a worker lives for one job


@contextmanager
def _quiet():
    thread, log_filter = threading.get_ident(), weasyprint_log()
    log_filter.muted_threads.add(thread)
    try:
        yield
    finally:
        log_filter.muted_threads.discard(thread)


def _layout(html: str, env: LayoutEnv, *, quiet: bool = True):
    import weasyprint

    fetcher = _part_fetcher_class()([Path(root) for root in env.roots], [Path(layer) for layer in env.layers])
    try:
        with _quiet() if quiet else nullcontext():
            document = weasyprint.HTML(string=html, base_url=env.base_url, url_fetcher=fetcher).render(**dict(env.options))
    except Exception as exc:  # WeasyPrint raises many types; report them as one
        raise RenderError(f"PDF rendering failed ({type(exc).__name__}: {exc})") from None
    return document, fetcher


def count_pages(html: str, env: LayoutEnv) -> int:
    document, _ = _layout(html, env)
    return len(document.pages)


def rows_per_page(html: str, env: LayoutEnv) -> list[int]:
    document, _ = _layout(html, env)
    return [sum(1 for name in page.anchors if name.startswith(ROW_ID)) for page in document.pages]


def column_widths(html: str, env: LayoutEnv, columns: int) -> list[float]:
    document, _ = _layout(html, env)
    anchors = document.pages[0].anchors
    try:
        edges = [anchors[f"{COL_ID}{i}"][0] for i in range(columns + 1)]
    except KeyError:
        return []  # not measurable: the chunks share equal columns instead
    widths = [max(right - left, 0.0) for left, right in zip(edges, edges[1:])]
    total = sum(widths)
    return [100 * w / total for w in widths] if total > 0 else []


def write_part(html: str, env: LayoutEnv, path: str, attachments: Sequence[tuple[str, bytes]]) -> tuple[int, list[str]]:
    import weasyprint

    document, fetcher = _layout(html, env, quiet=False)
    files = [weasyprint.Attachment(string=data, name=name, url_fetcher=fetcher, relationship=CSV_RELATIONSHIP)
             for name, data in attachments]
    try:
        document.write_pdf(path, custom_metadata=True, attachments=files, **dict(env.options))
    except Exception as exc:
        raise RenderError(f"PDF rendering failed ({type(exc).__name__}: {exc})") from None
    return len(document.pages), list(fetcher.refused)



# --- Running tasks on every core -----------------------------------------------------------


def default_workers() -> int:
    """Cores this process may use (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


Task = tuple[Callable, tuple]


class Lanes:
    """This process and ``workers - 1`` spawned processes, each taking the next task when free.

    The calling process lays out too: one fewer Python + WeasyPrint process in memory than a
    pool of one worker per core, for the same parallelism. With one core there is no pool,
    and the chunks still bound memory.

    ``here=False``: the calling process lays nothing out and ``workers`` spawned processes do
    it all. It then never loads WeasyPrint or fpdf2 (~80 MiB, and a heap the layouts leave
    fragmented), so after :meth:`close` it joins the parts with the memory the workers gave
    back. Setting :attr:`here` later makes it a lane again.
    """

    def __init__(self, workers: int, *, here: bool = True):
        self.pool, self.here = None, here
        if multiprocessing.current_process().daemon:
            workers, self.here = 1, True  # a daemonic process may not start children: chunks are laid out here
        remote = workers - 1 if self.here else workers
        if remote > 0:
            context = multiprocessing.get_context("spawn")  # never fork a process that has loaded cairo/pango
            self.pool = ProcessPoolExecutor(max_workers=remote, mp_context=context, initializer=_init_worker)
        self.remote_lanes = remote

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

        local = 1 if self.here else 0
        threads = [threading.Thread(target=lane, args=(True,), daemon=True) for _ in range(min(self.remote_lanes, len(tasks) - local))]
        for thread in threads:
            thread.start()
        if self.here:
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

