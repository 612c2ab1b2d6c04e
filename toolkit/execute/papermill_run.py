"""Execute a notebook with papermill in a fresh kernel and translate failures into the error tree.

Two papermill extension points are used, both registered by name (no monkey-patching):
- the ``nbpress`` engine: nbclient with per-cell progress callbacks and an immediate kernel
  shutdown (a graceful one sometimes hangs for seconds on ipykernel's control thread);
- a Python translator that injects dates as ``datetime`` objects instead of strings, so the
  injected cell matches the parameters cell's annotations.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import papermill
from jupyter_client import AsyncKernelManager
from jupyter_client.asynchronous import AsyncKernelClient
from traitlets import DottedObjectName, Type
from traitlets.config import Config
from nbclient.exceptions import CellTimeoutError as _NbclientTimeout
from nbclient.exceptions import DeadKernelError
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from papermill.models import Parameter as PapermillParameter
from papermill.translators import PythonTranslator, papermill_translators

from ..errors import CellTimeoutError, ExecutionError, KernelDiedError, NotebookError
from ..inputs.params import SECRET_SHOWN, read_schema
from ..notebook.run_env import RUN_ENV
from .kernel_client import PromptKernelClient

__all__ = ["execute", "CellEvent", "IpcKernelManager", "KERNEL_ARGUMENTS"]

SAVE_EVERY = 1.0  # seconds between partial saves of the executed notebook while it runs

# Given to every run's kernel. IPython's history would write each cell's source to IPYTHONDIR's
# history.sqlite, the injected parameters unmasked among them, from a thread that cost ~60 ms of
# CPU per run; a run is replayed from its executed notebook, never from a history.
KERNEL_ARGUMENTS = ("--HistoryManager.enabled=False",)

# (index, total, phase) where phase is "start" or "done"
CellEvent = Callable[[int, int, str], None]


class _IsoDate(str):
    """A date or datetime on its way into the notebook: a plain string in papermill's metadata,
    a ``datetime`` object in the injected cell."""

    kind = "date"


class _IsoDateTime(_IsoDate):
    kind = "datetime"


def _for_papermill(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _IsoDateTime(value.isoformat())
    if isinstance(value, dt.date):
        return _IsoDate(value.isoformat())
    if isinstance(value, list):
        return [_for_papermill(v) for v in value]
    return value


class _FromEnv(str):
    """A secret on its way into the notebook: ``***`` in papermill's metadata; in the injected
    cell, code that reads the kernel's environment (the value is never written into the notebook)."""

    def __new__(cls, variable: str):
        self = super().__new__(cls, SECRET_SHOWN)
        self.variable = variable
        return self

    def __reduce__(self):
        return (_FromEnv, (self.variable,))


class _Translator(PythonTranslator):
    @classmethod
    def translate(cls, val: Any) -> str:
        if isinstance(val, _FromEnv):
            return f'__import__("os").environ[{val.variable!r}]'
        if isinstance(val, _IsoDate):
            return f'__import__("datetime").{val.kind}.fromisoformat({str(val)!r})'
        return super().translate(val)

    @classmethod
    def inspect(cls, parameters_cell):
        # papermill's own inspection is a regex that misses dotted and Literal annotations.
        nb = nbformat.v4.new_notebook(cells=[parameters_cell])
        try:
            schema = read_schema(Path("<parameters cell>"), nb)
        except NotebookError:
            return []
        return [
            PapermillParameter(p.name, p.type.describe(), "" if p.required else repr(p.default), p.help)
            for p in schema.parameters
        ]

    @classmethod
    def codify(cls, parameters, comment="Parameters"):
        # The base class formats with black when it is installed; skip that for stable output.
        content = f"{cls.comment(comment)}\n"
        for name, val in parameters.items():
            content += f"{cls.assign(name, cls.translate(val))}\n"
        return content


class _Engine(NBClientEngine):
    @classmethod
    def execute_notebook(cls, nb, kernel_name, source_path: str | None = None, **kwargs):
        # We hand papermill the prepared notebook, not a path; it would record the whole notebook
        # as its input_path. Record where it was read from instead.
        if source_path is not None:
            nb.metadata.papermill["input_path"] = source_path
        return super().execute_notebook(nb, kernel_name, **kwargs)

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, on_cell: CellEvent | None = None, **kwargs):
        if on_cell is not None:
            total = len(nb_man.nb.cells)
            start, complete = nb_man.cell_start, nb_man.cell_complete

            def cell_start(cell, cell_index=None, **kw):
                on_cell(cell_index, total, "start")
                return start(cell, cell_index, **kw)

            def cell_complete(cell, cell_index=None, **kw):
                result = complete(cell, cell_index, **kw)
                on_cell(cell_index, total, "done")
                return result

            nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete
        # IPC sockets in the private runtime dir instead of unencrypted loopback TCP ports.
        config = Config({"KernelManager": {"transport": "ipc"}})
        # papermill writes the whole notebook at every cell start and end (~40 writes, ~0.7 s
        # of CPU for the demo); once a second is enough for a live partial notebook, and the
        # final save after the last cell (or the failure) always happens.
        save = nb_man.save
        last = [0.0]

        def throttled_save(**kw):
            now = time.monotonic()
            if now - last[0] >= SAVE_EVERY:
                last[0] = now
                save(**kw)

        nb_man.save = throttled_save
        try:
            return super().execute_managed_notebook(
                nb_man, kernel_name, shutdown_kernel="immediate", config=config, **kwargs
            )
        finally:
            nb_man.save = save  # papermill's own final save comes next


_ipc_dir: str | None = None


def _private_ipc_dir() -> str:
    """A 0700 folder for this process's kernel sockets, short enough for a socket path
    (about 107 bytes at most), removed when the process exits."""
    global _ipc_dir
    if _ipc_dir is None or not os.path.isdir(_ipc_dir):
        base = tempfile.gettempdir()
        _ipc_dir = tempfile.mkdtemp(prefix="nbpress-ipc-", dir=base if len(base) <= 40 else "/tmp")
        atexit.register(shutil.rmtree, _ipc_dir, True)
    return _ipc_dir


class IpcKernelManager(AsyncKernelManager):
    """IPC sockets named after this kernel, in a private folder.

    jupyter_client's default IPC name is ``kernel-ipc-N`` relative to the working directory,
    with N the first number whose file does not exist yet: two kernels starting at once in
    the same notebook folder (a batch) pick the same sockets and read each other's messages,
    and the socket files litter the notebook folder.
    """

    client_class = DottedObjectName("toolkit.execute.kernel_client.PromptKernelClient")
    client_factory = Type(PromptKernelClient, klass=AsyncKernelClient)  # what client() builds

    def _ip_default(self) -> str:
        if self.transport != "ipc":
            return super()._ip_default()
        return os.path.join(_private_ipc_dir(), f"k{uuid.uuid4().hex[:16]}")

    async def _async_wait(self, pollinterval: float = 0.01) -> None:
        # After the immediate shutdown's kill, jupyter_client polls the process every 0.1 s:
        # a killed kernel is gone within milliseconds, so every run waited ~0.1 s for nothing.
        await super()._async_wait(pollinterval)


papermill_translators.register("python", _Translator)
papermill_engines.register("nbpress", _Engine)


@contextlib.contextmanager
def _kernel_env(run_id: str) -> Iterator[None]:
    """The kernel inherits this process's environment: mark it as an nbpress run."""
    previous = os.environ.get(RUN_ENV)
    os.environ[RUN_ENV] = run_id
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_ENV, None)
        else:
            os.environ[RUN_ENV] = previous


def execute(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    source: nbformat.NotebookNode,
    parameters_cell: int | None,
    run_id: str,
    cell_timeout: int | None,
    start_timeout: int,
    on_cell: CellEvent | None = None,
    launcher: type | None = None,
    secrets: dict[str, str] | None = None,
) -> None:
    """Run ``source`` (the notebook read from ``notebook``, as prepared) with ``parameters``,
    writing the executed notebook to ``output``; the kernel works in ``notebook``'s folder.

    The output is saved after every cell, so a failure leaves the partial notebook behind.
    ``launcher``: a jupyter_client ``KernelManager`` subclass that starts the (always new)
    kernel process another way, e.g. forked from the batch fork server.
    ``secrets``: parameter -> environment variable; the injected cell reads the variable in the
    kernel (which inherits this process's environment), so no value is written into the notebook.
    """
    extra = {"kernel_manager_class": launcher or IpcKernelManager, "extra_arguments": list(KERNEL_ARGUMENTS)}
    current = {"cell": None}
    # papermill inserts its cell after `parameters`; with no such cell nothing is given, nothing injected
    injected_at = parameters_cell + 1 if parameters_cell is not None else None

    def source_index(index: int | None) -> int | None:
        """Index in the analyst's notebook, not counting the injected-parameters cell."""
        return index - 1 if index is not None and injected_at is not None and index > injected_at else index

    def track(index: int, total: int, phase: str) -> None:
        if phase == "start":
            current["cell"] = source_index(index)
        if on_cell is not None:
            on_cell(index, total, phase)

    try:
        with _kernel_env(run_id):
            papermill.execute_notebook(
                source,  # papermill works on its own copy (it serialises the node and reads it back)
                str(output),
                source_path=str(notebook),
                parameters={**{k: _for_papermill(v) for k, v in parameters.items()},
                            **{k: _FromEnv(var) for k, var in (secrets or {}).items()}},
                engine_name="nbpress",
                cwd=str(notebook.parent),
                progress_bar=False,
                log_output=False,
                request_save_on_cell_execute=True,
                execution_timeout=cell_timeout,
                start_timeout=start_timeout,
                on_cell=track,
                **extra,
            )
    except PapermillExecutionError as exc:
        raise ExecutionError(
            f"cell {source_index(exc.cell_index)} raised {exc.ename}: {exc.evalue}",
            cell_index=source_index(exc.cell_index),
            ename=exc.ename,
            evalue=exc.evalue,
        ) from None
    except _NbclientTimeout:
        raise CellTimeoutError(
            f"cell {current['cell']} ran past its timeout of {cell_timeout} s",
            cell_index=current["cell"],
            ename="CellTimeoutError",
            evalue=f"timeout {cell_timeout} s",
        ) from None
    except DeadKernelError as exc:
        raise KernelDiedError(
            f"the kernel died while running cell {current['cell']}",
            cell_index=current["cell"],
            ename="DeadKernelError",
            evalue=str(exc),
        ) from None
    except RuntimeError as exc:
        # jupyter_client: kernel did not start in time / no such kernel
        raise ExecutionError(f"the kernel could not run: {exc}", ename=type(exc).__name__, evalue=str(exc)) from None
    except (ValueError, KeyError) as exc:
        if "kernel" in str(exc).lower():
            raise NotebookError(notebook, f"no usable kernel ({exc})") from None
        raise
