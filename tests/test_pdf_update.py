"""Objects appended to a written PDF as an incremental update: read back by qpdf and poppler."""

from __future__ import annotations

import re
import subprocess

import pikepdf
import pytest

from toolkit.errors import RenderError
from toolkit.render.pdf_update import PER_STREAM, Update, ref, string


def _written(tmp_path):
    path = tmp_path / "base.pdf"
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 100))
    pdf.Root.Lang = pikepdf.String("en")
    pdf.save(path, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    return path


def test_new_objects_and_a_new_catalog_are_read_back(tmp_path):
    path = _written(tmp_path)
    with pikepdf.open(path) as pdf:
        root, catalog = pdf.Root.objgen[0], pdf.Root.unparse(resolved=True)
        trailer = {key[1:]: pdf.trailer[key].unparse() for key in ("/Root", "/ID") if key in pdf.trailer}
        size = int(pdf.trailer.Size)
    update = Update(path, size, trailer)
    first = update.new()
    numbers = [update.new() for _ in range(2 * PER_STREAM + 5)]  # three object streams
    update.put(first, b"[" + b" ".join(ref(n) for n in numbers) + b"]")
    texts = ["a (b) \\ c", "Zürich", "行"]
    for i, number in enumerate(numbers):
        update.put(number, b"<</N %d/T %s>>" % (i, string(texts[i % 3])))
    update.put(root, catalog[: catalog.rindex(b">>")] + b"/Things " + ref(first) + b">>")
    update.close()

    with pikepdf.open(path) as pdf:
        assert pdf.check_pdf_syntax() == []
        things = pdf.Root.Things
        assert [int(d.N) for d in things] == list(range(len(numbers)))
        assert [str(d.T) for d in things[:3]] == texts
        assert str(pdf.Root.Lang) == "en" and len(pdf.pages) == 1  # the file's own objects are still there
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    assert re.search(r"^Pages:\s+1$", info.stdout, re.M) and not info.stderr


def test_a_file_without_startxref_is_refused(tmp_path):
    path = tmp_path / "cut.pdf"
    path.write_bytes(_written(tmp_path).read_bytes()[:-40])
    with pytest.raises(RenderError, match="no startxref"):
        Update(path, 10, {})


def test_a_failing_update_leaves_no_file_behind(tmp_path):
    from toolkit.render.pdf_join import join_parts

    parts = [_written(tmp_path).rename(tmp_path / f"part-{i}.pdf") for i in range(2)]

    def after(path):
        assert path.exists()
        raise RenderError("PDF rendering failed (the update)")

    with pytest.raises(RenderError, match="the update"):
        join_parts(parts, tmp_path / "report.pdf", after=after)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-0.pdf", "part-1.pdf"]
    join_parts(parts, tmp_path / "report.pdf")
    with pikepdf.open(tmp_path / "report.pdf") as pdf:
        assert len(pdf.pages) == 2
