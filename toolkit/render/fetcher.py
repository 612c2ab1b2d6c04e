"""The fenced URL fetcher: what WeasyPrint may read while it lays a report out.

WeasyPrint can read any local file and the network. This fetcher serves only ``file:`` URLs
under the allowed roots (the run folder) and the static layers (the project's
``templates/static``, then the package's built-in one: see :mod:`.template_folders`);
everything else is refused and listed, so a template cannot embed ``/etc/passwd`` or call out
over HTTP. Both the one-piece layout (:mod:`.pdf`) and every long-table part
(:mod:`.longtable_layout`) use it.

The static layers overlay: a URL inside any of them is served from the first layer that has
that file, so a project's stylesheet finds the built-in fonts and a project's own font
replaces the built-in one, whichever folder the URL names.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["FencedFetcher", "Refused", "fetcher_class"]


class Refused(ValueError):
    pass


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def fetcher_class():
    """The fetcher class. WeasyPrint (~0.4 s to import) loads here, on the first layout."""
    from weasyprint.urls import URLFetcher

    class FencedFetcher(URLFetcher):
        """Serves ``file:`` URLs under the allowed roots and static layers only; refuses everything else."""

        def __init__(self, roots: list[Path], layers: list[Path] = ()):
            super().__init__(allowed_protocols={"file"}, allow_redirects=False)
            self.roots = [_real(r) for r in roots]
            self.layers = [_real(layer) for layer in layers]
            self.refused: list[str] = []

        def _served(self, path: Path) -> Path | None:
            """The file to serve for ``path`` (real), or None when it is outside the fence."""
            for layer in self.layers:
                if path.is_relative_to(layer):
                    relative = path.relative_to(layer)
                    for candidate in (_real(other / relative) for other in self.layers):
                        # a symlink in a layer must not lead out of it
                        if candidate.is_file() and any(candidate.is_relative_to(other) for other in self.layers):
                            return candidate
                    return path
            return path if any(path.is_relative_to(root) for root in self.roots) else None

        def fetch(self, url, headers=None):
            parts = urlsplit(url)
            if parts.scheme == "file" and parts.netloc in ("", "localhost"):
                served = self._served(_real(unquote(parts.path)))
                if served is not None:
                    return super().fetch(served.as_uri(), headers)
            self.refused.append(url)
            raise Refused(f"refused by nbpress: {url}")

    return FencedFetcher


def FencedFetcher(roots: list[Path], layers: list[Path] = ()):  # noqa: N802 - a factory that reads like the class
    return fetcher_class()(roots, layers)
