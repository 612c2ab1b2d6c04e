"""Keep rfc3987-syntax out of nbformat's import in the toolkit's own processes.

nbformat (and so papermill, nbclient and nbconvert) imports jsonschema, whose format checkers
import rfc3987-syntax when it is installed (Jupyter's ``jsonschema[format-nongpl]`` installs
it). That module compiles ~35 Lark grammars as it is imported: ~1.6 s of CPU in every process
that reads a notebook (each ``nbpress`` command, each batch worker), for the ``iri`` formats no
notebook schema uses. While ``jsonschema._format`` is being imported, :class:`SkipIriGrammars`
answers that rfc3987-syntax is missing, which jsonschema handles by leaving those two formats
unchecked; any other importer still gets the module.

Not installed inside a kernel (ipykernel already imported), and removed from the kernel fork
server before it preloads (its kernels inherit its import machinery): what an analyst's code
imports there, jsonschema included, behaves exactly as without the toolkit.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

__all__ = ["SkipIriGrammars", "install", "uninstall"]


def _initializing(name: str) -> bool:
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


class SkipIriGrammars(MetaPathFinder):
    """Refuses ``rfc3987_syntax`` to ``jsonschema._format`` while that module loads."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "rfc3987_syntax" and _initializing("jsonschema._format"):
            raise ModuleNotFoundError("not loaded for jsonschema's iri formats (toolkit.import_cost)", name=fullname)
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` once, unless this process is a kernel."""
    if "ipykernel" in sys.modules or "jsonschema" in sys.modules:
        return
    if not any(isinstance(finder, SkipIriGrammars) for finder in sys.meta_path):
        sys.meta_path.insert(0, SkipIriGrammars())


def uninstall() -> None:
    """Take the finder off ``sys.meta_path`` (a process about to become kernels)."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, SkipIriGrammars)]
