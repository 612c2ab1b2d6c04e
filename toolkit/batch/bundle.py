"""Files that travel between the submitting machine and remote workers, as in-memory tarballs.

No shared filesystem is assumed: a batch ships what its members need (the notebook's folder
and the project's templates) once, as bytes, and each member's run folder comes back as bytes
and is unpacked under the submitting side's runs folder.

- :func:`pack_project` / :func:`unpack_project`: ``notebooks/`` (the notebook's own folder, so
  helper modules and small data files beside it still work) and ``templates/``.
- :func:`pack_run` / :func:`unpack_run`: one run folder; unpacked next to its final place and
  renamed into it, so a half-written run folder never appears.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..errors import ExecutorError

__all__ = ["ProjectBundle", "pack_project", "unpack_project", "pack_run", "unpack_run", "MAX_PROJECT_BYTES"]

MAX_PROJECT_BYTES = 64 * 1024 * 1024  # a notebook folder this big holds data that belongs in a database
_SKIP = {"runs", "__pycache__", ".ipynb_checkpoints", "node_modules"}


class ProjectBundle:
    """A packed project: its bytes and their SHA-256 (workers unpack each bundle once)."""

    def __init__(self, data: bytes):
        self.data = data
        self.sha256 = hashlib.sha256(data).hexdigest()


def _add_tree(tar: tarfile.TarFile, folder: Path, arcname: str) -> None:
    tar.add(folder, arcname, recursive=False)
    for entry in sorted(folder.iterdir()):
        if entry.name in _SKIP or entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir():
            _add_tree(tar, entry, f"{arcname}/{entry.name}")
        elif entry.is_file():
            tar.add(entry, f"{arcname}/{entry.name}")


def pack_project(notebook_dir: Path, templates_dir: Path) -> ProjectBundle:
    """``notebooks/`` (from ``notebook_dir``) and ``templates/`` as one tarball."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        _add_tree(tar, notebook_dir, "notebooks")
        if templates_dir.is_dir():
            _add_tree(tar, templates_dir, "templates")
    data = buffer.getvalue()
    if len(data) > MAX_PROJECT_BYTES:
        raise ExecutorError(f"{notebook_dir}: {len(data) / 2**20:.0f} MiB to ship to the workers (limit "
                            f"{MAX_PROJECT_BYTES / 2**20:.0f} MiB); keep data in a database, not beside the notebook")
    return ProjectBundle(data)


def _extract(data: bytes, into: Path) -> None:
    # filter="data": no absolute paths, no "..", no links out of the folder, no device files.
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(into, filter="data")


def unpack_project(bundle: ProjectBundle, into: Path) -> Path:
    """Unpack into ``into`` (a fresh folder) and return it: the project root on the worker."""
    _extract(bundle.data, into)
    return into


def pack_run(run_dir: Path) -> bytes:
    """A run folder as a tarball whose single top-level entry is the run id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        tar.add(run_dir, run_dir.name)
    return buffer.getvalue()


def unpack_run(data: bytes, report_dir: Path) -> Path:
    """Unpack a run folder from :func:`pack_run` into ``report_dir``; returns its path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=report_dir))
    try:
        _extract(data, staging)
        entries = list(staging.iterdir())
        if len(entries) != 1 or not entries[0].is_dir():
            raise ExecutorError("a worker sent back a malformed run folder")
        final = report_dir / entries[0].name
        os.rename(entries[0], final)  # fails if the folder exists: a run never reuses a folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
