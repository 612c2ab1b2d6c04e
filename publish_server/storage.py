"""Published files, content-addressed: ``<files>/ab/abcdef...pdf`` named by SHA-256.

Two backends keep the same promises: the folder store here (:class:`FileStore`, ``FILES_DIR``)
and S3-compatible object storage (:mod:`s3_store`, ``FILES_URL=s3://bucket/prefix``). Both name a
file only by the server-computed hash (never by anything a client sent), let no reader see half a
file, leave nothing behind when an upload fails, and write a file that is already there only once.
:func:`store_for` picks the app's backend.

The folder store writes to a temporary name in the same folder, flushes to disk and renames.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Protocol

__all__ = ["FileStore", "StoredFile", "Store", "StoredObject", "relative_path", "store_for", "parse_files_url", "spool"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's bucket naming rules
_PREFIX = re.compile(r"[A-Za-z0-9._~/-]*")
CHUNK = 1024 * 1024


def relative_path(sha256: str) -> str:
    """``ab/abcdef....pdf``: where a file lives under a store's root (also the front server's URL tail)."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return f"{sha256[:2]}/{sha256}.pdf"


class StoredFile:
    def __init__(self, sha256: str, size: int, path: Path | None):
        self.sha256, self.size, self.path = sha256, size, path


class StoredObject:
    """A file in object storage, found: what a download needs before it answers."""

    def __init__(self, sha256: str, size: int):
        self.sha256, self.size = sha256, size


class Store(Protocol):
    """What publishing, downloads, pruning and the sweep ask of a backend."""

    def put(self, stream: BinaryIO, *, limit: int) -> StoredFile: ...
    def has(self, sha256: str) -> bool: ...
    def locate(self, sha256: str) -> Path | StoredObject | None: ...
    def remove(self, sha256: str) -> None: ...
    def describe(self) -> str: ...


def spool(stream: BinaryIO, out: BinaryIO, *, limit: int) -> tuple[str, int]:
    """Copy ``stream`` to ``out`` (at most ``limit`` bytes, else ``OverflowError``); its SHA-256 and size."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise OverflowError(f"over {limit} bytes")
        digest.update(chunk)
        out.write(chunk)
    out.flush()
    os.fsync(out.fileno())
    return digest.hexdigest(), size


class FileStore:
    """The folder store: ``FILES_DIR``; every portal process must see the same folder."""

    def __init__(self, root: Path):
        self.root = Path(root)

    relative_path = staticmethod(relative_path)

    def path_for(self, sha256: str) -> Path:
        return self.root / relative_path(sha256)

    def describe(self) -> str:
        return str(self.root)

    def put(self, stream: BinaryIO, *, limit: int) -> StoredFile:
        """Store ``stream`` (at most ``limit`` bytes); returns its hash, size and final path.

        Raises ``OverflowError`` past the limit; nothing is left behind on any failure.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                sha256, size = spool(stream, out, limit=limit)
            final = self.path_for(sha256)
            final.parent.mkdir(exist_ok=True)
            os.chmod(tmp_name, 0o640)
            os.replace(tmp_name, final)  # same content, same name: replacing is harmless
            return StoredFile(sha256, size, final)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def open_path(self, sha256: str) -> Path | None:
        path = self.path_for(sha256)
        return path if path.is_file() else None

    has = open_path
    locate = open_path

    def remove(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)


def parse_files_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes at its ends); ``ValueError`` otherwise."""
    scheme, sep, rest = url.partition("://")
    if scheme != "s3" or not sep:
        raise ValueError("expected s3://bucket/prefix (or empty for the folder store FILES_DIR)")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(f"{bucket!r} is not an S3 bucket name (3 to 63 of a-z 0-9 . -)")
    if not _PREFIX.fullmatch(prefix) or any(part in ("", ".", "..") for part in prefix.split("/") if prefix):
        raise ValueError("the prefix takes letters, digits and . _ ~ - in /-separated parts (no empty, . or .. parts)")
    return bucket, prefix


def store_for(app: Any) -> Store:
    """The app's store: the S3 store made at start-up when ``FILES_URL`` is set, else the folder."""
    return app.extensions.get("nbpress.objects") or FileStore(app.config["FILES_DIR"])
