"""Render: records -> HTML (Jinja) -> PDF (WeasyPrint), and reading a PDF back.

    html         the report's HTML from its records and template
    longtable    long tables laid out in parallel page-aligned chunks
    inspect_pdf  a report PDF's metadata and provenance (``nbpress inspect``)

Nothing is imported here.
"""
