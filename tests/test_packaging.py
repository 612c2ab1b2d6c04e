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


def _environment_yml() -> tuple[dict[str, str], dict[str, str]]:
    """environment.yml's conda dependencies and its pip ones (without the project itself), by name."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_requirement(d) for d in env["dependencies"] if isinstance(d, str))
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    return conda, dict(_requirement(d) for d in sum(pip, []) if not d.startswith("-e"))


def _scale_extra() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(_requirement(r) for r in project["optional-dependencies"]["scale"])


def test_environment_yml_lists_the_same_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = dict(_requirement(r) for r in project["dependencies"])
    conda, pip = _environment_yml()
    environment_only = ("python", "pip", "jupyterlab", "cryptography", "fontconfig", "font-ttf-noto", "font-ttf-noto-cjk")
    for name in environment_only:  # extras and system packages (fonts), not Python dependencies
        conda.pop(name)
    for name in _scale_extra():  # checked below
        conda.pop(name, None)
    assert conda == runtime
    from_pypi = dict(map(_requirement, project["optional-dependencies"]["test"])) | _scale_extra()
    for name, bound in pip.items():  # from PyPI: test tools and clients conda-forge names otherwise
        assert from_pypi.get(name) == bound, f"environment.yml pip: {name} as in pyproject's [test] or [scale]"


def test_make_test_installs_the_extras_its_tests_need():
    makefile = (ROOT / "Makefile").read_text()
    assert "install -e '.[test,scale]'" in makefile  # boto3: tests/portal/test_s3_store.py


def test_environment_yml_lists_the_scale_extra_with_the_same_bounds():
    conda, pip = _environment_yml()
    listed = {**conda, **pip}
    scale = _scale_extra()
    assert {"redis", "boto3"} <= set(scale)
    assert {name: listed.get(name) for name in scale} == scale


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
