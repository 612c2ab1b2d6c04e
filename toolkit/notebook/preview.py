"""``tk.preview()``: render the records made so far and show the PDF inside JupyterLab.

The report is found as ``nbpress run NOTEBOOK`` would find it: the spec beside the notebook
(``notebooks/NAME.yml``, NAME being the notebook's current name: see :mod:`.notebook_path`),
else defaults named after the notebook; the templates are those of the nearest folder at or
above the notebook that holds ``templates/``. Everything is written to a temporary folder that
is removed before the PDF is shown: the PDF travels in the output itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..inputs.params import read_schema, to_jsonable
from ..inputs.spec import ReportSpec, find_report, spec_for_notebook
from ..project import Project
from ..render.html import ReportContext, render_html, write_assets
from ..render.pdf import write_pdf
from . import records as rec
from .notebook_path import current_notebook

__all__ = ["Preview", "render_preview", "find_project"]


@dataclass(frozen=True, repr=False)
class Preview:
    report: str
    pdf: bytes
    pages: int

    def __repr__(self) -> str:
        return f"<preview {self.report!r}: {self.pages} pages>"


def find_project(start: Path) -> Project:
    """The nearest folder at or above ``start`` that holds ``templates/`` (or the ``notebooks/``
    that ``start`` is in); else ``start`` itself: a notebook outside any project, which renders
    with the built-in templates."""
    for folder in (start, *start.parents):
        if (folder / "templates").is_dir() or start.is_relative_to(folder / "notebooks"):
            return Project(folder)
    return Project(start)


def _user_namespace() -> dict:
    try:
        from IPython import get_ipython  # in a kernel; the preview also works without IPython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def _current_parameters(spec: ReportSpec, namespace: dict) -> dict:
    """The parameter values as they are now in the kernel, for the template's header."""
    try:
        names = read_schema(spec.notebook).names
    except UsageError:  # no parameters cell, or the notebook not saved yet
        return {}
    return {n: to_jsonable(namespace[n]) for n in names if n in namespace}


def _find_report(report: str | None, project_root: str | os.PathLike | None, notebook: Path | None) -> tuple[ReportSpec, Project]:
    """The spec and project a run of this notebook would use (an explicit ``report`` wins)."""
    if project_root is not None:
        project = Project(Path(project_root).resolve())
    else:
        project = find_project(notebook.parent if notebook is not None else Path.cwd().resolve())
    if report is not None:
        return find_report(report, project.notebooks_dir), project
    if notebook is not None:
        return spec_for_notebook(notebook), project  # a broken spec is reported, as a run would
    return ReportSpec(name="preview", title="Preview", notebook=Path("preview.ipynb")), project


def render_preview(
    records: dict[str, rec.Record],
    report: str | None = None,
    project_root: str | os.PathLike | None = None,
    *,
    notebook: Path | None = None,
    display: bool = True,
) -> Preview:
    """Render ``records`` as the report's PDF; show it inline when ``display``.

    ``notebook``: the notebook's path (default: asked of the Jupyter server, see :mod:`.notebook_path`).
    """
    namespace = _user_namespace()
    notebook = notebook if notebook is not None else current_notebook(namespace)
    spec, project = _find_report(report, project_root, notebook)
    context = ReportContext(
        spec=spec,
        params=_current_parameters(spec, namespace),
        run_id="preview",
        generated=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
    )
    with tempfile.TemporaryDirectory(prefix="nbpress-preview-") as tmp:
        out = Path(tmp)
        figures = write_assets(records, out / "assets")
        html = render_html(context, records, figures, project.templates_dir)
        result = write_pdf(html, out / "preview.pdf", base_dir=out, templates_dir=project.templates_dir)
        preview = Preview(spec.name, (out / "preview.pdf").read_bytes(), result.pages)
    if display:
        from IPython.display import display as show  # only when showing it in a kernel

        # JupyterLab shows application/pdf inline (its PDF viewer in an <iframe>); the text is
        # for front ends without a PDF viewer, and for the saved notebook when it is not trusted.
        pages = f"{preview.pages} page{'s' if preview.pages != 1 else ''}"
        text = f"PDF preview of {spec.name!r}: {pages} (run the cell in JupyterLab to see it)"
        show({"application/pdf": base64.b64encode(preview.pdf).decode("ascii"), "text/plain": text}, raw=True)
    return preview
