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
from typing import TYPE_CHECKING, Any, Union

from ..errors import RecordError

if TYPE_CHECKING:  # nbformat costs ~2 s to import where jsonschema's format checkers are installed
    import nbformat

__all__ = ["MIME_TYPE", "Table", "Figure", "Metric", "Text", "Record", "read_records", "check_name"]

MIME_TYPE = "application/vnd.nbpress.record+json"
FORMAT_VERSION = 1
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())  # one line
    return text if len(text) <= width else text[: width - 1] + "…"


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise RecordError(f"record name {name!r} must be a letter or _ followed by letters, digits, _ or - (max 64)")
    return name


def _shape(parquet: bytes) -> tuple[int, int]:
    """Rows and data columns of a recorded table, from the Parquet footer (no data read)."""
    import json

    import pyarrow.parquet as pq  # on first use, like pandas

    meta = pq.read_metadata(io.BytesIO(parquet))
    pandas_meta = json.loads((meta.metadata or {}).get(b"pandas", b"{}"))
    stored_index = [c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)]  # a RangeIndex is not stored
    return meta.num_rows, meta.num_columns - len(stored_index)


# One-line reprs: a record is what tk.table(...) returns, so a notebook cell ending in that call
# shows its repr; the default dataclass repr would dump the Parquet, SVG and PNG bytes.
@dataclass(frozen=True, repr=False)
class Table:
    name: str
    parquet: bytes
    caption: str | None = None
    formats: tuple[tuple[str, str], ...] = ()  # column -> format string, from tk.table(formats=...)
    kind = "table"

    def __repr__(self) -> str:
        rows, columns = _shape(self.parquet)
        return f"<table {self.name!r}: {_count(rows, 'row')} x {_count(columns, 'column')}>"

    @property
    def frame(self):
        import pandas as pd  # on first use: the notebook API imports this module

        return pd.read_parquet(io.BytesIO(self.parquet))

    def payload(self) -> dict[str, Any]:
        payload = {"parquet": base64.b64encode(self.parquet).decode("ascii"), "caption": self.caption}
        return {**payload, "formats": dict(self.formats)} if self.formats else payload


@dataclass(frozen=True, repr=False)
class Figure:
    name: str
    svg: str
    png: bytes
    caption: str | None = None
    missing_glyphs: tuple[int, ...] = ()  # code points no chart font could draw (boxes in the figure)
    alt: str | None = None  # alternative text for screen readers (default: the caption)
    kind = "figure"

    def __repr__(self) -> str:
        return f"<figure {self.name!r}: SVG {len(self.svg) // 1024 + 1} KiB>"

    def payload(self) -> dict[str, Any]:
        data = {"svg": self.svg, "png": base64.b64encode(self.png).decode("ascii"), "caption": self.caption}
        if self.missing_glyphs:  # absent in records made before this field existed, and when none
            data["missing_glyphs"] = list(self.missing_glyphs)
        return {**data, "alt": self.alt} if self.alt is not None else data  # older readers see the same record


@dataclass(frozen=True, repr=False)
class Metric:
    name: str
    value: Union[int, float, str]
    label: str | None = None
    kind = "metric"

    def __repr__(self) -> str:
        return f"<metric {self.name!r}: {_clip(repr(self.value))}>"

    def payload(self) -> dict[str, Any]:
        return {"value": self.value, "label": self.label}


@dataclass(frozen=True, repr=False)
class Text:
    name: str
    markdown: str
    kind = "text"

    def __repr__(self) -> str:
        return f"<text {self.name!r}: {len(self.markdown)} characters>"

    def payload(self) -> dict[str, Any]:
        return {"markdown": self.markdown}


Record = Union[Table, Figure, Metric, Text]


def encode(record: Record) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "kind": record.kind, "name": record.name, **record.payload()}


def decode(data: dict[str, Any]) -> Record:
    try:
        kind, name = data["kind"], check_name(data["name"])
        if kind == "table":
            formats = tuple((str(c), str(f)) for c, f in data.get("formats", {}).items())
            return Table(name, base64.b64decode(data["parquet"]), data.get("caption"), formats)
        if kind == "figure":
            missing = tuple(int(c) for c in data.get("missing_glyphs", ()))
            return Figure(name, data["svg"], base64.b64decode(data["png"]), data.get("caption"), missing, data.get("alt"))
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
