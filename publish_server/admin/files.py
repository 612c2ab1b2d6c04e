"""``files migrate --to s3://bucket/prefix``: copy the folder store to object storage.

Every local file's SHA-256 is computed and must match its name (a corrupt file is reported and
not copied); every copy is read back from the store and hashed again. A file already in the store
with the right hash is skipped, so a run killed half-way is simply started again. The portal keeps
serving from FILES_DIR meanwhile; the operator switches ``FILES_URL`` afterwards.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from ..errors import ConfigError, StorageUnavailable
from ..extensions import db
from ..models import Publication
from ..s3_store import S3Store, s3_store_from_settings
from ..storage import CHUNK, FileStore
from .common import TEXT, fail

__all__ = ["files_group"]

files_group = AppGroup("files", help="The store of published files.")


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(target: S3Store, path: Path, sha256: str) -> str:
    """Copy one verified file; what happened, in a word or two."""
    if target.has(sha256):
        if target.stored_sha256(sha256) == sha256:
            return "already there"
        click.echo(f"  {sha256}.pdf in the store has other bytes: copying again", err=True)
    with path.open("rb") as body:
        target.upload(body, sha256, path.stat().st_size)
    if target.stored_sha256(sha256) != sha256:
        raise click.ClickException(f"{sha256}.pdf read back from {target.describe()} with another SHA-256: "
                                   "the store altered it; stopped")
    return "copied"


@files_group.command("migrate")
@click.option("--to", "url", required=True, type=TEXT, metavar="s3://BUCKET/PREFIX",
              help="Where to copy: the FILES_URL to switch to afterwards (endpoint and keys from the S3_* settings).")
def files_migrate(url: str) -> None:
    """Copy every file of the folder store (FILES_DIR) to object storage, verifying each SHA-256
    (the local file's, and the copy read back). Resumable: files already there with the right hash
    are skipped. Then set NBPRESS_FILES_URL to the same URL and restart the portal."""
    source = FileStore(current_app.config["FILES_DIR"])
    try:
        target = s3_store_from_settings(url.strip(), current_app.config["NBPRESS"], source.root)
    except ValueError as exc:
        fail(f"--to: {exc}")
    except ConfigError as exc:
        fail(str(exc))
    paths = sorted(source.root.glob("??/*.pdf"))
    counts = {"copied": 0, "already there": 0, "corrupt": 0}
    copied_bytes = 0
    click.echo(f"copying {len(paths)} files from {source.describe()} to {target.describe()}")
    try:
        for number, path in enumerate(paths, 1):
            sha256 = _sha256_of(path)
            if path.name != f"{sha256}.pdf":
                counts["corrupt"] += 1
                click.echo(f"[{number}/{len(paths)}] {path.name}: its bytes hash to {sha256[:12]}..., not its name: NOT copied", err=True)
                continue
            outcome = _copy(target, path, sha256)
            counts[outcome] += 1
            copied_bytes += path.stat().st_size if outcome == "copied" else 0
            click.echo(f"[{number}/{len(paths)}] {path.name} {outcome} ({path.stat().st_size:,} bytes, SHA-256 verified)")
    except StorageUnavailable:
        fail(f"the object store {target.describe()} failed (see the log line above); run the same command again to resume")
    missing = sorted({sha for sha in db.session.scalars(select(Publication.sha256).distinct()) if source.open_path(sha) is None})
    click.echo(f"done: {counts['copied']} copied ({copied_bytes:,} bytes), {counts['already there']} already there, "
               f"{counts['corrupt']} corrupt; {len(missing)} files publications name are missing from {source.describe()}")
    if counts["corrupt"]:
        fail("corrupt files were not copied: restore them from a backup (or re-publish) and run again")
    click.echo(f"next: set NBPRESS_FILES_URL={target.describe()} and restart the portal")
