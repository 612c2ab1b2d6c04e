"""Read back a report PDF's metadata and provenance (``nbpress inspect``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from ..errors import UsageError

__all__ = ["inspect_pdf"]

PROVENANCE_KEY = "/nbpressprovenance"  # WeasyPrint keeps only the alphanumerics of custom keys


def inspect_pdf(path: Path) -> dict[str, Any]:
    try:
        reader = PdfReader(str(path))
        info = reader.metadata or {}
        pages = len(reader.pages)
        attachments = sorted(reader.attachments)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (PdfReadError, OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable PDF ({exc})") from None
    raw = info.get(PROVENANCE_KEY)
    try:
        provenance = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        provenance = None
    return {
        "title": info.get("/Title"),
        "author": info.get("/Author"),
        "subject": info.get("/Subject"),
        "keywords": info.get("/Keywords"),
        "creator": info.get("/Creator"),
        "created": info.get("/CreationDate"),
        "pages": pages,
        "attachments": attachments,
        "provenance": provenance,
    }
