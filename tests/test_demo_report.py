"""The Weekly Statistics demo, end to end: real data, real kernel, real PDF, SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3

import nbformat
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import DEMO_END, pdf_text
from toolkit.demo.demo_data import generate
from toolkit.inputs.prepare import prepare
from toolkit.inputs.spec import find_report
from toolkit.notebook.records import read_records
from toolkit.render.inspect_pdf import inspect_pdf
from toolkit.runs.pipeline import run_report

WEEK = dt.date(2026, 11, 16)


def _week_events(db) -> pd.DataFrame:
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query(
            "SELECT * FROM events WHERE ts >= ? AND ts < ?", conn,
            params=(WEEK.isoformat(), (WEEK + dt.timedelta(days=7)).isoformat()),
        )


def test_demo_data_is_realistic_and_deterministic(demo_db, tmp_path):
    with sqlite3.connect(demo_db) as conn:
        rows, first, last, sources = conn.execute(
            "SELECT count(*), min(ts), max(ts), count(DISTINCT source) FROM events"
        ).fetchone()
    assert rows >= 100_000 and sources >= 4
    days = (dt.date.fromisoformat(last[:10]) - dt.date.fromisoformat(first[:10])).days + 1
    assert days >= 12 * 7 and dt.date.fromisoformat(last[:10]) == DEMO_END

    def digest(path):
        with sqlite3.connect(path) as conn:
            return hashlib.sha256(repr(conn.execute("SELECT * FROM events ORDER BY id").fetchall()).encode()).hexdigest()

    again = generate(tmp_path / "again.sqlite", end=DEMO_END)
    other = generate(tmp_path / "other.sqlite", end=DEMO_END, seed=8)
    assert again.weeks[-1] == WEEK
    assert digest(again.path) == digest(demo_db) != digest(other.path)


def test_demo_pdf_shows_the_weeks_numbers(demo_run, demo_db):
    run_dir, record = demo_run
    assert record.status == "succeeded"
    week = _week_events(demo_db)
    text = pdf_text(run_dir / "report.pdf")
    flat = re.sub(r"\s+", " ", text)
    assert f"{len(week):,}" in flat  # events in the week: metric and the summary's grand total
    top_category, top_count = week["category"].value_counts().sort_index().sort_values(ascending=False, kind="stable").items().__next__()
    assert top_category in flat and f"{top_count:,}" in flat
    for source, count in week["source"].value_counts().items():  # per-source totals
        assert source in flat and f"{count:,}" in flat
    assert "Daily events" in flat  # chart text is text: the chart is vector


def test_demo_pdf_pages_have_header_and_page_x_of_y(demo_run):
    run_dir, record = demo_run
    assert record.pages >= 2
    assert record.spec["header_parameters"] == ["week", "status"]  # notebooks/weekly_statistics.yml
    header = f"Week: {WEEK.isoformat()} · Status: all"  # the run's values ("all" is the notebook's default)
    for number in range(1, record.pages + 1):
        page = pdf_text(run_dir / "report.pdf", page=number)
        assert "Weekly Statistics" in page
        assert header in page.splitlines(), f"page {number} has no running header {header!r}:\n{page[:300]}"
        assert f"Page {number} of {record.pages}" in page
        assert record.run_id in page


def test_demo_pdf_metadata_and_provenance(demo_run):
    run_dir, record = demo_run
    info = inspect_pdf(run_dir / "report.pdf")
    assert info["title"] == "Weekly Statistics" and info["author"] == "Notebook Press demo"
    assert "weekly_statistics" in info["keywords"] and info["created"].startswith("D:")
    provenance = info["provenance"]
    assert provenance["run_id"] == record.run_id and provenance["parameters"]["week"] == WEEK.isoformat()
    assert provenance["notebook_sha256"] == hashlib.sha256((record.notebook and open(record.notebook, "rb").read())).hexdigest()


@pytest.mark.postgres
def test_same_notebook_runs_unchanged_on_postgresql(demo_run, demo_db, demo_project, postgres_url):
    with sqlite3.connect(demo_db) as conn:
        events = pd.read_sql_query("SELECT * FROM events", conn)
    engine = sa.create_engine(postgres_url)
    events.to_sql("events", engine, index=False, chunksize=5_000, method="multi")  # 8 x 5,000 < 65,535 binds
    engine.dispose()

    spec = find_report("weekly_statistics", demo_project.notebooks_dir)
    run_dir, record = run_report(prepare(spec, {"week": WEEK, "database_url": postgres_url}), demo_project)
    assert record.status == "succeeded"

    def records(path):
        return read_records(nbformat.read(str(path / "executed.ipynb"), as_version=4))

    on_pg, on_sqlite = records(run_dir), records(demo_run[0])
    assert list(on_pg) == list(on_sqlite)
    for name, rec in on_sqlite.items():
        if rec.kind == "table":
            pd.testing.assert_frame_equal(on_pg[name].frame, rec.frame)
        elif rec.kind == "metric":
            assert on_pg[name].value == rec.value, name
