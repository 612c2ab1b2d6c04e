"""Join a report's parts (see :mod:`.longtable`) into one PDF, tagged if the parts are.

The first part is the base: its catalog (metadata, XMP, attachments, language, output intent)
is kept. Every later part brings its pages, then what points into them:

- its outline (bookmarks) and named destinations, after the base's;
- its structure tree: the children of its ``/Document`` element go under the base's
  ``/Document``, so the reading order runs through the whole report; the parent tree
  (``StructParents`` key -> the elements of a page's marked content, or of an annotation) is
  renumbered after the keys already used, and its pages and annotations get the new keys;
  header-cell IDs (``/ID``, and the ``/Headers`` of data cells naming them) get the part's
  number as prefix, since WeasyPrint numbers them per file.

pikepdf (qpdf) copies objects between files keeping one copy per object: a structure element's
``/Pg`` or a link's ``/Obj`` copied after the pages points to the copied page or annotation.
Marked-content IDs (MCIDs) are per page, so they stay as they are. pypdf did this ~4x slower
(it parses the parts' many small structure objects in Python).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JoinedPart", "join_parts"]


@dataclass
class JoinedPart:
    """A part whose pages and structure are now in the joined file (see ``join_parts``'s ``then``)."""

    pdf: Any  # the joined file (pikepdf.Pdf)
    part: Any  # the part, still open
    pages: list  # the part's pages, in the joined file
    prefix: str  # put before the part's header-cell IDs in the joined file
    tree: _StructTree | None

    def copy(self, obj):
        """The joined file's copy of the part's ``obj`` (qpdf keeps one copy per object)."""
        return obj if self.part is self.pdf else self.pdf.copy_foreign(obj)

    def parent_array(self, page):
        """The joined file's parent-tree array of ``page``'s marked content (None: untagged)."""
        if self.tree is None or "/StructParents" not in page.obj:
            return None
        return self.tree.by_key.get(int(page.obj.StructParents))


def join_parts(paths: Sequence[Path], pdf_path: Path, then: Callable[[int, JoinedPart], None] | None = None,
               after: Callable[[Path], None] | None = None) -> None:
    """Concatenate the parts into ``pdf_path`` (written atomically: temporary file + rename).

    ``then(number, joined)``, if given, is called once a part is in: long tables' drawn rows
    are stamped on their frame pages there, straight into the joined file (no stamped part is
    written, parsed and copied again: ~1/3 less memory at this, the job's peak).
    ``after(path)``, if given, is called with the joined file once written and closed, before
    it takes ``pdf_path``'s name: the drawn rows' structure elements are appended to it there.
    """
    import pikepdf  # ~0.1 s, only when long tables are joined

    with pikepdf.open(paths[0]) as pdf:
        tree = _StructTree.of(pdf)
        if then is not None:
            then(0, JoinedPart(pdf, pdf, list(pdf.pages), "", tree))
        for number, path in enumerate(paths[1:], 1):
            with pikepdf.open(path) as part:
                first = len(pdf.pages)
                pdf.pages.extend(part.pages)
                _join_outlines(pdf, part)
                _join_destinations(pdf, part)
                prefix = f"p{number}-"
                if tree is not None:
                    tree.graft(part, first, prefix=prefix)
                if then is not None:
                    then(number, JoinedPart(pdf, part, list(pdf.pages)[first:], prefix, tree))
        if tree is not None:
            tree.finish()
        tmp = pdf_path.with_name(pdf_path.name + ".part")
        # Generated object streams (allowed in PDF/A-2 and later, PDF/UA): the many small structure
        # objects copied from the parts otherwise take ~4x the room (qpdf keeps only the base file's streams).
        pdf.save(tmp, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    try:
        if after is not None:
            after(tmp)
        os.replace(tmp, pdf_path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written report.pdf.part left next to the reports
        raise


def _copy(pdf, obj):
    """``obj`` of another file, copied into ``pdf`` (direct containers rebuilt around copied references)."""
    import pikepdf

    if isinstance(obj, pikepdf.Object) and obj.is_indirect:
        return pdf.copy_foreign(obj)
    if isinstance(obj, pikepdf.Array):
        return pikepdf.Array([_copy(pdf, item) for item in obj])
    if isinstance(obj, pikepdf.Dictionary):
        return pikepdf.Dictionary({key: _copy(pdf, value) for key, value in obj.items()})
    return obj


def _pairs(node, kind: str) -> list[tuple]:
    """A number tree's (``kind`` = "/Nums") or a name tree's ("/Names") pairs, leaves and kids alike."""
    flat = list(node.get(kind, []))
    pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
    for kid in node.get("/Kids", []):
        pairs += _pairs(kid, kind)
    return pairs


def _join_outlines(pdf, part) -> None:
    """The part's top-level outline items (with their children) follow the base's."""
    import pikepdf

    theirs = part.Root.get("/Outlines")
    if theirs is None or "/First" not in theirs:
        return
    first, last = pdf.copy_foreign(theirs.First), pdf.copy_foreign(theirs.Last)
    ours = pdf.Root.get("/Outlines")
    if ours is None or "/First" not in ours:
        ours = pdf.Root.Outlines = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Outlines, Count=0))
        ours.First = first
    else:
        ours.Last.Next, first.Prev = first, ours.Last
    ours.Last = last
    ours.Count = int(ours.get("/Count", 0)) + int(theirs.get("/Count", 0))
    item = first
    while item is not None:
        item.Parent = ours
        item = item.get("/Next")


def _join_destinations(pdf, part) -> None:
    """Named destinations (the report's element ids) of the part, in one sorted flat name tree."""
    import pikepdf

    names = part.Root.get("/Names")
    if names is None or "/Dests" not in names:
        return
    ours = pdf.Root.get("/Names")
    if ours is None:
        ours = pdf.Root.Names = pikepdf.Dictionary()
    known = dict((str(k), v) for k, v in _pairs(ours.Dests, "/Names")) if "/Dests" in ours else {}
    for name, dest in _pairs(names.Dests, "/Names"):
        known.setdefault(str(name), _copy(pdf, dest))
    flat = pikepdf.Array()
    for name in sorted(known):
        flat.extend([pikepdf.String(name), known[name]])
    ours.Dests = pdf.make_indirect(pikepdf.Dictionary(Names=flat))


class _StructTree:
    """The joined file's structure tree, growing by one part at a time."""

    def __init__(self, pdf, root, document):
        self.pdf, self.root, self.document = pdf, root, document
        self.by_key = {int(k): v for k, v in _pairs(root.ParentTree, "/Nums")}  # parent-tree key -> its array

    @classmethod
    def of(cls, pdf) -> _StructTree | None:
        import pikepdf

        root = pdf.Root.get("/StructTreeRoot")
        kids = root.get("/K") if root is not None else None
        if not isinstance(kids, pikepdf.Array) or len(kids) != 1:
            return None  # untagged, or not WeasyPrint's shape (one /Document element): left as it is
        if kids[0].get("/S") != "/Document" or "/ParentTree" not in root:
            return None
        return cls(pdf, root, kids[0])

    def graft(self, part, first_page: int, *, prefix: str) -> None:
        """Copy ``part``'s structure; its pages are already the joined file's pages from ``first_page`` on."""
        theirs = part.Root.get("/StructTreeRoot")
        if theirs is None or "/ParentTree" not in theirs:
            return  # an untagged part: its content stays out of the tree
        offset = max(self.by_key, default=-1) + 1
        kids = []
        for document in theirs.K:
            kids += [self.pdf.copy_foreign(kid) for kid in document.get("/K", [])]
        for kid in kids:
            kid.P = self.document
            self.document.K.append(kid)
        for key, value in _pairs(theirs.ParentTree, "/Nums"):
            # One copy in qpdf (made indirect in the part first) rather than an element at a time in Python.
            value = value if value.is_indirect else part.make_indirect(value)
            self.by_key[int(key) + offset] = self.pdf.copy_foreign(value)
        for page in self.pdf.pages[first_page:]:
            if "/StructParents" in page.obj:
                page.obj.StructParents = int(page.obj.StructParents) + offset
            for annotation in page.obj.get("/Annots", []):
                if "/StructParent" in annotation:
                    annotation.StructParent = int(annotation.StructParent) + offset
        _prefix_ids(kids, prefix)

    def finish(self) -> None:
        """Write the renumbered parent tree (one flat ``/Nums``, as WeasyPrint writes it)."""
        import pikepdf

        nums = pikepdf.Array([item for pair in sorted(self.by_key.items()) for item in pair])  # built at once: extending it pair by pair took seconds
        self.root.ParentTree = self.pdf.make_indirect(pikepdf.Dictionary(Nums=nums))
        self.root.ParentTreeNextKey = max(self.by_key, default=-1) + 1


def _prefix_ids(elements: list, prefix: str) -> None:
    """Header cells' ``/ID`` and data cells' ``/Headers`` get ``prefix``: unique in the joined file."""
    import pikepdf

    stack = list(elements)
    while stack:
        element = stack.pop()
        if "/ID" in element:
            element.ID = pikepdf.String(prefix + str(element.ID))
        attributes = element.get("/A")
        if isinstance(attributes, pikepdf.Dictionary) and "/Headers" in attributes:
            attributes.Headers = pikepdf.Array([pikepdf.String(prefix + str(h)) for h in attributes.Headers])
        if element.get("/S") == "/Span":
            continue  # a run of text: WeasyPrint puts no cells under it (half of a table's elements)
        kids = element.get("/K")
        kids = kids if isinstance(kids, pikepdf.Array) else [kids] if kids is not None else []
        stack += [kid for kid in kids if isinstance(kid, pikepdf.Dictionary) and "/S" in kid]
