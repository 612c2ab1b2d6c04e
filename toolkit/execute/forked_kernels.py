"""Kernels forked from the fork server, as jupyter_client sees them.

:class:`ForkServer` starts and stops the template process (see :mod:`.forkserver`).
:func:`fork_kernel_manager` returns a ``KernelManager`` class for nbclient/papermill whose
provisioner asks that server for a new kernel instead of starting ``python -m ipykernel``:
everything else (connection file, ports or IPC sockets, signals, shutdown) is jupyter_client's
usual :class:`LocalProvisioner` behaviour, with a process handle that speaks to the server.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

from .. import settings
from ..errors import ExecutorError

if TYPE_CHECKING:
    from .papermill_run import IpcKernelManager

# jupyter_client and papermill are imported only where kernels are launched (the workers):
# the submitting process needs ForkServer alone and would pay ~0.5 s of CPU for them.

__all__ = ["ForkServer", "ForkedKernel", "fork_available", "fork_kernel_manager"]


def fork_available() -> bool:
    return hasattr(os, "fork") and os.path.isdir("/proc") and settings.get("FORK_KERNELS")


class ForkServer:
    """The template process: started once per batch, shared by all workers on this machine."""

    def __init__(self, preload: list[str] | tuple[str, ...] = (), *, start_timeout: float = 120):
        self.preload, self.start_timeout = list(preload), start_timeout
        self._dir: tempfile.TemporaryDirectory | None = None
        self.process: subprocess.Popen | None = None
        self.socket_path = ""

    def start(self) -> ForkServer:
        """Start the template process and wait until it serves."""
        return self.launch().wait_ready()

    def launch(self) -> ForkServer:
        """Start the template process without waiting for its imports (see :meth:`wait_ready`)."""
        self._dir = tempfile.TemporaryDirectory(prefix="nbpress-fork-")  # 0700: only we can connect
        self.socket_path = os.path.join(self._dir.name, "server.sock")
        # debugpy (preloaded with ipykernel's debugger) warns on stderr that breakpoints may be
        # missed in frozen modules: noise for unattended runs, which never attach a debugger.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "toolkit.execute.forkserver", self.socket_path, *self.preload],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, start_new_session=True,
        )
        return self

    def wait_ready(self) -> ForkServer:
        ready, _, _ = select.select([self.process.stdout], [], [], self.start_timeout)
        line = self.process.stdout.readline().decode(errors="replace").strip() if ready else ""
        if not line.startswith("ready"):
            self.stop()
            raise ExecutorError(f"the kernel fork server did not start ({line or 'no answer'})")
        return self

    def stop(self) -> None:
        self.request_stop()
        self.wait_stopped()

    def request_stop(self) -> None:
        """Ask the server to stop (it kills the kernels still running) without waiting for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> ForkServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ForkedKernel:
    """A ``Popen``-like handle on a kernel the server forked: the connection tells when it exits."""

    stdin = stdout = stderr = None

    def __init__(self, socket_path: str, request: dict[str, Any], timeout: float = 30):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._buffer = b""
        self.returncode: int | None = None
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(socket_path)
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            answer = json.loads(self._line() or b"{}")
        except (OSError, ValueError) as exc:
            self._sock.close()
            raise ExecutorError(f"the kernel fork server did not answer ({type(exc).__name__}: {exc})") from None
        if "pid" not in answer:
            self._sock.close()
            raise ExecutorError("the kernel fork server refused to fork a kernel")
        self.pid: int = answer["pid"]

    def _line(self) -> bytes:
        """One line from the server; b"" when it closed the connection without one."""
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(4096)
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _read_exit(self, timeout: float | None) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if b"\n" not in self._buffer:
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if not ready:
                return None
        self._sock.settimeout(None)
        line = self._line()
        try:
            self.returncode = int(json.loads(line)["exit"]) if line else -signal.SIGKILL
        except (ValueError, KeyError):
            self.returncode = -1
        self._sock.close()
        return self.returncode

    def poll(self) -> int | None:
        return self._read_exit(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._read_exit(timeout)
        if code is None:
            raise subprocess.TimeoutExpired("forked kernel", timeout)
        return code

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:  # after the exit the pid may belong to someone else
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def fork_kernel_manager(socket_path: str) -> type[IpcKernelManager]:
    """A KernelManager class whose kernels are forked by the server listening at ``socket_path``."""
    from jupyter_client.provisioning import LocalProvisioner

    from .papermill_run import IpcKernelManager

    class ForkProvisioner(LocalProvisioner):
        async def launch_kernel(self, cmd: list[str], **kwargs: Any):
            km = self.parent
            env = dict(kwargs.get("env") or os.environ)
            # The command is the kernel spec's argv, then the extra arguments the kernel was started with.
            argv = cmd[len(self.kernel_spec.argv):]
            request = {"connection_file": km.connection_file, "cwd": str(kwargs.get("cwd") or os.getcwd()), "env": env,
                       "argv": argv}
            self.process = ForkedKernel(socket_path, request)
            self.pid = self.pgid = self.process.pid  # the child called setsid(): its pid is its group
            self.cwd = request["cwd"]
            return self.connection_info

    class ForkKernelManager(IpcKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any):
            if self.provisioner is None:
                self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
                self.provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
            return await super()._async_pre_start_kernel(**kw)

    return ForkKernelManager
