"""The spec's ``locale``: numbers, dates and fixed words of real PDFs (WeasyPrint, pdftotext, pypdf).

English, the default, must come out exactly as before locales; German and French from the
shipped catalogs; a long table laid out in parallel chunks keeps a translated "Page i of N".
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract
from pypdf import PdfReader

from tests.conftest import ROOT, pdf_text
from tests.helpers import table_record
from toolkit.errors import SpecError
from toolkit.inputs.spec import ReportSpec, TableOptions, load_spec
from toolkit.notebook import records as rec
from toolkit.render import locale as report_locale
from toolkit.render import longtable
from toolkit.render.html import COLUMN_GROUP, ReportContext, render_html
from toolkit.render.locale import PAGE_FOOTER, ReportLocale, translations
from toolkit.render.pdf import write_pdf

GENERATED = dt.datetime(2026, 11, 22, 6, 5, tzinfo=dt.timezone.utc)


_table = table_record


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"events": [1234 + i * 1000 for i in range(rows)], "share": [1234.5 + i for i in range(rows)]},
        index=pd.RangeIndex(rows, name="row"),
    )


def _html(templates: Path, locale: str, records: dict, *, long_table_rows: int | None = None, tables=None) -> str:
    spec = ReportSpec(name="loc", title="Locale Report", notebook=Path("loc.ipynb"), locale=locale,
                      header_parameters=["week"], tables=tables or {})
    context = ReportContext(spec=spec, params={"week": "2026-11-16", "rate": 0.25}, run_id="run-1", generated=GENERATED)
    return render_html(context, records, {}, templates, long_table_rows=long_table_rows)


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)  # \s takes no-break and narrow no-break spaces too


# --- Numbers and dates, no layout ----------------------------------------------------------


def test_english_numbers_are_exactly_the_old_formatting():
    english = ReportLocale.of()
    for x in (0.0, 1234.5, -1234.5, 2.675, 0.125, 1e15, -0.004, math.inf, 123456789.987):
        assert english.decimal(x) == f"{x:,.2f}"  # same rounding: Python's, not Decimal's
        assert english.number(x, 1) == f"{x:,.1f}"
    for n in (0, 999, 1000, -70_000, 12_345_678_901):
        assert english.integer(n) == english.number(n) == f"{n:,}"
    assert english.number(2.5) == "2.50" and english.number(True) == "True" and english.number("n/a") == "n/a"


def test_german_and_french_separators_come_from_babel():
    german, french = ReportLocale.of("de_DE"), ReportLocale.of("fr_FR")
    assert german.decimal(1234.5) == "1.234,50" and german.integer(-70_000) == "-70.000"
    assert german.number(1_234_567.891) == "1.234.567,89"
    assert french.decimal(1234.5) == "1\u202f234,50"  # CLDR's French group: a narrow no-break space
    assert french.integer(1_000_000) == "1\u202f000\u202f000"


def test_dates_iso_in_english_babel_medium_elsewhere():
    day = dt.date(2026, 11, 16)
    assert ReportLocale.of().date(day) == "2026-11-16"
    assert ReportLocale.of().datetime(GENERATED, "UTC") == "2026-11-22 06:05 UTC"
    assert ReportLocale.of("de_DE").date(day) == "16.11.2026"
    assert ReportLocale.of("de_DE").datetime(GENERATED, "UTC") == "22.11.2026 06:05 UTC"
    assert ReportLocale.of("fr_FR").date(day) == "16\u00a0nov.\u00a02026"  # kept on one line
    shown = ReportLocale.of("de_DE").shown_value
    assert shown(["2026-11-16", "web"]) == "16.11.2026, web" and shown(0.25) == "0,25" and shown(5000) == "5000"
    assert shown("2026-11-16T08:30:00") == "16.11.2026 08:30" and shown("2026-11-16 is a Monday") == "2026-11-16 is a Monday"


def test_footer_becomes_css_counters_and_escapes_what_could_break_out():
    assert ReportLocale.of("de_DE").page_footer_css() == '"Seite " counter(page) " von " counter(pages)'
    assert ReportLocale.of("fr").page_footer_css() == '"Page " counter(page) " sur " counter(pages)'
    assert report_locale._css_string('a"}</style>\\') == '"a\\22 \\7d \\3c \\2f style\\3e \\5c "'


# --- The spec key ---------------------------------------------------------------------------


def test_spec_locale_default_normalised_and_unknown_refused(tmp_path):
    spec_file = tmp_path / "weekly.yml"
    spec_file.write_text("title: Weekly\n")
    assert load_spec(spec_file).locale == "en"
    spec_file.write_text("title: Weekly\nlocale: de-de\n")
    spec = load_spec(spec_file)
    assert spec.locale == "de_DE" and spec.model_dump(mode="json")["locale"] == "de_DE"  # as run.json keeps it
    spec_file.write_text("title: Weekly\nlocale: xx_YY\n")
    with pytest.raises(SpecError) as refused:
        load_spec(spec_file)
    assert refused.value.key == "locale" and "unknown locale 'xx_YY'" in str(refused.value)
    assert str(refused.value).startswith(f"{spec_file}: locale: ")


def test_a_locale_without_catalog_gets_its_numbers_and_english_words_with_a_warning(caplog):
    translations.cache_clear()
    records = {"events": _table("events", _frame(5), "Events")}
    with caplog.at_level(logging.WARNING, logger="toolkit.render.locale"):
        html = _html(ROOT / "templates", "es_ES", records, tables={"events": TableOptions(max_rows=2)})
    assert "no nbpress translations for locale es_ES" in caplog.text
    assert ">1.234,5<" in html and "16\u00a0nov\u00a02026" in html  # Spanish numbers (the notebook's precision) and dates
    assert "Showing 2 of 5 rows" in html and "Generated 22\u00a0nov\u00a02026 6:05 UTC · run run-1" in html


def test_every_catalog_translates_every_fixed_word_with_the_same_placeholders():
    wanted = {PAGE_FOOTER, COLUMN_GROUP}  # the toolkit's own fixed words, then the templates'
    for template in [*(ROOT / "toolkit" / "templates").glob("*.j2"), *(ROOT / "templates").glob("*.j2")]:
        with template.open("rb") as source:
            found = babel_extract(source, ("gettext", "ngettext", "_"), [], {"extensions": "jinja2.ext.i18n"})
            wanted |= {message for _, _, message, _ in found}
    placeholders = re.compile(r"%\((\w+)\)s")
    for lang in ("en", "de", "fr"):
        with (report_locale.CATALOGS / lang / "LC_MESSAGES" / "nbpress.po").open("rb") as po:
            catalog = read_po(po)
        messages = {m.id: m.string for m in catalog if m.id}
        assert set(messages) == wanted, lang
        for msgid, msgstr in messages.items():
            assert msgstr and sorted(placeholders.findall(msgstr)) == sorted(placeholders.findall(msgid)), (lang, msgid)


# --- Real PDFs ------------------------------------------------------------------------------

EXPECTED = {  # locale: (number, shown date, "Generated ..." line, footer of page 1 of 2, cut-table note)
    "en": ("1,234.50", "2026-11-16", "Generated 2026-11-22 06:05 UTC · run run-1", "Page 1 of 2",
           "Showing 50 of 60 rows; the full table is attached to this PDF as events.csv."),
    "de_DE": ("1.234,50", "16.11.2026", "Erstellt 22.11.2026 06:05 UTC · Lauf run-1", "Seite 1 von 2",
              "50 von 60 Zeilen gezeigt; die vollständige Tabelle ist diesem PDF als events.csv angehängt."),
    "fr_FR": ("1 234,50", "16 nov. 2026", "Généré le 22 nov. 2026 06:05 UTC · exécution run-1", "Page 1 sur 2",
              "50 lignes affichées sur 60 ; le tableau complet est joint à ce PDF sous le nom events.csv."),
}


@pytest.mark.parametrize("locale", list(EXPECTED))
def test_pdf_numbers_dates_and_fixed_words_in_the_locale(locale, tmp_path):
    number, date, generated, footer, note = EXPECTED[locale]
    records = {"events": _table("events", _frame(60), "Events"), "total": rec.Metric("total", 1234.5, label="Total")}
    html = _html(ROOT / "templates", locale, records, tables={"events": TableOptions(max_rows=50)})
    pdf = tmp_path / "report.pdf"
    result = write_pdf(html, pdf, base_dir=tmp_path, templates_dir=ROOT / "templates")

    assert result.pages == 2, "the table of 50 rows should fill two pages"
    pages = [_flat(pdf_text(pdf, page=n)) for n in (1, 2)]
    assert number in pages[0] and f"week {date}" in pages[0] and f"week: {date}" in pages[0]  # body and header
    assert generated in pages[0] and generated in pages[1]
    assert footer in pages[0] and footer.replace("1", "2", 1) in pages[1]
    assert note in pages[1]
    if locale == "fr_FR":  # pdftotext shows U+202F as a space: the PDF's own text has it
        assert "1\u202f234,50" in PdfReader(pdf).pages[0].extract_text()


def test_long_table_in_chunks_says_seite_i_von_n_on_every_page(tmp_path):
    rows = 200
    html = _html(ROOT / "templates", "de_DE", {"events": _table("events", _frame(rows), "Ereignisse")}, long_table_rows=50)
    assert longtable.BEGIN in html and "counter(pages)" in html
    pdf = tmp_path / "report.pdf"
    done = longtable.write_pdf(html, pdf, base_dir=tmp_path, templates_dir=ROOT / "templates", chunk_pages=2, workers=2)

    assert done is not None, "the chunked layout was not used"
    pages = [_flat(pdf_text(pdf, page=n)) for n in range(1, done[0] + 1)]
    assert len(pages) >= 4  # several chunks of 2 pages
    for number, page in enumerate(pages, 1):
        assert f"Seite {number} von {len(pages)}" in page, f"page {number}: wrong footer: {page[-80:]!r}"
    last = 1234 + (rows - 1) * 1000
    assert f"{last:,}".replace(",", ".") in pages[-1]  # German grouping in the chunks' rows too


def test_the_locale_names_the_documents_language_and_its_column_groups(tmp_path):
    wide = pd.DataFrame({f"c{i}": [1000 + i] for i in range(80)})
    html = _html(ROOT / "templates", "de_DE", {"wide": _table("wide", wide, "Breit")})
    assert '<html lang="de-DE">' in html
    assert "Spalten 1–" in html and " von 80" in html and "Columns " not in html
    explicit = ReportSpec(name="loc", title="t", notebook=Path("loc.ipynb"), locale="de_DE", lang="de-CH")
    assert explicit.lang == "de-CH"  # an explicit lang wins
