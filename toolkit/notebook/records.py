"""Records: what a notebook asks the report to show, and how they travel in the notebook.

Each record is a display output carrying the MIME type :data:`MIME_TYPE` next to the normal
HTML/PNG/Markdown representations, so JupyterLab shows it as usual and any executed notebook
(papermill or another scheduler) can be rendered later. Tables travel as Parquet (dtypes and
index kept), figures as SVG with a PNG fallback.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from typing import Any, Union

import nbformat

from ..errors import RecordError

__all__ = ["MIME_TYPE", "Table", "Figure", "Metric", "Text", "Record", "read_records", "check_name"]

MIME_TYPE = "application/vnd.nbpress.record+json"
FORMAT_VERSION = 1
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise RecordError(f"record name {name!r} must be a letter or _ followed by letters, digits, _ or - (max 64)")
    return name


@dataclass(frozen=True)
class Table:
    name: str
    parquet: bytes
    caption: str | None = None
    kind = "table"

    @property
    def frame(self):
        import pandas as pd  # on first use: the notebook API imports this module

        return pd.read_parquet(io.BytesIO(self.parquet))

    def payload(self) -> dict[str, Any]:
        return {"parquet": base64.b64encode(self.parquet).decode("ascii"), "caption": self.caption}


@dataclass(frozen=True)
class Figure:
    name: str
    svg: str
    png: bytes
    caption: str | None = None
    alt: str | None = None  # alternative text for screen readers (default: the caption)
    kind = "figure"

    def payload(self) -> dict[str, Any]:
        data = {"svg": self.svg, "png": base64.b64encode(self.png).decode("ascii"), "caption": self.caption}
        return {**data, "alt": self.alt} if self.alt is not None else data  # older readers see the same record


@dataclass(frozen=True)
class Metric:
    name: str
    value: Union[int, float, str]
    label: str | None = None
    kind = "metric"

    def payload(self) -> dict[str, Any]:
        return {"value": self.value, "label": self.label}


@dataclass(frozen=True)
class Text:
    name: str
    markdown: str
    kind = "text"

    def payload(self) -> dict[str, Any]:
        return {"markdown": self.markdown}


Record = Union[Table, Figure, Metric, Text]


def encode(record: Record) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "kind": record.kind, "name": record.name, **record.payload()}


def decode(data: dict[str, Any]) -> Record:
    try:
        kind, name = data["kind"], check_name(data["name"])
        if kind == "table":
            return Table(name, base64.b64decode(data["parquet"]), data.get("caption"))
        if kind == "figure":
            return Figure(name, data["svg"], base64.b64decode(data["png"]), data.get("caption"), data.get("alt"))
        if kind == "metric":
            return Metric(name, data["value"], data.get("label"))
        if kind == "text":
            return Text(name, data["markdown"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"malformed record ({type(exc).__name__}: {exc})") from None
    raise RecordError(f"unknown record kind {kind!r}")


def read_records(nb: nbformat.NotebookNode) -> dict[str, Record]:
    """All records in an executed notebook, in output order; a name used twice is an error."""
    records: dict[str, Record] = {}
    where: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(MIME_TYPE)
            if data is None:
                continue
            record = decode(data)
            if record.name in records:
                raise RecordError(
                    f"record name {record.name!r} used twice (cells {where[record.name]} and {index})"
                )
            records[record.name], where[record.name] = record, index
    return records
