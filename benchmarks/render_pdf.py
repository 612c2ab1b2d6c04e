"""nbpress's renderer as a command, HTML in and PDF out, to measure like the ``weasyprint`` CLI.

    python -m benchmarks.render_pdf REPORT.html OUT.pdf --base-dir RUN_DIR --templates TEMPLATES

Calls :func:`toolkit.render.pdf.write_pdf` exactly as ``nbpress run`` does: marked long tables go
to the parallel chunked layout, anything else is laid out in one piece.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--base-dir", type=Path, required=True, help="the run folder relative URLs resolve against")
    parser.add_argument("--templates", type=Path, required=True, help="the templates folder (static/ is served)")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    from toolkit.render.pdf import write_pdf

    result = write_pdf(args.html.read_text(encoding="utf-8"), args.pdf, base_dir=args.base_dir, templates_dir=args.templates, workers=args.workers)
    print(result.pages)


if __name__ == "__main__":
    main()
