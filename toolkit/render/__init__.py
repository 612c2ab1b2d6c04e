"""Render: records -> HTML (Jinja) -> PDF (WeasyPrint), and reading a PDF back.

    html              the report's HTML from its records and template
    cells             a table's cells as shown (the notebook's precision, formats) and which are numbers
    template_folders  the project's templates/ over the built-in ones (toolkit/templates)
    shown             which parameters the reader sees, under which labels (``show_parameters``)
    locale            the spec's ``locale``: numbers, dates and the templates' fixed words (Babel, gettext)

    glyphs            characters no font can draw, and where they are (``missing_glyphs``)
    pdf               HTML -> PDF, in one piece or through longtable
    pdf_options       WeasyPrint's options every layout shares: tagging, the PDF variant
    fetcher           the fenced URL fetcher every layout uses (static folders overlaid, run folder)
    longtable         long tables laid out in parallel page-aligned chunks, then joined
    longtable_split   ... the HTML side: the report cut at its long tables, each part's document
    longtable_layout  ... the layout side: WeasyPrint layouts on this process and spawned workers
    pdf_join          ... the parts joined into one PDF with one structure tree (pikepdf)
    inspect_pdf       a report PDF's metadata and provenance (``nbpress inspect``)

Nothing is imported here: the long-table workers import only the layout side, not Jinja.
"""
