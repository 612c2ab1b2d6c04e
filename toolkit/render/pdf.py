"""HTML -> PDF with WeasyPrint, written atomically (temporary file + rename).

HTML with long tables marked by :func:`toolkit.render.html.render_html` goes to
:mod:`.longtable` (laid out in parallel chunks); anything else, or marked HTML that cannot be
cut safely, is laid out in one piece here. Every layout fetches through the fenced fetcher
(:mod:`.fetcher`): refused URLs are logged and returned.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RenderError
from . import longtable
from .fetcher import FencedFetcher

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
) -> PdfResult:
    """Lay out ``html`` and write the PDF atomically (temp file + rename).

    HTML with long tables marked by :func:`~toolkit.render.html.render_html` goes to :mod:`.longtable`
    (parallel chunks on ``workers`` processes, default one per core); anything else, or
    marked HTML that cannot be cut safely, is laid out in one piece here.
    """
    if longtable.BEGIN in html:
        done = longtable.write_pdf(
            html, pdf_path, base_dir=base_dir, templates_dir=templates_dir, attachments=attachments, workers=workers
        )
        if done is not None:
            pages, refused = done
            for url in refused:
                log.warning("refused resource %s", url)
            return PdfResult(pages=pages, refused=refused)

    import weasyprint  # ~0.4 s: loaded by the first PDF, not by importing the pipeline

    fetcher = FencedFetcher([templates_dir / "static", base_dir])
    files = [weasyprint.Attachment(string=data, name=name, url_fetcher=fetcher) for name, data in attachments]
    try:
        document = weasyprint.HTML(string=html, base_url=base_dir.resolve().as_uri() + "/", url_fetcher=fetcher).render()
        tmp = pdf_path.with_name(pdf_path.name + ".part")
        document.write_pdf(tmp, custom_metadata=True, attachments=files)
    except Exception as exc:  # WeasyPrint raises many types; the run records which
        raise RenderError(f"PDF rendering failed ({type(exc).__name__}: {exc})") from exc
    os.replace(tmp, pdf_path)
    for url in fetcher.refused:
        log.warning("refused resource %s", url)
    return PdfResult(pages=len(document.pages), refused=list(fetcher.refused))
