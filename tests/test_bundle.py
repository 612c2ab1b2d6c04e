"""What travels to and from Dask workers: the project bundle and run folders as tarballs."""

from __future__ import annotations

import io
import tarfile

import pytest

from toolkit.batch import bundle
from toolkit.errors import ExecutorError


def test_the_project_bundle_holds_the_notebook_folder_and_templates_only(tmp_path):
    notebooks, templates = tmp_path / "notebooks", tmp_path / "templates"
    (notebooks / "helpers").mkdir(parents=True)
    (notebooks / "report.ipynb").write_text("{}")
    (notebooks / "helpers" / "sidefx.py").write_text("X = 1\n")
    for skipped in ("runs", ".ipynb_checkpoints", "__pycache__", ".git"):
        (notebooks / skipped).mkdir()
        (notebooks / skipped / "big.bin").write_bytes(b"x" * 1000)
    (notebooks / "link.ipynb").symlink_to(tmp_path / "elsewhere")
    (templates / "static").mkdir(parents=True)
    (templates / "base.html.j2").write_text("<p>{{ x }}</p>")
    (templates / "static" / "report.css").write_text("p {}")

    packed = bundle.pack_project(notebooks, templates)
    assert len(packed.sha256) == 64 and packed.sha256 == bundle.pack_project(notebooks, templates).sha256
    root = bundle.unpack_project(packed, tmp_path / "worker")
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert found == ["notebooks/helpers/sidefx.py", "notebooks/report.ipynb", "templates/base.html.j2",
                     "templates/static/report.css"]


def test_a_run_folder_comes_back_whole_and_never_over_another(tmp_path):
    run = tmp_path / "worker" / "20261129T050000Z-abcd1234"
    (run / "assets").mkdir(parents=True)
    (run / "run.json").write_text('{"status": "succeeded"}')
    (run / "assets" / "chart.svg").write_text("<svg/>")
    data = bundle.pack_run(run)

    report_dir = tmp_path / "runs" / "weekly"
    received = bundle.unpack_run(data, report_dir)
    assert received == report_dir / run.name
    assert (received / "assets" / "chart.svg").read_text() == "<svg/>"
    (received / "run.json").write_text("kept")
    with pytest.raises(OSError):
        bundle.unpack_run(data, report_dir)  # a run never reuses a folder
    assert (received / "run.json").read_text() == "kept"
    assert [p.name for p in report_dir.iterdir()] == [run.name]  # no staging folder left


def test_a_tarball_cannot_write_outside_the_runs_folder(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises((tarfile.TarError, ExecutorError)):
        bundle.unpack_run(buffer.getvalue(), tmp_path / "runs" / "weekly")
    assert not (tmp_path / "runs" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
