"""The analyst's loop from the command line: `nbpress new`, notebooks without a parameters cell,
failed runs that say where their notebook is, and a command line that loads nothing heavy
before it needs it. Real console script, real kernels, real PDFs (pdftotext)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import nbformat
import pytest

from tests.conftest import ROOT, cli, make_notebook, pdf_text


def _written(result) -> list[str]:
    return [line.removeprefix("wrote ") for line in result.stdout.splitlines() if line.startswith("wrote ")]


def test_a_new_report_runs_right_away(project):
    made = cli("new", "regional_sales", cwd=project.root, check=True)
    assert _written(made) == ["notebooks/regional_sales.ipynb", "notebooks/regional_sales.yml"]
    assert made.stdout.splitlines()[-1].startswith("next: nbpress run regional_sales")

    nb = nbformat.read(str(project.notebooks_dir / "regional_sales.ipynb"), as_version=4)
    nbformat.validate(nb)  # written without nbformat: still a valid nbformat 4.5 notebook
    [tagged] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert "start: datetime.date" in tagged.source and "# how many days" in tagged.source
    assert "import toolkit as tk" in nb.cells[2].source and nb.cells[-1].source.endswith("tk.preview()")
    schema = cli("params", "regional_sales", cwd=project.root, check=True).stdout
    assert "how many days the report covers" in schema and "north, south" in schema

    ran = cli("run", "regional_sales", cwd=project.root, check=True)
    pdf = ran.stdout.split()[0]
    text = pdf_text(pdf)
    assert "Regional Sales" in text and "Visits and orders per day, north region" in text  # the example table
    assert "conversion_pct" in text and "2026-01-11" in text and "210" in text  # its last row: 120 + 6 * 15
    assert "Visits and orders per day" in text.split("north region", 1)[1]  # and the figure's caption

    # --template: a template of its own, extending base.html.j2 and named in the spec; rendered
    # from the run above (no second kernel).
    fancy = cli("new", "fancy", "--template", cwd=project.root, check=True)
    assert _written(fancy)[-1] == "templates/fancy.html.j2"
    assert 'template: "fancy.html.j2"' in (project.notebooks_dir / "fancy.yml").read_text()
    assert '{% extends "base.html.j2" %}' in (project.templates_dir / "fancy.html.j2").read_text()
    run_dir = str(pdf).removesuffix("/report.pdf")
    cli("render", run_dir, "--template", "fancy.html.j2", cwd=project.root, check=True)
    assert "Visits and orders per day, north region" in pdf_text(pdf)


@pytest.mark.parametrize("name", ["9lives", "weekly.yml", "../escape", "two words", "x" * 65, "über"])
def test_bad_names_are_refused(project, name):
    result = cli("new", name, cwd=project.root)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "is not a report name" in result.stderr
    assert list(project.notebooks_dir.iterdir()) == []


def test_nothing_is_ever_overwritten(project):
    spec = project.notebooks_dir / "taken.yml"
    spec.write_text("title: Mine\n", encoding="utf-8")
    result = cli("new", "taken", cwd=project.root)
    assert result.returncode == 2
    assert result.stderr.strip() == f"nbpress: error: {spec}: already exists (nbpress new never overwrites; pick another name or remove it)"
    assert spec.read_text() == "title: Mine\n" and not (project.notebooks_dir / "taken.ipynb").exists()  # nothing written
    (project.templates_dir / "other.html.j2").write_text("mine", encoding="utf-8")
    assert cli("new", "other", "--template", cwd=project.root).returncode == 2
    assert not (project.notebooks_dir / "other.ipynb").exists()


def test_from_copies_a_report_under_the_new_name(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    made = cli("new", "weekly_copy", "--from", "weekly_statistics", "--template", cwd=tmp_path, check=True)
    assert _written(made) == ["notebooks/weekly_copy.ipynb", "notebooks/weekly_copy.yml", "templates/weekly_copy.html.j2"]
    original = json.loads((ROOT / "notebooks" / "weekly_statistics.ipynb").read_text())
    copy = json.loads((tmp_path / "notebooks" / "weekly_copy.ipynb").read_text())
    assert [c["source"] for c in copy["cells"]] == [c["source"] for c in original["cells"]]
    assert all(c.get("outputs", []) == [] for c in copy["cells"])  # a clean copy
    spec = (tmp_path / "notebooks" / "weekly_copy.yml").read_text()
    assert 'title: "Weekly Copy"' in spec and 'template: "weekly_copy.html.j2"' in spec
    assert "show_parameters:" in spec and "# the ISO week" in spec  # the rest, comments and all
    assert (tmp_path / "templates" / "weekly_copy.html.j2").read_text() == (ROOT / "templates" / "weekly_statistics.html.j2").read_text()
    assert "database_url" in cli("params", "weekly_copy", cwd=tmp_path, check=True).stdout
    missing = cli("new", "other", "--from", "nothing", cwd=tmp_path)
    assert missing.returncode == 2 and "no report named 'nothing'" in missing.stderr


def test_a_notebook_without_a_parameters_cell_runs_as_it_is(project):
    make_notebook(project.notebooks_dir / "plain.ipynb", None, """
        import toolkit as tk
        tk.text("plain", "The untagged notebook ran: quince and medlar.")
        """)  # no pandas: the kernel's imports are most of a small run's time
    assert "takes no parameters" in cli("params", "plain", cwd=project.root, check=True).stdout
    refused = cli("run", "plain", "-p", "fruit=fig", cwd=project.root)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "no cell tagged 'parameters'" in refused.stderr and "Property Inspector" in refused.stderr
    assert not project.runs_dir.exists()
    ran = cli("run", "plain", cwd=project.root, check=True)
    text = pdf_text(ran.stdout.split()[0])
    assert "The untagged notebook ran: quince and medlar." in text


# Structural, not timed: what the command line has loaded when it answers. `--help`, `params` and
# refused input must not pay for pandas, papermill, WeasyPrint, nbformat (jsonschema: seconds), Jinja.
HEAVY = {"pandas", "papermill", "weasyprint", "nbformat", "jsonschema", "jinja2", "matplotlib", "requests", "nbclient"}
LOADED_AFTER = textwrap.dedent("""
    import json, sys
    from toolkit.cli import main
    loaded = {}
    for args in (["--help"], ["params", "weekly_statistics"], ["run", "weekly_statistics", "-p", "nope=1"],
                 ["run", "nothing"], ["new", "9bad"]):
        try:
            main(args, prog_name="nbpress")
        except SystemExit:
            pass
        loaded[args[0] + (" " + args[-1] if len(args) > 1 else "")] = sorted({m.split(".")[0] for m in sys.modules})
    import toolkit
    loaded["import toolkit"] = sorted({m.split(".")[0] for m in sys.modules})
    print("LOADED " + json.dumps(loaded))
""")


def test_the_command_line_loads_nothing_heavy_before_it_needs_it(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    result = subprocess.run([sys.executable, "-c", LOADED_AFTER], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    [line] = [line for line in result.stdout.splitlines() if line.startswith("LOADED ")]
    loaded = json.loads(line.removeprefix("LOADED "))
    assert "database_url" in result.stdout and "unknown parameter" in result.stderr  # the commands really ran
    assert "pydantic" not in loaded["--help"]
    for command, modules in loaded.items():
        assert not HEAVY & set(modules), (command, sorted(HEAVY & set(modules)))
