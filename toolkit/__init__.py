"""Notebook Press toolkit: record what a notebook shows, then run, render and publish it.

Inside a notebook::

    import toolkit as tk
    tk.table("summary", df, caption="Weekly summary")
    tk.figure("trend", fig)
    tk.metric("rows", 1234, label="Events")
    tk.text("note", "**Markdown** text")
    tk.preview()

Importing this package is cheap: pandas, matplotlib, papermill and WeasyPrint load on first use.
The pipeline lives in the stage folders (inputs, execute, notebook, checks, render, deliver,
runs, batch, scheduler); see docs/architecture.md.
"""

from .errors import NbpressError
from .notebook.analyst_api import figure, metric, preview, table, text
from .version import __version__

__all__ = ["__version__", "figure", "metric", "preview", "table", "text", "NbpressError", "Secret"]


class Secret(str):
    """Annotation of a secret input in the ``parameters`` cell (``db_password: Secret = ""``).

    The parameters-cell parser recognises it by name; the value is read from the environment
    (``NBPRESS_SECRET_<NAME>`` or the variable the spec names under ``secrets:``), never given
    with ``-p`` or a values file, and masked as ``***`` in the run's outputs and errors.
    """
