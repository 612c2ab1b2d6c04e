"""HTML -> PDF with WeasyPrint, written atomically (temporary file + rename).

HTML with long tables marked by :func:`toolkit.render.html.render_html` goes to
:mod:`.longtable` (laid out in parallel chunks); anything else, or marked HTML that cannot be
cut safely, is laid out in one piece here. Every layout fetches through the fenced fetcher
(:mod:`.fetcher`): refused URLs are logged and returned.

PDFs are tagged (a structure tree in reading order, table header cells, figures' alternative
text, the document's language) unless ``tagged=False``; ``variant`` asks WeasyPrint for one of
the spec's :data:`~toolkit.inputs.spec.PDF_VARIANTS` (PDF/A-3 for archives, PDF/UA-1 for
accessibility).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RenderError
from . import longtable
from .fetcher import FencedFetcher
from .pdf_options import CSV_RELATIONSHIP, pdf_options
from .template_folders import static_folders

__all__ = ["PdfResult", "write_pdf"]

log = logging.getLogger(__name__)


@dataclass
class PdfResult:
    pages: int
    refused: list[str] = field(default_factory=list)


def write_pdf(
    html: str,
    pdf_path: Path,
    *,
    base_dir: Path,
    templates_dir: Path,
    attachments: list[tuple[str, bytes]] = (),
    workers: int | None = None,
    tagged: bool = True,
    variant: str | None = None,
) -> PdfResult:
    """Lay out ``html`` and write the PDF atomically (temp file + rename).

    HTML with long tables marked by :func:`~toolkit.render.html.render_html` goes to :mod:`.longtable`
    (parallel chunks on ``workers`` processes, default one per core); anything else, or
    marked HTML that cannot be cut safely, is laid out in one piece here.
    """
    options = pdf_options(tagged=tagged, variant=variant)
    if longtable.BEGIN in html:
        done = longtable.write_pdf(
            html, pdf_path, base_dir=base_dir, templates_dir=templates_dir, attachments=attachments, workers=workers,
            options=options,
        )
        if done is not None:
            pages, refused = done
            for url in refused:
                log.warning("refused resource %s", url)
            return PdfResult(pages=pages, refused=refused)

    import weasyprint  # ~0.4 s: loaded by the first PDF, not by importing the pipeline

    fetcher = FencedFetcher([base_dir], static_folders(templates_dir))
    files = [weasyprint.Attachment(string=data, name=name, url_fetcher=fetcher, relationship=CSV_RELATIONSHIP)
             for name, data in attachments]
    try:
        base_url = base_dir.resolve().as_uri() + "/"
        document = weasyprint.HTML(string=html, base_url=base_url, url_fetcher=fetcher).render(**options)
        tmp = pdf_path.with_name(pdf_path.name + ".part")
        document.write_pdf(tmp, custom_metadata=True, attachments=files, **options)
    except Exception as exc:  # WeasyPrint raises many types; the run records which
        raise RenderError(f"PDF rendering failed ({type(exc).__name__}: {exc})") from exc
    os.replace(tmp, pdf_path)
    for url in fetcher.refused:
        log.warning("refused resource %s", url)
    return PdfResult(pages=len(document.pages), refused=list(fetcher.refused))
