"""Tagged, archival and accessible PDFs: real WeasyPrint layouts read back with pypdf and pdfinfo.

No validator (veraPDF) runs here: it is not on PyPI, npm or Debian. The tests check what the
variants promise that can be read without one: the XMP identification (pdfaid, pdfuaid), the
embedded file's relationship, and a structure tree that reaches every page's content.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader
from pypdf.generic import IndirectObject

from tests.conftest import make_notebook
from tests.helpers import table_record
from toolkit.errors import RecordError, SpecError
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import PDF_VARIANTS, ReportSpec, find_report, load_spec
from toolkit.notebook import analyst_api
from toolkit.notebook import records as rec
from toolkit.render import longtable
from toolkit.render.html import ReportContext, render_html, write_assets
from toolkit.render.pdf import write_pdf
from toolkit.render.pdf_options import pdf_options
from toolkit.runs.pipeline import run_report

MARGIN_BOXES = 4  # report.css fills four page-margin boxes (running title, parameters, meta, page number)


# --- Reading a PDF's structure back -----------------------------------------------------------


class Structure:
    """A tagged PDF's structure tree, walked from the catalog's StructTreeRoot."""

    def __init__(self, path: Path):
        self.reader = reader = PdfReader(str(path))
        self.catalog = reader.trailer["/Root"]
        self.page_index = {page.indirect_reference.idnum: i for i, page in enumerate(reader.pages)}
        self.elements: list = []  # every struct element reachable from the root, in reading order
        self.marked: set[tuple[int, int]] = set()  # (page index, MCID) reachable from the root
        seen: set[int] = set()
        root = self.catalog["/StructTreeRoot"]
        for kid in root["/K"]:
            self._walk(kid, None, seen)

    def _walk(self, ref, page, seen) -> None:
        obj = ref.get_object()
        if isinstance(obj, int):
            self.marked.add((page, int(obj)))
            return
        if isinstance(ref, IndirectObject):
            assert ref.idnum not in seen, "an element is reached twice: the tree is not a tree"
            seen.add(ref.idnum)
        if "/Pg" in obj:
            page = self.page_index[obj.raw_get("/Pg").idnum]  # KeyError: a page the PDF does not have
        if obj.get("/Type") == "/MCR":
            self.marked.add((page, int(obj["/MCID"])))
            return
        if "/S" in obj:
            self.elements.append(obj)
        kids = obj.get("/K")
        if kids is not None:
            for kid in kids if isinstance(kids, list) else [kids]:
                self._walk(kid, page, seen)

    def tags(self, tag: str) -> list:
        return [e for e in self.elements if e["/S"] == tag]

    def page_mcids(self, index: int) -> list[int]:
        """MCIDs of the marked content drawn on page ``index``, in drawing order."""
        data = self.reader.pages[index].get_contents().get_data().decode("latin-1")
        return [int(n) for n in re.findall(r"/MCID\s+(\d+)", data)]

    def check_every_page_reached(self) -> None:
        """All of each page's content is reachable from the tree, but for the page-margin boxes.

        WeasyPrint maps the running header and footer (drawn last on a page) in the parent tree
        but leaves them out of the tree: they repeat on every page, like pagination artifacts.
        The parent tree must map each MCID to the element that holds it on that page.
        """
        parents = self.parent_tree()
        for index, page in enumerate(self.reader.pages):
            mcids = self.page_mcids(index)
            assert mcids, f"page {index + 1} has no marked content"
            unreached = [m for m in mcids if (index, m) not in self.marked]
            assert len(unreached) <= MARGIN_BOXES and unreached == mcids[len(mcids) - len(unreached):], (
                f"page {index + 1}: content {unreached} is not in the structure tree"
            )
            mapped = parents[int(page["/StructParents"])]
            for mcid in mcids:
                element = mapped[mcid].get_object()
                kids = element["/K"] if isinstance(element["/K"], list) else [element["/K"]]
                assert mcid in kids and self.page_index[element.raw_get("/Pg").idnum] == index

    def parent_tree(self) -> dict[int, object]:
        nums = self.catalog["/StructTreeRoot"]["/ParentTree"]["/Nums"]
        return {int(nums[i]): nums[i + 1].get_object() for i in range(0, len(nums), 2)}

    def xmp(self) -> str:
        return self.catalog["/Metadata"].get_object().get_data().decode("utf-8")


def pdfinfo(path: Path) -> str:
    return subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout


# --- Reports made in code ---------------------------------------------------------------------


_table = table_record


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"source": [("web", "api", "batch")[i % 3] for i in range(rows)], "events": [i * 7919 % 100_003 for i in range(rows)]},
        index=pd.Index([f"day-{i:04d}" for i in range(rows)], name="day"),
    )


def _figure(name: str, caption: str | None, alt: str | None = None) -> rec.Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [3, 1, 2])
    record = analyst_api.figure(name, fig, caption=caption, alt=alt)
    plt.close(fig)
    analyst_api._session.pop(name)  # the analyst API keeps a session of records: not needed here
    return record


def _render(project, tmp_path: Path, records: dict, *, lang: str = "en", variant: str | None = None,
            long_table_rows: int | None = None, attachments=()) -> Path:
    spec = ReportSpec(name="tagged", title="Tagged Report", notebook=Path("tagged.ipynb"), lang=lang, pdf_variant=variant)
    context = ReportContext(spec=spec, params={"week": "2026-11-16"}, run_id="run-1",
                            generated=dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc))
    figures = write_assets(records, tmp_path / "assets")
    html = render_html(context, records, figures, project.templates_dir, long_table_rows=long_table_rows)
    pdf = tmp_path / "report.pdf"
    write_pdf(html, pdf, base_dir=tmp_path, templates_dir=project.templates_dir, attachments=attachments, variant=variant)
    return pdf


# --- Tests ------------------------------------------------------------------------------------


def test_default_pdf_is_tagged_with_language_table_headers_and_figure_alt_text(project, tmp_path):
    records = {
        "trend": _figure("trend", "Events per day", alt="Events fall on Tuesday, then rise again"),
        "plain": _figure("plain", "Share per source"),
        "by_day": _table("by_day", _frame(6), "Events by day"),
    }
    pdf = _render(project, tmp_path, records, lang="de")
    assert re.search(r"^Tagged:\s+yes$", pdfinfo(pdf), re.M)
    tree = Structure(pdf)
    assert tree.catalog["/Lang"] == "de" and tree.catalog["/MarkInfo"]["/Marked"]
    assert [f.get("/Alt") for f in tree.tags("/Figure")] == ["Events fall on Tuesday, then rise again", "Share per source"]
    # One header row (the index name in its corner, then the columns), and a row header per row.
    assert len(tree.tags("/Table")) == 1 and len(tree.tags("/TR")) == 7
    headers = {str(th["/ID"]): th for th in tree.tags("/TH")}
    assert len(headers) == 3 + 6
    cells = tree.tags("/TD")
    assert len(cells) == 2 * 6
    for td in cells:  # each data cell is announced with its column's header and its row's header
        ids = [str(h) for h in td["/A"]["/Headers"]]
        assert len(ids) == 2 and all(i in headers for i in ids)
    tree.check_every_page_reached()


def test_tagging_can_be_turned_off(project, tmp_path):
    html = f'<html lang="en"><body><p>{"text " * 20}</p></body></html>'
    pdf = tmp_path / "plain.pdf"
    write_pdf(html, pdf, base_dir=tmp_path, templates_dir=project.templates_dir, tagged=False)
    assert re.search(r"^Tagged:\s+no$", pdfinfo(pdf), re.M)
    assert "/StructTreeRoot" not in PdfReader(str(pdf)).trailer["/Root"]


def test_pdf_ua_1_is_identified_in_xmp_and_tagged(project, tmp_path):
    pdf = _render(project, tmp_path, {"by_day": _table("by_day", _frame(3), "Events by day")}, variant="pdf/ua-1")
    tree = Structure(pdf)
    xmp = tree.xmp()
    assert re.search(r"pdfuaid:part(>|=\")1", xmp), xmp
    assert "Tagged Report" in xmp  # dc:title, which PDF/UA asks viewers to show (DisplayDocTitle)
    assert tree.catalog["/ViewerPreferences"]["/DisplayDocTitle"]
    assert tree.tags("/TH") and tree.catalog["/Lang"] == "en"
    tree.check_every_page_reached()


def test_pdf_a_3b_run_attaches_the_cut_table_as_data(project):
    make_notebook(
        project.notebooks_dir / "archive.ipynb",
        "rows: int = 30",
        """
        import pandas as pd, toolkit as tk
        tk.table("events", pd.DataFrame({"events": range(rows)}, index=pd.RangeIndex(rows, name="row")), caption="Events")
        """,
    )
    (project.notebooks_dir / "archive.yml").write_text("lang: de-CH\npdf_variant: PDF/A-3b\ntables:\n  events: {max_rows: 5}\n")
    spec = find_report("archive", project.notebooks_dir)
    assert spec.pdf_variant == "pdf/a-3b"
    run_dir, record = run_report(prepare(spec, {}), project)
    assert record.status == "succeeded", record.error
    tree = Structure(run_dir / "report.pdf")
    xmp = tree.xmp()
    assert re.search(r"pdfaid:part(>|=\")3", xmp) and re.search(r"pdfaid:conformance(>|=\")B", xmp), xmp
    assert tree.catalog["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    files = tree.catalog["/Names"]["/EmbeddedFiles"]["/Names"]
    spec_of = {str(files[i]): files[i + 1].get_object() for i in range(0, len(files), 2)}
    assert list(spec_of) == ["events.csv"]
    assert spec_of["events.csv"]["/AFRelationship"] == "/Data"
    assert spec_of["events.csv"].indirect_reference in list(tree.catalog["/AF"])
    csv = spec_of["events.csv"]["/EF"]["/F"].get_object().get_data().decode()
    assert csv.splitlines()[-1] == "29,29"  # the whole table, not the 5 rows shown
    assert tree.catalog["/Lang"] == "de-CH" and len(tree.tags("/TD")) == 5
    tree.check_every_page_reached()


def test_long_table_parts_join_into_one_tagged_pdf(project, tmp_path, monkeypatch):
    """Parts laid out apart (a chunk per page here) are joined with one structure tree."""
    monkeypatch.setattr(longtable, "CHUNK_PAGES", 1)
    records = {
        "intro": rec.Text("intro", "Before the table, a [link](https://example.com/before)."),
        "days": _table("days", _frame(150), "Every day"),
        "outro": rec.Text("outro", "After the table, a [link](https://example.com/after)."),
        "trend": _figure("trend", "Events per day", alt="A line that falls, then rises"),
    }
    pdf = _render(project, tmp_path, records, lang="fr", long_table_rows=40, variant="pdf/a-3b",
                  attachments=[("days.csv", b"day,source,events\n")])
    tree = Structure(pdf)
    assert re.search(r"^Tagged:\s+yes$", pdfinfo(pdf), re.M)
    # The first part's catalog is the joined file's: PDF/A identification, output intent, attachment.
    assert re.search(r"pdfaid:part(>|=\")3", tree.xmp()) and tree.catalog["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    assert list(tree.reader.attachments) == ["days.csv"] and tree.catalog["/AF"][0]["/AFRelationship"] == "/Data"
    pages = len(tree.reader.pages)
    assert pages >= 4  # the first flow, several chunks, the tail with the rest
    assert tree.catalog["/Lang"] == "fr"
    (document,) = [tree.catalog["/StructTreeRoot"]["/K"][0].get_object()]
    assert document["/S"] == "/Document" and len(tree.catalog["/StructTreeRoot"]["/K"]) == 1
    # Reading order runs through every part: each page's table, then the text and figure after it.
    headings = [e for e in tree.elements if e["/S"] in ("/H1", "/H2", "/Figure", "/Link")]
    assert [h["/S"] for h in headings] == ["/H1", "/Link", "/H2", "/Link", "/Figure"]
    assert headings[-1]["/Alt"] == "A line that falls, then rises"
    rows = [tr for tr in tree.tags("/TR") if any(k.get_object()["/S"] == "/TD" for k in tr["/K"])]
    assert len(rows) == 150 and len(tree.tags("/TD")) == 2 * 150
    # Header IDs stay unique across the parts, and every data cell's headers exist.
    ids = [str(th["/ID"]) for th in tree.tags("/TH")]
    assert len(ids) == len(set(ids))
    assert all(str(h) in set(ids) for td in tree.tags("/TD") for h in td["/A"]["/Headers"])
    # Parent tree keys: one per page and per link, each used once.
    keys = [int(p["/StructParents"]) for p in tree.reader.pages]
    links = [a for p in tree.reader.pages for a in (p.raw_get("/Annots") if "/Annots" in p else []) if a.get_object()["/Subtype"] == "/Link"]
    keys += [int(a.get_object()["/StructParent"]) for a in links]
    assert len(links) == 2 and sorted(keys) == list(range(len(keys)))
    assert int(tree.catalog["/StructTreeRoot"]["/ParentTreeNextKey"]) == len(keys)
    parents = tree.parent_tree()
    for link in links:  # the link's element holds the annotation itself
        element = parents[int(link.get_object()["/StructParent"])]
        assert element["/S"] == "/Link"
        objects = [k.get_object().raw_get("/Obj") for k in element["/K"] if not isinstance(k.get_object(), int)]
        assert [o.idnum for o in objects] == [link.idnum]
    tree.check_every_page_reached()


def test_spec_validates_lang_and_pdf_variant(tmp_path):
    path = tmp_path / "weekly.yml"
    path.write_text("pdf_variant: pdf/a-1b\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert err.value.key == "pdf_variant" and all(v in str(err.value) for v in PDF_VARIANTS)
    path.write_text("lang: german!\n")
    with pytest.raises(SpecError, match="lang: .*not a language tag"):
        load_spec(path)
    path.write_text("{}\n")
    spec = load_spec(path)
    assert (spec.lang, spec.pdf_variant) == ("en", None)
    assert pdf_options(variant=spec.pdf_variant) == {"pdf_tags": True, "pdf_variant": None}


def test_figure_alt_text_travels_in_the_record():
    record = _figure("chart", None, alt="  Three points  ")
    assert rec.decode(rec.encode(record)).alt == "Three points"
    assert rec.decode(rec.encode(_figure("bare", "A caption"))).alt is None
    with pytest.raises(RecordError, match="alt"):
        _figure("empty", None, alt=" ")


def test_joining_the_same_part_twice_keeps_header_ids_unique(project, tmp_path):
    """WeasyPrint numbers header IDs per file: two parts laid out alike name their headers alike."""
    from toolkit.render.pdf_join import join_parts

    part = _render(project, tmp_path, {"by_day": _table("by_day", _frame(4), "Events by day")})
    joined = tmp_path / "joined.pdf"
    join_parts([part, part], joined)
    tree = Structure(joined)
    ids = [str(th["/ID"]) for th in tree.tags("/TH")]
    assert len(ids) == 2 * (3 + 4) and len(set(ids)) == len(ids)
    for td in tree.tags("/TD"):  # each data cell still names headers of its own table
        (table,) = [e for e in tree.tags("/Table") if _contains(e, td)]
        assert {str(h) for h in td["/A"]["/Headers"]} <= {str(th["/ID"]) for th in tree.tags("/TH") if _contains(table, th)}
    assert len(tree.reader.pages) == 2 and len(tree.tags("/H1")) == 2
    tree.check_every_page_reached()


def _contains(ancestor, element) -> bool:
    """Whether ``element`` is ``ancestor`` or below it (following /P up to the root)."""
    target = ancestor.indirect_reference.idnum
    while element is not None:
        if element.indirect_reference.idnum == target:
            return True
        parent = element.raw_get("/P") if "/P" in element else None
        element = parent.get_object() if parent is not None else None
    return False
