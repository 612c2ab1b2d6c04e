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
    conda.pop("python"), conda.pop("pip"), conda.pop("jupyterlab")  # environment-only extras
    assert conda == runtime


def test_public_api():
    assert sorted(toolkit.__all__) == sorted(["__version__", "figure", "metric", "preview", "table", "text", "NbpressError"])
    for name in toolkit.__all__:
        assert hasattr(toolkit, name)


def test_importing_the_toolkit_stays_cheap():
    import subprocess
    import sys

    code = "import sys, toolkit; print(sorted(m for m in ('pandas', 'matplotlib', 'weasyprint', 'papermill') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
