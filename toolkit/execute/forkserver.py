"""The kernel fork server: pay kernel start-up and heavy imports once, still give every run a new kernel.

A template process imports ipykernel, IPython and the report's heavy modules (pandas,
matplotlib, sqlalchemy, the spec's ``preload``) once, then waits on a Unix socket. Each request
forks it: the child (copy-on-write, so the imports are already done) becomes a brand-new
``IPKernelApp`` serving the connection file it was given. A kernel is never reused: what a run
changes (variables, module attributes, ``sys.modules``, matplotlib rcParams) dies with its
process, and the next run forks again from the untouched template.

Fork safety: the template never creates a zmq context, an event loop or a thread (checked
before serving); everything kernel-side (zmq sockets, the heartbeat/IOPub/control threads) is
created in the child after the fork.

Protocol (one connection per kernel): the client sends one JSON line ``{"connection_file",
"cwd", "env", "argv"}`` (``argv``: the kernel's extra command-line options); the server
answers ``{"pid": N}``, keeps the connection open while the kernel lives, then sends
``{"exit": code}`` and closes it. If the client goes away first, the kernel's process group is
killed: no orphaned kernels.

Run as ``python -m toolkit.execute.forkserver SOCKET [MODULE ...]``; it prints ``ready`` on
stdout once the imports are done.
"""

from __future__ import annotations

import importlib
import gc
import io
import json
import os
import select
import signal
import socket
import sys
import threading
import traceback

from .. import import_cost
from ..errors import ExecutorError

__all__ = ["DEFAULT_PRELOAD", "serve"]

# What the demo report and most reports import; the spec's `preload` adds to it.
DEFAULT_PRELOAD = ("pandas", "numpy", "matplotlib.pyplot", "sqlalchemy", "pyarrow.parquet", "toolkit.notebook.analyst_api")
# What every kernel imports while it starts.
KERNEL_MODULES = ("ipykernel.debugger", "ipykernel.kernelapp", "ipykernel.ipkernel", "IPython", "matplotlib_inline.backend_inline", "jupyter_client.session")


def _preload(modules: list[str]) -> list[str]:
    # A kernel registers its inline backend only when none is chosen; choose it before pyplot
    # is imported so forked kernels show figures exactly like a kernel started from scratch.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    failed = []
    for name in [*KERNEL_MODULES, *DEFAULT_PRELOAD, *modules]:
        try:
            importlib.import_module(name)
        except Exception:  # a missing optional module is the notebook's problem, not the server's
            failed.append(name)
    _warm_up()
    # Forking with a Python thread or a zmq context alive can deadlock the child. Native pools
    # started by imports (OpenBLAS, jemalloc's background thread) register at-fork handlers.
    if threading.active_count() != 1:
        raise ExecutorError(f"a preloaded module started Python threads: {threading.enumerate()}")
    zmq = sys.modules.get("zmq")
    if zmq is not None and getattr(zmq.Context, "_instance", None) is not None:
        raise ExecutorError("a preloaded module created a zmq context; kernels must create theirs after the fork")
    return failed


def _warm_up() -> None:
    """Do once what every report's first chart and query would otherwise do in every kernel.

    Imports are only half of start-up: pandas, SQLAlchemy and matplotlib load more modules and
    caches on first use (SQL reader, pivot code, fonts, the SVG/PNG writers). Nothing here
    starts a thread (no pyarrow, which keeps a thread pool).
    """
    modules = sys.modules
    if "pandas" in modules and "sqlalchemy" in modules:
        pd, sa = modules["pandas"], modules["sqlalchemy"]
        engine = sa.create_engine("sqlite://")
        with engine.connect() as conn:
            frame = pd.read_sql_query(sa.text("SELECT 1 AS id, '2026-01-05T08:00:00' AS ts, 'a' AS k"), conn,
                                      dtype={"id": "int64"})
        engine.dispose()
        frame["ts"] = pd.to_datetime(frame["ts"], format="ISO8601", utc=True).dt.tz_convert(None)
        frame.pivot_table(index="k", columns="id", values="ts", aggfunc="count", fill_value=0, margins=True)
        frame.to_html()
    if "matplotlib.pyplot" in modules:
        plt = modules["matplotlib.pyplot"]
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.plot([0, 1], [0, 1], marker="o", label="warm")
        ax.set_title("warm-up")
        ax.legend()
        for fmt in ("svg", "png"):
            fig.savefig(io.BytesIO(), format=fmt)
        plt.close(fig)


def _kernel_child(request: dict, inherited: list[socket.socket]) -> None:
    """In the forked child: become a fresh kernel; never returns."""
    code = 1
    try:
        for sock in inherited:
            sock.close()
        os.setsid()  # its own process group: interrupts and kills reach it and its children
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        # As jupyter_client's launcher does (JPY_PARENT_PID, read by ipykernel at import time,
        # so given as an option here): the kernel watches its parent (this server) and exits
        # with it, and knows it is not a terminal `ipython kernel` (no banner).
        parent = str(os.getppid())
        os.environ["JPY_PARENT_PID"] = parent
        os.chdir(request.get("cwd") or "/")
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        _reseed()
        from ipykernel.kernelapp import IPKernelApp  # imported by _preload (after MPLBACKEND is set): a lookup

        app = IPKernelApp.instance()
        app.initialize(["-f", request["connection_file"], f"--IPKernelApp.parent_handle={parent}", *request.get("argv", ())])
        app.start()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reseed() -> None:
    """A forked child inherits the template's random state; a new kernel would not."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def serve(path: str, modules: list[str]) -> None:
    import_cost.uninstall()  # kernels forked from here import like any kernel
    failed = _preload(modules)
    # What the template imported stays out of its kernels' garbage collections: each full
    # collection of a kernel would walk (and write to, unsharing their pages) all those objects.
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    kernels: dict[socket.socket, int] = {}  # client connection -> kernel pid
    exits: dict[int, int] = {}  # reaped before its connection was told
    stop = False

    def _stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    parent = os.getppid()  # the batch that started us; if it dies (SIGKILL, crash) so do we
    print("ready" + (f" (not importable: {', '.join(failed)})" if failed else ""), flush=True)
    os.dup2(2, 1)  # nobody reads the ready pipe any more: kernels' C-level output goes to stderr
    while not stop or kernels:
        try:
            readable, _, _ = select.select([listener, *kernels], [], [], 0.05)
        except InterruptedError:
            readable = []
        for sock in readable:
            if sock is listener:
                if stop:
                    continue
                conn, _ = listener.accept()
                pid = _fork_kernel(conn, listener, list(kernels))
                if pid:
                    kernels[conn] = pid
            else:  # the client closed its side (or sent something): the kernel is not wanted
                pid = kernels.get(sock)
                if pid and not sock.recv(1):
                    _kill_group(pid)
        if os.getppid() != parent:
            stop = True
        if stop:
            for pid in kernels.values():
                _kill_group(pid)
        _reap(kernels, exits)
    listener.close()


def _fork_kernel(conn: socket.socket, listener: socket.socket, others: list[socket.socket]) -> int | None:
    try:
        conn.settimeout(10)
        request = json.loads(conn.makefile("rb").readline())
        conn.settimeout(None)
    except (OSError, ValueError):
        conn.close()
        return None
    pid = os.fork()
    if pid == 0:
        _kernel_child(request, [listener, conn, *others])
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    return pid


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _reap(kernels: dict[socket.socket, int], exits: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        exits[pid] = os.waitstatus_to_exitcode(status)
    for conn, pid in list(kernels.items()):
        if pid in exits:
            try:
                conn.sendall(json.dumps({"exit": exits.pop(pid)}).encode() + b"\n")
            except OSError:
                pass
            conn.close()
            del kernels[conn]


if __name__ == "__main__":  # pragma: no cover - started by toolkit.execute.forked_kernels
    serve(sys.argv[1], sys.argv[2:])
    # Every kernel is reaped and nothing is buffered: skip tearing down pandas, matplotlib and
    # the rest module by module (~0.4 s at the end of every batch, with the CPUs otherwise idle).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
