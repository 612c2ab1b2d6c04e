"""Drawn long-table rows stamped on their WeasyPrint frame pages, and tagged like WeasyPrint's.

Each drawn page's content goes before its frame page's own content (wrapped in ``q``/``Q``, so
its graphics state does not leak), its fonts under names of their own. That happens while
:mod:`.pdf_join` joins the parts, straight in the joined file (a stamped part written, parsed
and copied again cost a third more memory at the job's peak, and ~1 s per 5,000 rows).

In a tagged frame, every placeholder row (one empty ``TR`` a page, see :mod:`.longtable_direct`)
is replaced by the page's rows: a ``TR`` each, with ``TH``/``TD`` cells as WeasyPrint writes
them (attribute owner ``/Table``, header cells with an ``/ID``, data cells naming their row and
column headers in ``/Headers``), each cell's marked content numbered after the page's own MCIDs
and entered in the page's parent-tree array. Those ~9 elements a row are not made at the join:
qpdf held ~2.8 KiB each, 0.5 GiB at 20,000 rows. The join only takes the placeholders out and
notes, under a catalog key of its own (:data:`MARK`), which ``TBody``, page and parent-tree
array each drawn page's rows belong to; :meth:`RowStamper.write_structure` then appends the
elements to the written PDF as an incremental update (:mod:`.pdf_update`), and drops the note.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import RenderError
from .longtable_draw import cells
from .pdf_update import Update, ref, string

__all__ = ["RowStamper", "MARK"]

_CELL_TAG = re.compile(r"<(t[hd])\b", re.I)
_FONT_NAME = re.compile(rb"/F(\d+)(?=\s+[\d.]+\s+Tf)")
_MCID = re.compile(rb"/MCID (\d+)")
MARK = "/NbpressRows"  # catalog key: the drawn pages' /Pages, their parent-tree /Arrays, the /Bodies they go in


class RowStamper:
    """Stamps drawn rows on frame parts as they are joined (:meth:`stamp`), then writes the rows'
    structure elements into the joined PDF (:meth:`write_structure`)."""

    def __init__(self):
        # A drawn page: its rows' HTML, the first one's index in the table, its first new MCID,
        # its table's column headers' IDs and the prefix of the part's IDs
        self.pages: list[tuple[Sequence[str], int, int, list[str], str]] = []
        self.bodies: list[list[int]] = []  # a TBody's kids: kept kid i (>= 0), or drawn page p's rows (-1 - p)

    def stamp(self, joined, drawn_path, rows: Sequence[str], plan: Sequence[tuple[int, int, object]], first_row: int) -> None:
        """Stamp ``drawn_path``'s pages on a frame part just joined (a :class:`~.pdf_join.JoinedPart`).
        ``plan`` gives each page's (first row in ``rows``, rows); ``first_row`` is ``rows[0]``'s index in the table."""
        import pikepdf

        with pikepdf.open(drawn_path) as drawn:
            tree = _Tree.of(joined)
            if tree is not None and len(tree.placeholders) != len(plan):
                raise RenderError(f"PDF rendering failed (a long table's frame has {len(tree.placeholders)} placeholder rows for {len(plan)} pages)")
            drawn_pages = {}  # placeholder row -> drawn page number
            for number, (page, drawn_page) in enumerate(zip(joined.pages, drawn.pages)):
                start, count, _ = plan[number]
                array = joined.parent_array(page) if tree else None
                if tree is not None and array is None:
                    raise RenderError("PDF rendering failed (a long table's frame page is not in the joined structure tree)")
                _inline(joined.pdf, page, drawn_page, len(array) if array is not None else 0)
                if tree:
                    if not array.is_indirect:  # to be given a new value by the update
                        array = joined.tree.by_key[int(page.obj.StructParents)] = joined.pdf.make_indirect(array)
                    mark = _mark(joined.pdf)
                    mark.Pages.append(page.obj)
                    mark.Arrays.append(array)
                    drawn_pages[tree.placeholders[number][1].objgen] = len(self.pages)
                    self.pages.append((rows[start : start + count], first_row + start, len(array), tree.headers, tree.headers_prefix))
            if tree:
                self._take_out(joined.pdf, tree, drawn_pages)

    def _take_out(self, pdf, tree: _Tree, drawn_pages: dict) -> None:
        """The placeholder rows leave their TBody (qpdf then writes neither them nor their cells)."""
        import pikepdf

        seen = set()
        for body, _ in tree.placeholders:
            if body.objgen in seen:
                continue
            seen.add(body.objgen)
            layout, kept = [], []
            for kid in list(body.K) if isinstance(body.K, pikepdf.Array) else [body.K]:
                if isinstance(kid, pikepdf.Dictionary) and kid.objgen in drawn_pages:
                    layout.append(-1 - drawn_pages[kid.objgen])
                else:
                    layout.append(len(kept))
                    kept.append(kid)
            body.K = pikepdf.Array(kept)
            _mark(pdf).Bodies.append(body)
            self.bodies.append(layout)

    def write_structure(self, pdf_path: Path) -> None:
        """Append the drawn rows' structure elements to ``pdf_path``, the joined PDF as saved."""
        import pikepdf

        if not self.pages:
            return
        with pikepdf.open(pdf_path) as pdf:  # read lazily: only the objects looked at are loaded
            mark = pdf.Root.get(MARK)
            if mark is None or len(mark.Pages) != len(self.pages) or len(mark.Bodies) != len(self.bodies):
                raise RenderError("PDF rendering failed (the joined PDF lost its drawn rows' note)")
            pages = [page.objgen[0] for page in mark.Pages]
            arrays = [(array.objgen[0], array.unparse(resolved=True)) for array in mark.Arrays]
            bodies = []
            for body in mark.Bodies:
                kept = [_syntax(kid) for kid in body.K]
                del body["/K"]
                bodies.append((body.objgen[0], body.unparse(resolved=True), kept))
            del pdf.Root[MARK]
            catalog = (pdf.Root.objgen[0], pdf.Root.unparse(resolved=True))
            trailer = {key[1:]: pdf.trailer[key].unparse() for key in ("/Root", "/Info", "/ID") if key in pdf.trailer}
            size = int(pdf.trailer.Size)
        update = Update(pdf_path, size, trailer)
        try:
            page_body = {}
            for (number, _, _), layout in zip(bodies, self.bodies):
                page_body.update({-1 - item: number for item in layout if item < 0})
            made = [self._rows(update, p, pages[p], page_body[p]) for p in range(len(self.pages))]
            for (number, value, kept), layout in zip(bodies, self.bodies):
                kids = b" ".join(kept[item] if item >= 0 else b" ".join(ref(tr) for tr in made[-1 - item][0]) for item in layout)
                update.put(number, value[: value.rindex(b">>")] + b"/K [" + kids + b"] >>")
            for (number, value), (_, cells_made) in zip(arrays, made):
                update.put(number, value[: value.rindex(b"]")] + b" ".join(ref(cell) for cell in cells_made) + b" ]")
            update.put(*catalog)
        finally:
            update.close()

    def _rows(self, update: Update, number: int, page: int, body: int) -> tuple[list[int], list[int]]:
        """Drawn page ``number``'s TR elements (the numbers of its rows and of its cells with marked content)."""
        rows, first_index, mcid, headers, prefix = self.pages[number]
        trs, marked = [], []
        # No /Type: it is optional for structure elements (ISO 32000-1, table 323).
        for index, row in enumerate(rows, first_index):
            tr = update.new()
            pairs = list(zip(_CELL_TAG.findall(row), cells(row)))
            numbers = [update.new() for _ in pairs]
            update.put(tr, b"<</S/TR/P %s/Pg %s/K[%s]>>" % (ref(body), ref(page), b" ".join(ref(n) for n in numbers)))
            row_header = None
            for column, ((tag, text), cell) in enumerate(zip(pairs, numbers)):
                if tag.lower() == "th":
                    row_header = f"{prefix}nbpress-{index}-{column}"
                    value = b"<</S/TH/P %s/Pg %s/ID%s/A<</O/Table>>" % (ref(tr), ref(page), string(row_header))
                else:
                    names = [row_header] if row_header else []
                    names += [headers[column]] if column < len(headers) and headers[column] else []
                    value = b"<</S/TD/P %s/Pg %s/A<</O/Table/Headers[%s]>>" % (ref(tr), ref(page), b"".join(string(n) for n in names))
                if text:  # a page's MCIDs index its parent-tree array
                    value += b"/K %d" % mcid
                    mcid += 1
                    marked.append(cell)
                update.put(cell, value + b">>")
            trs.append(tr)
        return trs, marked


def _syntax(value) -> bytes:
    """A value read from a PDF (pikepdf gives numbers, booleans and null as Python's) as PDF syntax."""
    import pikepdf

    if isinstance(value, pikepdf.Object):
        return value.unparse()
    return pikepdf.Array([value]).unparse()[1:-1].strip()


def _mark(pdf):
    import pikepdf

    if MARK not in pdf.Root:
        pdf.Root[MARK] = pikepdf.Dictionary(Pages=pikepdf.Array(), Arrays=pikepdf.Array(), Bodies=pikepdf.Array())
    return pdf.Root[MARK]


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

    def __init__(self, placeholders, headers, headers_prefix):
        self.placeholders, self.headers, self.headers_prefix = placeholders, headers, headers_prefix

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
        return cls(placeholders, headers, joined.prefix)


def _elements(element) -> list:
    import pikepdf

    kids = element.get("/K")
    kids = list(kids) if isinstance(kids, pikepdf.Array) else [kids] if kids is not None else []
    return [kid for kid in kids if isinstance(kid, pikepdf.Dictionary) and "/S" in kid]
