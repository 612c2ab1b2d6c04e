"""Packaging contracts: environment.yml matches pyproject.toml; the public API is small and stable."""

from __future__ import annotations

import re
import tomllib

import yaml

import toolkit
from tests.conftest import ROOT


def _requirement(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)", text.strip())
    return match.group(1).lower().replace("_", "-"), match.group(3).replace(" ", "")


def test_environment_yml_lists_the_same_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = dict(_requirement(r) for r in project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_requirement(d) for d in env["dependencies"] if isinstance(d, str))
    environment_only = ("python", "pip", "jupyterlab", "cryptography", "fontconfig", "font-ttf-noto", "font-ttf-noto-cjk")
    for name in environment_only:  # extras and system packages (fonts), not Python dependencies
        conda.pop(name)
    assert conda == runtime


def test_public_api():
    import inspect

    from toolkit import errors, version
    from toolkit.notebook import analyst_api

    assert sorted(toolkit.__all__) == sorted(["__version__", "figure", "metric", "preview", "table", "text", "NbpressError", "Secret"])
    expected = {"figure": analyst_api.figure, "metric": analyst_api.metric, "preview": analyst_api.preview,
                "table": analyst_api.table, "text": analyst_api.text, "NbpressError": errors.NbpressError}
    for name, obj in expected.items():  # each public name is the real thing, not just some attribute
        assert getattr(toolkit, name) is obj, name
    assert issubclass(toolkit.Secret, str)  # the annotation of a secret input (toolkit/inputs/params.py reads it by name)
    namespace: dict = {}
    exec("from toolkit import *", namespace)  # noqa: S102 - what `import *` gives is the API
    assert set(namespace) - {"__builtins__"} == set(toolkit.__all__)
    assert toolkit.__version__ == version.__version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    signatures = {name: list(inspect.signature(getattr(toolkit, name)).parameters) for name in expected if name != "NbpressError"}
    assert signatures == {"table": ["name", "df", "caption", "formats"], "figure": ["name", "fig", "caption", "alt"],  # what notebooks call
                          "metric": ["name", "value", "label"], "text": ["name", "markdown"], "preview": ["report", "project"]}


def test_importing_the_toolkit_stays_cheap():
    import subprocess
    import sys

    code = "import sys, toolkit; print(sorted(m for m in ('pandas', 'matplotlib', 'weasyprint', 'papermill') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
