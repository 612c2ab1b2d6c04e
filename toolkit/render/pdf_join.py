"""Join a report's parts (see :mod:`.longtable`) into one PDF, tagged if the parts are.

pypdf concatenates pages, outlines, named destinations and annotations, but not the parts'
structure trees, which make a PDF tagged. So, for every part after the first, this module
copies its structure elements into the joined file:

- the part's ``/Document`` element's children go under the first part's ``/Document``, in
  page order, so the reading order runs through the whole report;
- ``/Pg`` (an element's page) and ``/Obj`` (a link's annotation) point to the joined copies;
- the parent tree (``StructParents`` key -> the elements of a page's marked content, or of an
  annotation) is renumbered after the keys already used, and the pages and annotations get
  the new keys;
- header-cell IDs (``/ID``, and the ``/Headers`` of data cells pointing to them) get the part's
  number as prefix: WeasyPrint numbers them per file, so two parts could use the same ID.

Marked-content IDs (MCIDs) are per page, so they stay as they are. Untagged parts are simply
concatenated, as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["join_parts"]


def join_parts(paths: Sequence[Path], pdf_path: Path) -> None:
    """Concatenate the parts; the first one's catalog (metadata, attachments, outline, language) is kept."""
    from pypdf import PdfReader, PdfWriter  # ~0.1 s, only when long tables are joined

    writer = PdfWriter(clone_from=str(paths[0]))
    tree = _StructTree.of(writer)
    for number, path in enumerate(paths[1:], 1):
        reader = PdfReader(str(path))
        first_page = len(writer.pages)
        writer.append(reader)
        if tree is not None:
            tree.graft(reader, writer.pages[first_page:], prefix=f"p{number}-")
    if tree is not None:
        tree.finish()
    tmp = pdf_path.with_name(pdf_path.name + ".part")
    with open(tmp, "wb") as out:
        writer.write(out)
    os.replace(tmp, pdf_path)


def _number_tree(node) -> list[tuple[int, Any]]:
    """A number tree's (key, value) pairs, from ``/Nums`` and ``/Kids`` alike."""
    node = node.get_object()
    nums = node.get("/Nums", [])
    pairs = [(int(nums[i]), nums[i + 1]) for i in range(0, len(nums), 2)]
    for kid in node.get("/Kids", []):
        pairs += _number_tree(kid)
    return pairs


class _StructTree:
    """The joined file's structure tree, growing by one part at a time."""

    def __init__(self, writer, root, document, nums: list[tuple[int, Any]]):
        self.writer, self.root, self.document, self.nums = writer, root, document, nums

    @classmethod
    def of(cls, writer) -> _StructTree | None:
        root = writer.root_object.get("/StructTreeRoot")
        if root is None:
            return None
        root = root.get_object()
        kids = root.get("/K")
        document = kids[0].get_object() if isinstance(kids, list) and len(kids) == 1 else None
        if document is None or document.get("/S") != "/Document":
            return None  # not WeasyPrint's shape (one /Document element): left as the first part made it
        return cls(writer, root, document, _number_tree(root["/ParentTree"]))

    def graft(self, reader, pages: Sequence, *, prefix: str) -> None:
        """Copy ``reader``'s structure elements, which mark the content of ``pages`` (its pages, joined)."""
        from pypdf.generic import NumberObject

        part_root = reader.root_object.get("/StructTreeRoot")
        if part_root is None:
            return  # an untagged part: its content stays unreachable from the tree
        part_root = part_root.get_object()
        copier = _Copier(self.writer, reader, pages, prefix, self.document.indirect_reference)
        offset = max((key for key, _ in self.nums), default=-1) + 1
        for key, value in _number_tree(part_root["/ParentTree"]):
            self.nums.append((key + offset, copier.value(value)))
        for old, new in zip(reader.pages, pages):
            if "/StructParents" in old:
                new[_name("/StructParents")] = NumberObject(int(old["/StructParents"]) + offset)
        for annotation, key in copier.annotations:
            annotation[_name("/StructParent")] = NumberObject(key + offset)
        for document in part_root["/K"]:
            kids = document.get_object().get("/K", [])
            for kid in kids if isinstance(kids, list) else [kids]:
                self.document["/K"].append(copier.element(kid))

    def finish(self) -> None:
        """Write the renumbered parent tree (one flat ``/Nums``, as WeasyPrint writes it)."""
        from pypdf.generic import ArrayObject, DictionaryObject, NumberObject

        nums = ArrayObject()
        for key, value in sorted(self.nums, key=lambda pair: pair[0]):
            nums += [NumberObject(key), value]
        self.root[_name("/ParentTree")] = self.writer._add_object(DictionaryObject({_name("/Nums"): nums}))
        self.root[_name("/ParentTreeNextKey")] = NumberObject(max((k for k, _ in self.nums), default=-1) + 1)


def _annotations(page) -> list:
    annots = page.get("/Annots")
    return list(annots.get_object()) if annots is not None else []


def _indirect_annotations(writer, page) -> list:
    """The page's annotations, each made an indirect object: a structure element can only point to those.

    (pypdf's append rebuilds link annotations as direct dictionaries in the page's /Annots.)
    """
    from pypdf.generic import IndirectObject

    annots = page.get("/Annots")
    if annots is None:
        return []
    annots = annots.get_object()
    for i, item in enumerate(annots):
        if not isinstance(item, IndirectObject):
            annots[i] = writer._add_object(item)
    return list(annots)


def _name(key: str):
    from pypdf.generic import NameObject

    return NameObject(key)


class _Copier:
    """Copies one part's structure elements into the joined file, each element once."""

    def __init__(self, writer, reader, pages: Sequence, prefix: str, document_ref):
        self.writer, self.prefix, self.document_ref = writer, prefix, document_ref
        self.pages = {old.indirect_reference.idnum: new.indirect_reference for old, new in zip(reader.pages, pages)}
        self.annots: dict[int, Any] = {}  # the part's annotation idnum -> its joined copy (same page, same /Rect)
        self.annotations: list[tuple[Any, int]] = []  # joined annotation, its key in the part's parent tree
        for old, new in zip(reader.pages, pages):
            joined = [a.get_object() for a in _indirect_annotations(writer, new)]
            for ref in _annotations(old):
                annotation = ref.get_object()
                match = next((a for a in joined if a.get("/Rect") == annotation.get("/Rect")), None)
                if match is not None:
                    self.annots[ref.idnum] = match
                    if "/StructParent" in annotation:
                        self.annotations.append((match, int(annotation["/StructParent"])))
        self.copied: dict[int, Any] = {}  # the part's object idnum -> its copy's reference

    def value(self, value):
        """A parent-tree value: an element, or an array of elements (a page's MCIDs, in order)."""
        from pypdf.generic import ArrayObject

        target = value.get_object()
        if isinstance(target, list):
            return ArrayObject(self.element(ref) for ref in target)
        return self.element(value)

    def element(self, ref):
        """The copy of the element (or /OBJR, /MCR) ``ref``, made on first sight; its parent is copied too."""
        from pypdf.generic import IndirectObject

        if not isinstance(ref, IndirectObject):
            target = ref.get_object() if ref is not None else None
            return self._copy(target) if isinstance(target, dict) else ref  # an inline dict, or a null
        if ref.idnum not in self.copied:
            new_ref = self.writer._add_object(self._copy({}))
            self.copied[ref.idnum] = new_ref  # before the kids and parent: they point back here
            new_ref.get_object().update(self._copy(ref.get_object()))
        return self.copied[ref.idnum]

    def _copy(self, old: dict):
        from pypdf.generic import ArrayObject, DictionaryObject, NullObject, NumberObject, TextStringObject

        new = DictionaryObject()
        for key, item in old.items():
            if key == "/P":
                parent = item.get_object()
                new[_name(key)] = self.document_ref if parent.get("/S") in ("/Document", None) else self.element(item)
            elif key in ("/Pg", "/Obj"):
                mapped = self.pages.get(item.idnum) if key == "/Pg" else self.annots.get(item.idnum)
                mapped = mapped.indirect_reference if key == "/Obj" and mapped is not None else mapped
                new[_name(key)] = mapped if mapped is not None else NullObject()
            elif key == "/K":
                kids = item.get_object()
                if isinstance(kids, list):
                    new[_name(key)] = ArrayObject(
                        NumberObject(int(k)) if isinstance(k, int) else self.element(k) for k in kids
                    )
                else:
                    new[_name(key)] = NumberObject(int(kids)) if isinstance(kids, int) else self.element(item)
            elif key == "/ID":
                new[_name(key)] = TextStringObject(self.prefix + str(item))
            elif key == "/A":
                new[_name(key)] = self._attributes(item)
            else:
                new[_name(key)] = item.clone(self.writer) if hasattr(item, "clone") else item
        return new

    def _attributes(self, attributes):
        """Attribute dictionaries (or an array of them), ``/Headers`` IDs prefixed like ``/ID``."""
        from pypdf.generic import ArrayObject, DictionaryObject, TextStringObject

        attributes = attributes.get_object()
        if isinstance(attributes, list):
            return ArrayObject(self._attributes(a) for a in attributes)
        new = DictionaryObject()
        for key, item in attributes.items():
            if key == "/Headers":
                new[_name(key)] = ArrayObject(TextStringObject(self.prefix + str(h)) for h in item.get_object())
            else:
                new[_name(key)] = item.clone(self.writer) if hasattr(item, "clone") else item
        return new
