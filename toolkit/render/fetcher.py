"""The fenced URL fetcher: what WeasyPrint may read while it lays a report out.

WeasyPrint can read any local file and the network. This fetcher serves only ``file:`` URLs
under the allowed roots (the template's static folder and the run folder); everything else is
refused and listed, so a template cannot embed ``/etc/passwd`` or call out over HTTP. Both the
one-piece layout (:mod:`.pdf`) and every long-table part (:mod:`.longtable_layout`) use it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["FencedFetcher", "Refused", "fetcher_class"]


class Refused(ValueError):
    pass


def fetcher_class():
    """The fetcher class. WeasyPrint (~0.4 s to import) loads here, on the first layout."""
    from weasyprint.urls import URLFetcher

    class FencedFetcher(URLFetcher):
        """Serves ``file:`` URLs under the allowed roots only; refuses everything else."""

        def __init__(self, roots: list[Path]):
            super().__init__(allowed_protocols={"file"}, allow_redirects=False)
            self.roots = [Path(os.path.realpath(r)) for r in roots]
            self.refused: list[str] = []

        def fetch(self, url, headers=None):
            parts = urlsplit(url)
            if parts.scheme == "file" and parts.netloc in ("", "localhost"):
                path = Path(os.path.realpath(unquote(parts.path)))
                if any(path.is_relative_to(root) for root in self.roots):
                    return super().fetch(url, headers)
            self.refused.append(url)
            raise Refused(f"refused by nbpress: {url}")

    return FencedFetcher


def FencedFetcher(roots: list[Path]):  # noqa: N802 - a factory that reads like the class
    return fetcher_class()(roots)
