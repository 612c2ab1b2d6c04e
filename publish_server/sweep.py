"""Crash leftovers in the file store: what a killed server leaves behind while publishing.

A file is stored before its row commits (see :mod:`publishing`), so a SIGKILL leaves either a
temporary ``.upload-*.part`` (0 bytes to a whole upload) or a complete ``ab/<sha256>.pdf`` that
no row references. Both are removed once older than an age threshold: a younger one may be an
upload in progress in another worker (its mtime moves with every chunk written).

With object storage (``FILES_URL``) uploads are spooled through the same folder, and the store
itself may hold multipart uploads never completed (by other tools, or a client killed mid-way)
and objects no row references: :func:`sweep_objects`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from .errors import StorageUnavailable
from .extensions import db
from .models import Publication
from .storage import store_for

__all__ = ["leftovers", "referenced_hashes", "sweep", "sweep_objects", "sweep_store"]

log = logging.getLogger(__name__)

_STORED = re.compile(r"[0-9a-f]{64}\.pdf")


def leftovers(files_dir: Path, referenced: Callable[[], set[str]], *, min_age_seconds: int, now: float | None = None) -> list[Path]:
    """Temporary uploads and unreferenced stored files under ``files_dir`` older than ``min_age_seconds``.

    ``referenced()`` (the hashes rows name) is asked only when an old stored file is found, so a
    start-up with nothing to sweep never touches the database.
    """
    if not files_dir.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - min_age_seconds
    found: list[Path] = []

    def old(path: Path) -> bool:
        try:
            return path.stat().st_mtime <= cutoff
        except FileNotFoundError:  # renamed or removed meanwhile
            return False

    found += [path for path in files_dir.glob(".upload-*.part") if old(path)]
    stored = [path for path in files_dir.glob("??/*.pdf") if _STORED.fullmatch(path.name) and old(path)]
    if stored:
        # Read after the ages: a file stored and committed meanwhile is in this set, never swept.
        names = referenced()
        found += [path for path in stored if path.stem not in names]
    return sorted(found)


def referenced_hashes() -> set[str]:
    """Every SHA-256 a publication row names (withdrawn ones too: their row still points at it)."""
    return set(db.session.scalars(select(Publication.sha256).distinct()))


def sweep(files_dir: Path, *, min_age_seconds: int, dry_run: bool = False) -> list[Path]:
    """Remove (or, dry, list) the leftovers; returns them. Needs an app context."""
    found = leftovers(files_dir, referenced_hashes, min_age_seconds=min_age_seconds)
    if not dry_run:
        for path in found:
            path.unlink(missing_ok=True)
    return found


def sweep_store(app) -> list[str]:
    """The start-up sweep; a database without tables yet (before ``init-db``) sweeps nothing, and
    an object store that fails is logged (start-up goes on: downloads may answer 503 meanwhile)."""
    age = app.config["NBPRESS"]["SWEEP_AGE_SECONDS"]
    removed: list[str] = []
    with app.app_context():
        try:
            removed += [path.name for path in sweep(app.config["FILES_DIR"], min_age_seconds=age)]
            objects = app.extensions.get("nbpress.objects")
            if objects is not None:
                removed += sweep_objects(objects, referenced_hashes, min_age_seconds=age)
        except (OperationalError, ProgrammingError):
            db.session.rollback()
        except StorageUnavailable:
            log.warning("start-up sweep skipped the object store %s (see the error above)", store_for(app).describe())
        finally:
            db.session.remove()
    for name in removed:
        log.warning("start-up sweep removed crash leftover %s", name)
    return removed


def sweep_objects(store, referenced: Callable[[], set[str]], *, min_age_seconds: int, dry_run: bool = False,
                  now: float | None = None) -> list[str]:
    """Object storage's leftovers older than ``min_age_seconds``: multipart uploads never completed
    (aborted) and stored files no row references (removed). Returns their names."""
    cutoff = (time.time() if now is None else now) - min_age_seconds
    found: list[str] = []
    for key, upload_id, initiated in store.incomplete_uploads():
        if initiated.timestamp() <= cutoff:
            found.append(f"incomplete upload {key.rpartition('/')[2]}")
            if not dry_run:
                store.abort_upload(key, upload_id)
    old = [sha256 for sha256, modified in store.objects() if modified.timestamp() <= cutoff]
    if old:
        names = referenced()  # read after the listing: a file committed meanwhile is in it
        for sha256 in old:
            if sha256 not in names:
                found.append(f"{sha256}.pdf")
                if not dry_run:
                    store.remove(sha256)
    return found
