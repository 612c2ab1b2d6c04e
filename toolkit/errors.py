"""The toolkit's error tree. Every error the CLI reports is one of these.

    NbpressError                    base; ``exit_code`` is what the CLI exits with (1 unless noted)
    ├── UsageError                  bad input from the user (exit 2)
    │   ├── SpecError               a report spec is invalid (``file``, ``key``, ``message``)
    │   ├── ParameterError          a parameter value is refused (``name``, ``given``, ``expected``)
    │   ├── NotebookError           a notebook cannot be read or has no parameters cell (``path``,
    │   │                           ``message``)
    │   └── RunDirError             a run folder is missing or incomplete (no ``run.json``, an
    │                               unreadable one, nothing to render or publish)
    ├── RecordError                 a record is malformed or its name is used twice
    ├── ExecutionError              the notebook failed while running (``cell_index``, ``ename``,
    │   │                           ``evalue``)
    │   ├── CellTimeoutError        a cell ran past its timeout
    │   └── KernelDiedError         the kernel process died
    ├── DataCheckError              the records failed the spec's data checks (run ``blocked``;
    │                               ``failures``: the checks that failed)
    ├── RunCancelledError           a run was stopped on purpose (scheduler shutdown); ``run.json``
    │                               names it as the error type of a ``cancelled`` run
    ├── SchedulerError              the scheduler's job store cannot be opened or reached
    ├── ExecutorError               a batch executor broke down (worker pool, fork server,
    │   │                           a Dask worker lost); not the notebook's fault
    │   └── ClusterUnreachableError no Dask scheduler answers at the given address, or it has
    │                               no workers (exit 2)
    ├── RenderError                 the template or the PDF could not be produced
    │   └── MissingGlyphError       text no font can draw, with the spec's ``missing_glyphs: fail``
    │                               (``missing``: the characters and where they are)
    └── PublishError                the portal could not be reached or refused the upload
        │                           (``status``: the HTTP status, ``attempts``: requests made)
        └── LeaseLostError          the portal gave a run request to another worker, or ended it
                                    (409 ``lease_lost``): this worker stops that run

A run's failure as ``run.json`` keeps it is :class:`toolkit.runs.run_folder.FailureRecord`, a
record (not one of these exceptions) naming the error's class in ``type``.
"""

from __future__ import annotations


class NbpressError(Exception):
    """Base class: one clear line in ``str(err)``."""

    exit_code = 1


class UsageError(NbpressError):
    exit_code = 2


class SpecError(UsageError):
    def __init__(self, file: object, key: str | None, message: str):
        self.file, self.key, self.message = str(file), key, message
        where = f"{self.file}: {key}" if key else self.file
        super().__init__(f"{where}: {message}")


class ParameterError(UsageError):
    def __init__(self, name: str, given: object, expected: str, *, problem: str | None = None):
        self.name, self.given, self.expected = name, given, expected
        if problem:
            text = f"parameter '{name}': {problem}"
        else:
            text = f"parameter '{name}': got {given!r}, expected {expected}"
        super().__init__(text)


class NotebookError(UsageError):
    def __init__(self, path: object, message: str):
        self.path, self.message = str(path), message
        super().__init__(f"{self.path}: {message}")


class RecordError(NbpressError):
    pass


class ExecutionError(NbpressError):
    def __init__(
        self,
        message: str,
        *,
        cell_index: int | None = None,
        ename: str | None = None,
        evalue: str | None = None,
    ):
        self.cell_index, self.ename, self.evalue = cell_index, ename, evalue
        super().__init__(message)


class CellTimeoutError(ExecutionError):
    pass


class KernelDiedError(ExecutionError):
    pass


class DataCheckError(NbpressError):
    def __init__(self, failures: list[str]):
        self.failures = list(failures)
        super().__init__(f"blocked by {len(self.failures)} failed data check(s): " + "; ".join(self.failures))


class RunCancelledError(NbpressError):
    pass


class SchedulerError(NbpressError):
    pass


class ExecutorError(NbpressError):
    pass


class ClusterUnreachableError(ExecutorError):
    exit_code = 2  # a wrong --cluster address is bad input: refused before any member runs


class RenderError(NbpressError):
    pass


class MissingGlyphError(RenderError):
    def __init__(self, missing: list[str]):
        self.missing = list(missing)  # one line per character: code point, name, where
        super().__init__(
            f"no installed font can draw {len(self.missing)} character(s): " + "; ".join(self.missing)
            + " (install a font that has them, or set missing_glyphs: warn in the spec)"
        )


class RunDirError(UsageError):
    pass


class PublishError(NbpressError):
    """Publishing failed; the message never carries the publisher token."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0):
        self.status, self.attempts = status, attempts
        super().__init__(message)


class LeaseLostError(PublishError):
    """The portal no longer counts this worker as running the request (409 ``lease_lost``)."""
