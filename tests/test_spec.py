"""Report specs are validated; errors name the file and the key."""

from __future__ import annotations

import pytest

from tests.conftest import make_notebook
from toolkit.errors import SpecError, UsageError
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import find_report, load_spec


@pytest.fixture
def notebooks(tmp_path):
    make_notebook(tmp_path / "weekly.ipynb", "n: int = 1\nmode: str = 'a'")
    return tmp_path


def _spec(notebooks, text):
    path = notebooks / "weekly.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, key, message",
    [
        ("title: [unclosed", "line 1", "not valid YAML"),
        ("- a list", None, "expected a mapping"),
        ("title: T\ncolour: red", "colour", "Extra inputs are not permitted"),
        ("timeouts:\n  cell: -1", "timeouts.cell", "greater than 0"),
        ("timeouts:\n  cel: 5", "timeouts.cel", "Extra inputs"),
        ("page:\n  size: 'A4; } body { display: none'", "page.size", "should match pattern"),
        ("template: ../../etc/passwd", "template", "inside templates/"),
        ("name: other", "name", "is set from the file name"),
        ("tables:\n  t:\n    max_rows: 0", "tables.t.max_rows", "greater than 0"),
    ],
)
def test_spec_errors_name_file_and_key(notebooks, text, key, message):
    path = _spec(notebooks, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.file == str(path) and info.value.key == key
    assert message in str(info.value) and str(path) in str(info.value)


def test_spec_parameters_are_checked_against_the_notebook(notebooks):
    spec = load_spec(_spec(notebooks, "parameters:\n  n: many"))
    with pytest.raises(SpecError, match=r"weekly.yml: parameters.n: parameter 'n': got 'many', expected int"):
        prepare(spec, {})
    spec = load_spec(_spec(notebooks, "parameters:\n  zz: 1"))
    with pytest.raises(SpecError, match="parameters.zz: parameter 'zz': unknown parameter"):
        prepare(spec, {})
    spec = load_spec(_spec(notebooks, "header_parameters: [week]"))
    with pytest.raises(SpecError, match="header_parameters: 'week' is not a parameter"):
        prepare(spec, {})


def test_spec_defaults_and_lookup(notebooks):
    _spec(notebooks, "title: Weekly\nparameters:\n  n: 5\n")
    spec = find_report("weekly", notebooks)
    assert spec.title == "Weekly" and spec.notebook == notebooks / "weekly.ipynb"
    assert prepare(spec, {}).parameters == {"n": 5, "mode": "a"}
    assert prepare(spec, {"n": 9}).parameters["n"] == 9  # command line beats the spec
    assert find_report(str(notebooks / "weekly.ipynb"), notebooks).title == "Weekly"
    with pytest.raises(UsageError, match="no report named 'nope'.*known: weekly"):
        find_report("nope", notebooks)
