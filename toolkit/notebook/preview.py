"""``tk.preview()``: render the records made so far and show the PDF inside JupyterLab."""

from __future__ import annotations

import base64
import datetime as dt
import os
import tempfile
from pathlib import Path

from ..errors import UsageError
from ..inputs.params import read_schema, to_jsonable
from ..inputs.spec import ReportSpec, find_report
from ..project import Project
from ..render.html import ReportContext, render_html, write_assets
from ..render.pdf import write_pdf
from . import records as rec

__all__ = ["render_preview", "find_project"]


def find_project(start: Path) -> Project:
    """The nearest folder at or above ``start`` that holds ``templates/``."""
    for folder in (start, *start.parents):
        if (folder / "templates" / "base.html.j2").exists():
            return Project(folder)
    raise UsageError(f"no templates/base.html.j2 at or above {start}; pass project=...")


def _user_namespace() -> dict:
    try:
        from IPython import get_ipython  # in a kernel; the preview also works without IPython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def _notebook_name(namespace: dict) -> str | None:
    """JupyterLab tells the kernel which notebook it serves (``__session__``)."""
    session = namespace.get("__session__")
    return Path(session).stem if isinstance(session, str) and session.endswith(".ipynb") else None


def _current_parameters(spec: ReportSpec, namespace: dict) -> dict:
    """The parameter values as they are now in the kernel, for the template's header."""
    try:
        names = read_schema(spec.notebook).names
    except UsageError:
        return {}
    return {n: to_jsonable(namespace[n]) for n in names if n in namespace}


def render_preview(
    records: dict[str, rec.Record],
    report: str | None = None,
    project_root: str | os.PathLike | None = None,
    *,
    display: bool = True,
) -> Path:
    project = Project(Path(project_root)) if project_root else find_project(Path.cwd().resolve())
    namespace = _user_namespace()
    name = report or _notebook_name(namespace)
    spec: ReportSpec
    try:
        spec = find_report(name, project.notebooks_dir) if name else None
    except UsageError:
        spec = None
    if spec is None:
        spec = ReportSpec(name=name or "preview", title=(name or "Preview").replace("_", " ").title(), notebook=Path("preview.ipynb"))
    out = Path(tempfile.mkdtemp(prefix="nbpress-preview-"))
    context = ReportContext(
        spec=spec,
        params=_current_parameters(spec, namespace),
        run_id="preview",
        generated=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
    )
    figures = write_assets(records, out / "assets")
    html = render_html(context, records, figures, project.templates_dir)
    pdf = out / "preview.pdf"
    write_pdf(html, pdf, base_dir=out, templates_dir=project.templates_dir)
    if display:
        from IPython.display import display as show  # only when showing it in a kernel

        data = base64.b64encode(pdf.read_bytes()).decode("ascii")
        show({"application/pdf": data, "text/plain": f"preview: {pdf}"}, raw=True)
    return pdf
