"""Helpers shared by the test modules: ports, processes, polling with a deadline, a pseudo-terminal.

Importing this module loads the standard library only (no toolkit, no portal), so that any test
module can use it; :func:`open_job_store` loads the toolkit's scheduler when called. Fixtures live
in the conftest.py files; the notebook and ``nbpress`` helpers (``make_notebook``, ``cli``,
``pdf_text``) in tests/conftest.py.
"""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host``:``port``."""
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def wait_for(predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1,
             process: subprocess.Popen | None = None) -> T:
    """Poll ``predicate`` until it returns something true; return that value.

    Fails the test (AssertionError naming ``what``) once ``timeout`` seconds have passed, or at
    once when ``process`` (the one expected to make it happen) has exited. The predicate is asked
    one last time at the deadline, so a slow machine gets the whole ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            value = predicate()  # it may have happened just before the exit
            if value:
                return value
            raise AssertionError(f"{what}: not the case, and the process exited with status {process.returncode}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: still not the case after {timeout:g} s")
        time.sleep(interval)


def wait_until_listening(port: int, process: subprocess.Popen, *, timeout: float = 60, name: str = "the server") -> None:
    """Wait until ``process`` accepts connections on ``port`` (fails at once if it exits, with its output
    when that is a pipe)."""
    try:
        wait_for(lambda: listening(port), timeout=timeout, what=f"{name} listening on port {port}", interval=0.2,
                 process=process)
    except AssertionError as exc:
        if process.poll() is not None and process.stdout is not None:
            output = process.stdout.read()
            raise AssertionError(f"{exc}; its output:\n{output if isinstance(output, str) else output.decode(errors='replace')}") from None
        raise


def open_job_store(jobs_url: str, *, executor=None):
    """The daemon's own scheduler and job store, opened the way ``nbpress schedule`` opens them.

    ``toolkit.scheduler.jobs.make_scheduler`` builds it (store, table, job defaults) and the daemon's
    start (``toolkit.scheduler.daemon._open``) starts it paused with the store open. Only APScheduler's
    thread loop is left out: nothing fires unless the test calls ``scheduler._process_jobs()``, one
    pass of that loop, after ``scheduler.resume()``. ``executor`` replaces the thread pool.
    """
    from toolkit.scheduler.daemon import _open
    from toolkit.scheduler.jobs import make_scheduler

    scheduler = make_scheduler(jobs_url, max_runs=1)
    scheduler._main_loop = lambda: None  # the thread that would run the loop ends at once
    if executor is not None:
        scheduler.remove_executor("default", shutdown=False)
        scheduler.add_executor(executor, "default")
    _open(scheduler, jobs_url)
    return scheduler


def run_in_pty(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> tuple[int, str]:
    """Run ``argv`` with stdin, stdout and stderr on a pseudo-terminal; (exit status, all it wrote)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its standard streams are the pseudo-terminal
        try:
            os.chdir(cwd)
            os.execve(argv[0], list(argv), dict(env))
        finally:
            os._exit(127)  # only reached when the exec failed
    chunks = []
    try:
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")


def table_record(name: str, frame, caption: str | None = None, formats: dict[str, str] | None = None):
    """A table record as ``tk.table`` makes it (the frame as Parquet), for tests that render without a kernel."""
    import io

    from toolkit.notebook import records as rec

    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return rec.Table(name, buffer.getvalue(), caption, tuple((formats or {}).items()))
