"""What a portal user may set when asking for a run (toolkit.inputs.settable)."""

from __future__ import annotations

import pytest

from toolkit.errors import SpecError
from toolkit.inputs.params import read_schema
from toolkit.inputs.prepare import read_inputs
from toolkit.inputs.settable import settable_parameters
from toolkit.inputs.spec import ReportSpec
from tests.conftest import make_notebook

CELL = """
import datetime
from typing import Literal
from toolkit import Secret
week: datetime.date = datetime.date(2026, 11, 16)
region: Literal["north", "south"] = "north"
database_url = "sqlite:///data/events.sqlite"
warehouse_host: str
export_dir = "out"
api_token: str = ""
password: Secret
limit = 10
"""


@pytest.fixture
def notebook(tmp_path):
    return make_notebook(tmp_path / "r.ipynb", CELL)


def _names(spec, notebook):
    return [p.name for p in settable_parameters(spec, read_schema(notebook))]


def test_by_default_only_what_a_reader_could_see_is_settable(notebook):
    spec = ReportSpec(name="r", title="R", notebook=notebook)
    # not the URL (its default), the host and folder (their names), the token (its name), the Secret
    assert _names(spec, notebook) == ["week", "region", "limit"]


def test_show_parameters_choose_when_run_parameters_are_absent(notebook):
    spec = ReportSpec(name="r", title="R", notebook=notebook, show_parameters={"region": "Region", "week": "Week"})
    assert _names(spec, notebook) == ["week", "region"]  # the notebook's order


def test_run_parameters_choose_first(notebook):
    spec = ReportSpec(name="r", title="R", notebook=notebook, show_parameters={"week": "Week"}, run_parameters=["limit"])
    assert _names(spec, notebook) == ["limit"]


@pytest.mark.parametrize(("names", "problem"), [(["nope"], "is not a parameter"), (["password"], "is a secret")])
def test_run_parameters_naming_what_cannot_be_set_are_refused(notebook, names, problem):
    spec = ReportSpec(name="r", title="R", notebook=notebook, run_parameters=names)
    with pytest.raises(SpecError, match=f"run_parameters.*{problem}"):
        read_inputs(spec)
