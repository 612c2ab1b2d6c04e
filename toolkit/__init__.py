"""Notebook Press toolkit: record what a notebook shows, then run, render and publish it.

Inside a notebook::

    import toolkit as tk
    tk.table("summary", df, caption="Weekly summary")
    tk.figure("trend", fig)
    tk.metric("rows", 1234, label="Events")
    tk.text("note", "**Markdown** text")
    tk.preview()

Importing this package is cheap: the analyst's API (and with it nbformat, pandas, matplotlib,
papermill and WeasyPrint) loads on the first ``tk.*`` call, so ``nbpress --help`` and every
refused command line never pay for it. The pipeline lives in the stage folders (inputs, execute,
notebook, checks, render, deliver, runs, batch, scheduler); see docs/architecture.md.
"""

from . import import_cost
from .errors import NbpressError
from .version import __version__

import_cost.install()  # nbformat without rfc3987-syntax's grammars: ~1.6 s less per process

__all__ = ["__version__", "figure", "metric", "preview", "table", "text", "NbpressError", "Secret"]

_ANALYST_API = frozenset({"figure", "metric", "preview", "table", "text"})


def __getattr__(name: str):
    # PEP 562: `tk.table` imports the analyst's API on first use (nbformat alone takes seconds
    # to import on a loaded machine); afterwards the name is a plain module attribute.
    if name in _ANALYST_API:
        from .notebook import analyst_api

        value = getattr(analyst_api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_ANALYST_API})


class Secret(str):
    """Annotation of a secret input in the ``parameters`` cell (``db_password: Secret = ""``).

    The parameters-cell parser recognises it by name; the value is read from the environment
    (``NBPRESS_SECRET_<NAME>`` or the variable the spec names under ``secrets:``), never given
    with ``-p`` or a values file, and masked as ``***`` in the run's outputs and errors.
    """
