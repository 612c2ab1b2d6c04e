"""Published files in S3-compatible object storage: ``<prefix>/ab/<sha256>.pdf`` (``FILES_URL``).

The same promises as the folder store (:mod:`storage`):

- An upload is spooled to a temporary file in ``FILES_DIR`` (``.upload-*.part``, swept like the
  folder store's) while the publishing checks run on the stream; the object is written only
  after every check passed, in one PUT (S3 makes an object visible only once it is complete, and
  the PUT carries the SHA-256 for the server to verify where it can). A refused upload or a
  failed PUT leaves no object.
- A file that is already there (same hash, same key) is not written again.
- Every failure of the store (down, too slow, refusing the credentials) is a
  :class:`StorageUnavailable` (503) with one log line naming the store and the cause, never the
  secret key. boto3 is imported only when ``FILES_URL`` is set (the ``scale`` extra).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ConfigError, StorageUnavailable
from .storage import CHUNK, StoredFile, StoredObject, parse_files_url, relative_path, spool

__all__ = ["S3Store", "s3_store_from_settings"]

log = logging.getLogger(__name__)

_MISSING = {"404", "NoSuchKey", "NotFound"}
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}


class S3Store:
    def __init__(self, url: str, *, endpoint_url: str = "", region: str = "", access_key_id: str = "",
                 secret_access_key: str = "", timeout_seconds: int = 30, spool_dir: Path):
        try:
            import boto3  # noqa: F401 - the scale extra; checked here so start-up fails with one line
            from botocore.config import Config
        except ImportError:
            raise ConfigError("setting FILES_URL: object storage needs boto3: pip install 'nbpress[scale]'") from None
        self.bucket, self.prefix = parse_files_url(url)
        self.spool_dir = Path(spool_dir)
        self._options: dict[str, Any] = {
            "endpoint_url": endpoint_url or None, "region_name": region or None,
            "aws_access_key_id": access_key_id or None, "aws_secret_access_key": secret_access_key or None,
            # Few, bounded retries: a publisher waits at most a few timeouts before its 503.
            "config": Config(connect_timeout=min(timeout_seconds, 10), read_timeout=timeout_seconds,
                             retries={"max_attempts": 2, "mode": "standard"}, signature_version="s3v4"),
        }
        self._client_pid: tuple[int, Any] | None = None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def client(self):
        """One boto3 client per process: a client made before gunicorn forks must not be shared."""
        if self._client_pid is None or self._client_pid[0] != os.getpid():
            import boto3

            self._client_pid = (os.getpid(), boto3.session.Session().client("s3", **self._options))
        return self._client_pid[1]

    def key_for(self, sha256: str) -> str:
        return f"{self.prefix}/{relative_path(sha256)}" if self.prefix else relative_path(sha256)

    @contextlib.contextmanager
    def _failures(self, doing: str) -> Iterator[None]:
        """Turn the store's failures into a 503 with one log line (the cause; the secret never)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "?"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            refused = code in _CREDENTIALS or status == 403
            hint = " (check S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY and the bucket's policy)" if refused else ""
            log.error("object store %s: %s failed: %s, HTTP %s%s", self.describe(), doing, code, status, hint)
            raise StorageUnavailable() from None
        except BotoCoreError as exc:  # connection refused or reset, timeouts, no credentials
            log.error("object store %s: %s failed: %s: %s", self.describe(), doing, type(exc).__name__, exc)
            raise StorageUnavailable() from None

    @staticmethod
    def _missing(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code")) in _MISSING

    # --- files -------------------------------------------------------------------------------

    def head(self, sha256: str) -> dict | None:
        """The object's HEAD answer, or None when there is no such object."""
        with self._failures("HEAD"):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=self.key_for(sha256))
            except Exception as exc:
                if self._missing(exc):
                    return None
                raise

    def has(self, sha256: str) -> bool:
        return self.head(sha256) is not None

    def locate(self, sha256: str) -> StoredObject | None:
        found = self.head(sha256)
        return None if found is None else StoredObject(sha256, int(found["ContentLength"]))

    def put(self, stream: BinaryIO, *, limit: int) -> StoredFile:
        """Spool and check ``stream`` (at most ``limit`` bytes, else ``OverflowError``), then write it once."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.spool_dir, prefix=".upload-", suffix=".part") as spooled:
            sha256, size = spool(stream, spooled, limit=limit)  # the checks raise here: nothing sent yet
            if not self.has(sha256):
                spooled.seek(0)
                self.upload(spooled, sha256, size)
        return StoredFile(sha256, size, None)

    def upload(self, body: BinaryIO, sha256: str, size: int) -> None:
        """One PUT of ``body``, whose SHA-256 the caller computed; S3 checks it against the bytes it got."""
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        with self._failures("PUT"):
            self.client.put_object(Bucket=self.bucket, Key=self.key_for(sha256), Body=body, ContentLength=size,
                                   ContentType="application/pdf", ChecksumSHA256=checksum)

    def remove(self, sha256: str) -> None:
        with self._failures("DELETE"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key_for(sha256))

    def open_range(self, sha256: str, start: int, stop: int):
        """The body stream of bytes ``start`` to ``stop - 1``; None when the object is gone."""
        with self._failures("GET"):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self.key_for(sha256), Range=f"bytes={start}-{stop - 1}")
            except Exception as exc:
                if self._missing(exc):
                    return None
                raise
        return answer["Body"]

    def chunks(self, body, *, sha256: str) -> Iterator[bytes]:
        """``body`` in chunks; a failure mid-way ends the answer short (its Content-Length tells the client)."""
        from botocore.exceptions import BotoCoreError

        try:
            while chunk := body.read(CHUNK):
                yield chunk
        except (BotoCoreError, OSError) as exc:
            log.error("object store %s: reading %s.pdf stopped: %s", self.describe(), sha256, type(exc).__name__)
        finally:
            body.close()

    def stored_sha256(self, sha256: str) -> str | None:
        """The SHA-256 of the object's bytes as read back now (None: no object)."""
        body = self.open_range(sha256, 0, 1 << 62)
        if body is None:
            return None
        digest = hashlib.sha256()
        with self._failures("GET"):
            try:
                while chunk := body.read(CHUNK):
                    digest.update(chunk)
            finally:
                body.close()
        return digest.hexdigest()

    def presigned_url(self, sha256: str, *, seconds: int, disposition: str) -> str:
        """A GET URL valid ``seconds``, whose answer carries our file name and type (signed locally)."""
        with self._failures("presign"):
            return self.client.generate_presigned_url("get_object", ExpiresIn=seconds, Params={
                "Bucket": self.bucket, "Key": self.key_for(sha256),
                "ResponseContentDisposition": disposition, "ResponseContentType": "application/pdf"})

    # --- what the sweep and pruning look at --------------------------------------------------------

    def objects(self) -> Iterator[tuple[str, dt.datetime]]:
        """(sha256, last modified) of every stored file under the prefix."""
        start = f"{self.prefix}/" if self.prefix else ""
        with self._failures("LIST"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    name = item["Key"][len(start):]
                    sha256 = name[3:-4]
                    if len(name) == 71 and name.endswith(".pdf") and name[:2] == sha256[:2] and relative_path_ok(sha256):
                        yield sha256, item["LastModified"]

    def incomplete_uploads(self) -> list[tuple[str, str, dt.datetime]]:
        """(key, upload id, initiated) of multipart uploads under the prefix never completed or aborted."""
        found: list[tuple[str, str, dt.datetime]] = []
        with self._failures("LIST uploads"):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix):
                found += [(u["Key"], u["UploadId"], u["Initiated"]) for u in page.get("Uploads", [])]
        return found

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._failures("abort upload"):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)


def relative_path_ok(sha256: str) -> bool:
    try:
        relative_path(sha256)
    except ValueError:
        return False
    return True


def s3_store_from_settings(url: str, settings: dict[str, Any], spool_dir: Path) -> S3Store:
    return S3Store(url, endpoint_url=settings["S3_ENDPOINT_URL"], region=settings["S3_REGION"],
                   access_key_id=settings["S3_ACCESS_KEY_ID"], secret_access_key=settings["S3_SECRET_ACCESS_KEY"],
                   timeout_seconds=settings["S3_TIMEOUT_SECONDS"], spool_dir=spool_dir)
