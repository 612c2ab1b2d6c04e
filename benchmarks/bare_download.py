"""The floor of a gunicorn download: a WSGI app that sends one file with no check at all.

``benchmarks.portal`` serves it with the portal's gunicorn settings, so the portal's figures can
be read against what gunicorn itself costs for the same bytes (HTTP parsing, its worker's thread
hand-off, ``sendfile``). Never a product path: it exists for that comparison only.
"""

from __future__ import annotations

import os

PATH = os.environ.get("NBPRESS_BENCH_FILE", "")


def app(environ, start_response):
    file = open(PATH, "rb")
    size = os.fstat(file.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/pdf"), ("Content-Length", str(size)), ("Cache-Control", "no-store")])
    return environ["wsgi.file_wrapper"](file, 65536)
