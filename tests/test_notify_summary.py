"""The spec's ``notify`` key: the summary template, checked when the spec loads, rendered over a
run's parameters, period and metrics, and sent in the publish metadata with ``attach_pdf``."""

from __future__ import annotations

import datetime as dt

import pytest

from toolkit.deliver.portal_client import _metadata
from toolkit.errors import SpecError
from toolkit.inputs.spec import load_spec
from toolkit.inputs.summary import render_summary
from toolkit.runs.run_folder import RunRecord


def test_the_summary_renders_params_period_and_metrics_as_one_short_printable_line():
    line = render_summary("{{ metrics.orders }} orders\nin {{ period }} ({{ params.region }})\x07",
                          params={"region": "north"}, period="2026-W48", metrics={"orders": 1234})
    assert line == "1234 orders in 2026-W48 (north)"
    assert render_summary("{{ metrics.missing }}ok", params={}, period="", metrics={}) == "ok"
    long = render_summary("{{ 'x' * 500 }}", params={}, period="", metrics={})
    assert len(long) == 300 and long.endswith("…")


def test_a_broken_template_stops_the_spec_with_one_line(tmp_path):
    spec = tmp_path / "weekly.yml"
    spec.write_text("notify:\n  summary: '{{ metrics.orders '\n", encoding="utf-8")
    with pytest.raises(SpecError, match="weekly.yml: notify.summary.*not a valid template"):
        load_spec(spec)
    spec.write_text("notify:\n  summary: '{{ metrics.orders }} orders'\n  attach_pdf: true\n", encoding="utf-8")
    assert load_spec(spec).notify.attach_pdf is True


def test_the_metadata_carries_the_summary_and_attach_pdf_only_when_set():
    record = RunRecord(report="r", run_id="x", parameters={}, period="2026-W48", summary="1234 orders",
                       spec={"notify": {"attach_pdf": True}}, notebook="n", notebook_sha256="0",
                       started=dt.datetime.now(dt.timezone.utc))
    sent = _metadata(record, "0" * 64, None)
    assert sent["summary"] == "1234 orders" and sent["notify"] == {"attach_pdf": True}
    plain = _metadata(record.model_copy(update={"summary": "", "spec": {}}), "0" * 64, None)
    assert "summary" not in plain and "notify" not in plain
