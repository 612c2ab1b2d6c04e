"""Objects appended to a written PDF as an incremental update (ISO 32000-1, 7.5.6), as raw bytes.

A long table's drawn rows bring ~9 structure elements each (a ``TR`` and its cells): 180,000 at
20,000 rows. Made as qpdf objects at the join, they held ~2.8 KiB each, most of the job's peak
memory. Written here instead, straight to the file after the joined PDF, they cost a few bytes
each: new objects and objects given a new value (a ``TBody``'s kids, a page's parent-tree array)
go, compressed, into object streams of :data:`PER_STREAM` objects (7.5.7), and one
cross-reference stream (7.5.8) whose ``/Prev`` points to the file's own makes them part of it.
The caller writes each object's value as PDF syntax (:func:`string` for text strings).

Every PDF reader applies updates (a signed PDF is one); qpdf and pikepdf read them like any file.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

from ..errors import RenderError

__all__ = ["Update", "PER_STREAM", "string", "ref"]

PER_STREAM = 200  # objects per object stream: a stream is read whole to get one of its objects
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*\Z")


def ref(number: int) -> bytes:
    return b"%d 0 R" % number


def string(text: str) -> bytes:
    """A PDF text string: literal when ASCII (``\\``, ``(`` and ``)`` escaped), else UTF-16BE in hex."""
    if text.isascii() and text.isprintable():
        return b"(" + text.encode("ascii").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"
    return b"<feff" + text.encode("utf-16-be").hex().encode("ascii") + b">"


class Update:
    """One incremental update of ``path``: :meth:`new` numbers, :meth:`put` values, :meth:`close`.

    ``size`` and ``trailer`` come from the file as written (its trailer's ``/Size`` and the
    entries to keep: ``/Root``, ``/Info``, ``/ID``, as PDF syntax); objects of generation 0
    only, as qpdf writes them.
    """

    def __init__(self, path: Path, size: int, trailer: dict[str, bytes]):
        self.path, self.next, self.trailer = path, size, trailer
        with open(path, "rb") as file:
            file.seek(max(0, file.seek(0, 2) - 64))
            tail = file.read()
        found = _STARTXREF.search(tail)
        if found is None:
            raise RenderError(f"PDF rendering failed ({path.name} has no startxref at its end)")
        self.prev = int(found[1])
        self.file = open(path, "ab")  # noqa: SIM115 - closed by close()
        self.offset = self.file.tell()
        if not tail.endswith(b"\n"):
            self._write(b"\n")
        self.entries: dict[int, tuple[int, int, int]] = {}  # number -> (type, field 2, field 3) of its xref entry
        self.pending: list[tuple[int, bytes]] = []

    def new(self) -> int:
        """A number for a new object (its value given later with :meth:`put`)."""
        self.next += 1
        return self.next - 1

    def put(self, number: int, value: bytes) -> None:
        """Object ``number``'s value (a new object, or a new value for one of the file's)."""
        self.pending.append((number, value))
        if len(self.pending) >= PER_STREAM:
            self._flush()

    def close(self) -> None:
        """Write the last object stream and the cross-reference stream, and close the file."""
        try:
            self._flush()
            xref = self.new()
            self.entries[xref] = (1, self.offset, 0)
            numbers = sorted(self.entries)
            index, rows = [], bytearray()
            for number in numbers:
                if index and index[-1][0] + index[-1][1] == number:
                    index[-1][1] += 1
                else:
                    index.append([number, 1])
                kind, second, third = self.entries[number]
                rows += kind.to_bytes(1, "big") + second.to_bytes(5, "big") + third.to_bytes(2, "big")
            data = zlib.compress(bytes(rows))
            keys = b"".join(b"/%s %s" % (key.encode("ascii"), value) for key, value in self.trailer.items())
            head = (b"<</Type/XRef/Size %d/W[1 5 2]/Index[%s]/Prev %d%s/Filter/FlateDecode/Length %d>>"
                    % (self.next, b" ".join(b"%d %d" % (a, n) for a, n in index), self.prev, keys, len(data)))
            self._write(b"%d 0 obj\n%s\nstream\n%s\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % (xref, head, data, self.offset))
        finally:
            self.file.close()

    def _flush(self) -> None:
        if not self.pending:
            return
        stream, header, body = self.new(), [], bytearray()
        for position, (number, value) in enumerate(self.pending):
            header.append(b"%d %d" % (number, len(body)))
            body += value + b"\n"
            self.entries[number] = (2, stream, position)
        first = b" ".join(header) + b"\n"
        data = zlib.compress(first + bytes(body))
        self.entries[stream] = (1, self.offset, 0)
        self._write(b"%d 0 obj\n<</Type/ObjStm/N %d/First %d/Filter/FlateDecode/Length %d>>\nstream\n%s\nendstream\nendobj\n"
                    % (stream, len(self.pending), len(first), len(data), data))
        self.pending = []

    def _write(self, data: bytes) -> None:
        self.file.write(data)
        self.offset += len(data)
