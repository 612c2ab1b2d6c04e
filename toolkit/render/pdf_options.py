"""The WeasyPrint options every layout of a report shares: tagging and the PDF variant.

One place for them, so a long table's parts (:mod:`.longtable_layout`, in worker processes) are
laid out and written exactly as a report in one piece (:mod:`.pdf`).
"""

from __future__ import annotations

__all__ = ["CSV_RELATIONSHIP", "pdf_options"]

# PDF/A-3 names how an attached file relates to the document: a CSV is the data of a table
# the PDF shows cut at max_rows.
CSV_RELATIONSHIP = "Data"


def pdf_options(*, tagged: bool = True, variant: str | None = None) -> dict[str, object]:
    """Options for WeasyPrint's ``render()`` and ``write_pdf()``.

    ``tagged``: a structure tree (reading order, table headers, alternative text, language).
    ``variant``: one of :data:`toolkit.inputs.spec.PDF_VARIANTS`, or None for a plain PDF;
    PDF/UA and PDF/A-3a are tagged whatever ``tagged`` says.
    """
    return {"pdf_tags": tagged, "pdf_variant": variant}
