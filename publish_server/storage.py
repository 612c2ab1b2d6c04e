"""Published files, content-addressed: ``<files>/ab/abcdef...pdf`` named by SHA-256.

A file is written to a temporary name in the same folder, flushed to disk and renamed, so a
reader never sees half a file and a crash leaves no partial publication. Paths are derived
only from the server-computed hash, never from anything a client sent.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

__all__ = ["FileStore", "StoredFile"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
CHUNK = 1024 * 1024


class StoredFile:
    def __init__(self, sha256: str, size: int, path: Path):
        self.sha256, self.size, self.path = sha256, size, path


class FileStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def relative_path(sha256: str) -> str:
        """``ab/abcdef....pdf``: where a file lives under the store's root (also the front server's URL tail)."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return f"{sha256[:2]}/{sha256}.pdf"

    def path_for(self, sha256: str) -> Path:
        return self.root / self.relative_path(sha256)

    def put(self, stream: BinaryIO, *, limit: int) -> StoredFile:
        """Store ``stream`` (at most ``limit`` bytes); returns its hash, size and final path.

        Raises ``OverflowError`` past the limit; nothing is left behind on any failure.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise OverflowError(f"over {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
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
