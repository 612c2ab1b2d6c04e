"""Dask over TLS: the client's CA, certificate and key for ``--cluster tls://HOST:PORT``.

The files come from three settings (``NBPRESS_DASK_TLS_CA``, ``NBPRESS_DASK_TLS_CERT``,
``NBPRESS_DASK_TLS_KEY``). They are checked here, before anything runs and without importing
dask: a ``tls://`` cluster without them, or with a file that cannot be read, is one clear line
(exit 2) instead of a handshake that fails or waits. Encryption is required on every connection
(``require_encryption``), so a ``tls://`` batch never falls back to clear text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import settings
from ..errors import UsageError

__all__ = ["TlsFiles", "tls_files"]

_FILES = (("ca", "DASK_TLS_CA", "the CA that signed the scheduler's and workers' certificates"),
          ("cert", "DASK_TLS_CERT", "this client's certificate, signed by that CA"))


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path | None  # None: the key is in the certificate's file

    def security(self):
        """The ``distributed.Security`` of a client that talks TLS only."""
        from distributed.security import Security

        return Security(tls_ca_file=str(self.ca), tls_client_cert=str(self.cert),
                        tls_client_key=str(self.key) if self.key else None, require_encryption=True)


def _readable(variable: str, value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise UsageError(f"{variable}: no such file: {path}")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise UsageError(f"{variable}: cannot read {path} ({exc.strerror or type(exc).__name__})") from None
    return path


def tls_files(address: str | None, environ=None) -> TlsFiles | None:
    """The checked TLS files for a ``tls://`` address; None for any other address."""
    if not address or not address.startswith("tls://"):
        return None
    found = {}
    for field, name, what in _FILES:
        value = settings.get(name, environ)
        variable = settings.PREFIX + name
        if not value:
            raise UsageError(f"--cluster {address}: set {variable} to {what} (see docs/scale-out.md)")
        found[field] = _readable(variable, value)
    key = settings.get("DASK_TLS_KEY", environ)
    found["key"] = _readable(settings.PREFIX + "DASK_TLS_KEY", key) if key else None
    return TlsFiles(**found)
