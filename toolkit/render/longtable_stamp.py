"""Drawn long-table rows stamped on their WeasyPrint frame pages, and tagged like WeasyPrint's.

Each drawn page's content goes before its frame page's own content (wrapped in ``q``/``Q``, so
its graphics state does not leak), its fonts under names of their own. In a
tagged frame, every placeholder row (one empty ``TR`` a page, see :mod:`.longtable_direct`) is
replaced by the page's rows: a ``TR`` each, with ``TH``/``TD`` cells as WeasyPrint writes them
(attribute owner ``/Table``, header cells with an ``/ID``, data cells naming their row and column
headers in ``/Headers``), each cell's marked content numbered after the page's own MCIDs and
entered in the page's parent-tree array. It all happens while :mod:`.pdf_join` joins the parts,
straight in the joined file: a stamped part written, parsed and copied again cost a third more
memory at the job's peak (qpdf holds ~2.8 KiB per structure element) and ~1 s per 5,000 rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import RenderError
from .longtable_draw import cells

__all__ = ["stamp"]

_CELL_TAG = re.compile(r"<(t[hd])\b", re.I)
_FONT_NAME = re.compile(rb"/F(\d+)(?=\s+[\d.]+\s+Tf)")
_MCID = re.compile(rb"/MCID (\d+)")


def stamp(joined, drawn_path, rows: Sequence[str], plan: Sequence[tuple[int, int, object]], first_row: int) -> None:
    """Stamp ``drawn_path``'s pages on a frame part just joined (a :class:`~.pdf_join.JoinedPart`):
    the rows' content and structure elements go straight into the joined file. ``plan`` gives
    each page's (first row in ``rows``, rows); ``first_row`` is ``rows[0]``'s index in the table."""
    import pikepdf

    with pikepdf.open(drawn_path) as drawn:
        tree = _Tree.of(joined)
        if tree is not None and len(tree.placeholders) != len(plan):
            raise RenderError(f"PDF rendering failed (a long table's frame has {len(tree.placeholders)} placeholder rows for {len(plan)} pages)")
        for number, (page, drawn_page) in enumerate(zip(joined.pages, drawn.pages)):
            start, count, _ = plan[number]
            array = joined.parent_array(page) if tree else None
            if tree is not None and array is None:
                raise RenderError("PDF rendering failed (a long table's frame page is not in the joined structure tree)")
            _inline(joined.pdf, page, drawn_page, len(array) if array is not None else 0)
            if tree:
                tree.rows(number, page, array, rows[start : start + count], first_row + start)


def _inline(pdf, page, drawn_page, base: int) -> None:
    """``drawn_page``'s content before ``page``'s, its fonts renamed, its MCIDs counted from ``base``."""
    import pikepdf

    resources = page.obj.Resources
    if "/Font" not in resources:
        resources.Font = pikepdf.Dictionary()
    for name, font in drawn_page.obj.Resources.get("/Font", {}).items():
        resources.Font[pikepdf.Name("/nbpressF" + str(name)[2:])] = pdf.copy_foreign(font)
    drawn_page.contents_coalesce()
    content = _FONT_NAME.sub(rb"/nbpressF\1", drawn_page.obj.Contents.read_bytes())
    if base:
        content = _MCID.sub(lambda m: b"/MCID %d" % (int(m[1]) + base), content)
    page.contents_coalesce()
    own = page.obj.Contents.read_bytes()
    # The rows go first: the page-margin boxes stay the last content (WeasyPrint leaves them out
    # of the tree, as pagination), and the frame's area under the rows is empty, so nothing overlaps.
    page.obj.Contents = pikepdf.Stream(pdf, b"q\n" + content + b"\nQ\n" + own)


class _Tree:
    """The frame part's placeholder rows in page order and its column headers' IDs, as the joined
    file has them (copied, the IDs prefixed)."""

    def __init__(self, pdf, placeholders, headers, headers_prefix):
        self.pdf, self.placeholders, self.headers, self.headers_prefix = pdf, placeholders, headers, headers_prefix

    @classmethod
    def of(cls, joined):
        import pikepdf

        root = joined.part.Root.get("/StructTreeRoot")
        if root is None or "/ParentTree" not in root:
            return None
        if joined.tree is None:
            raise RenderError("PDF rendering failed (a long table's tagged frame joined into an untagged file)")
        placeholders, headers = [], []
        stack = [root.K] if not isinstance(root.K, pikepdf.Array) else list(root.K)
        while stack:  # depth first, in document order
            element = stack.pop(0)
            kids = element.get("/K")
            kids = list(kids) if isinstance(kids, pikepdf.Array) else [kids] if kids is not None else []
            kids = [kid for kid in kids if isinstance(kid, pikepdf.Dictionary) and "/S" in kid]
            if element.get("/S") == "/THead" and not headers:
                headers = [joined.prefix + str(cell.ID) if "/ID" in cell else "" for row in kids for cell in _elements(row)]
            if element.get("/S") == "/TBody":
                placeholders += [(joined.copy(element), joined.copy(row)) for row in kids if row.get("/S") == "/TR"]
                continue
            stack = kids + stack
        return cls(joined.pdf, placeholders, headers, joined.prefix)

    def rows(self, number: int, page, array, rows: Sequence[str], first_index: int) -> None:
        """Replace placeholder row ``number`` by ``rows``' elements, their text marked from the page's
        next MCID on (``array``: the page's parent-tree array)."""
        import pikepdf

        body, placeholder = self.placeholders[number]
        prefix = self.headers_prefix
        made = []
        # No /Type: it is optional for structure elements (ISO 32000-1, table 323), and leaving it
        # out of the ~10 elements a row saves ~16 MiB per 5,000 rows in qpdf at the join, the peak.
        for index, row in enumerate(rows, first_index):
            tr = self.pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.TR, P=body, Pg=page.obj, K=pikepdf.Array()))
            row_header = None
            for column, (tag, text) in enumerate(zip(_CELL_TAG.findall(row), cells(row))):
                cell = pikepdf.Dictionary(S=pikepdf.Name("/" + tag.upper()), P=tr, Pg=page.obj)
                if tag.lower() == "th":
                    row_header = f"{prefix}nbpress-{index}-{column}"
                    cell.ID = pikepdf.String(row_header)
                    cell.A = pikepdf.Dictionary(O=pikepdf.Name.Table)
                else:
                    names = [row_header] if row_header else []
                    names += [self.headers[column]] if column < len(self.headers) and self.headers[column] else []
                    cell.A = pikepdf.Dictionary(O=pikepdf.Name.Table, Headers=pikepdf.Array([pikepdf.String(n) for n in names]))
                cell = self.pdf.make_indirect(cell)
                if text:
                    cell.K = len(array)  # a page's MCIDs index its parent-tree array
                    array.append(cell)
                tr.K.append(cell)
            made.append(tr)
        kids = list(body.K) if isinstance(body.K, pikepdf.Array) else [body.K]
        at = next(i for i, kid in enumerate(kids) if kid.objgen == placeholder.objgen)
        body.K = pikepdf.Array(kids[:at] + made + kids[at + 1 :])


def _elements(element) -> list:
    import pikepdf

    kids = element.get("/K")
    kids = list(kids) if isinstance(kids, pikepdf.Array) else [kids] if kids is not None else []
    return [kid for kid in kids if isinstance(kid, pikepdf.Dictionary) and "/S" in kid]
