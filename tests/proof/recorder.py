"""Collect what each proof case proves, and the load figures, into one JSON file per run.

A test describes itself with the ``proof`` fixture::

    def test_row(proof):
        proof.case("uploads", "0 bytes", "an empty upload is refused with 400 and nothing is stored")
        ...
        proof.figures("load: sqlite", {"requests_per_s": 123.0, ...})   # optional

The description travels in the test report's ``user_properties`` (xdist ships those from its
workers), so the controller sees every case with its outcome (passed, failed, skipped). At the
end of the session it writes ``.proof/results.json`` (or ``$NBPRESS_PROOF_RESULTS``), which
``python -m tests.proof.report`` turns into ``docs/reliability.md``. Runs without proof cases
write nothing. Hooks and the fixture are imported into tests/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.proof.profile import PROFILE

__all__ = ["Proof", "proof", "pytest_runtest_logreport", "pytest_sessionfinish", "results_path"]

ROOT = Path(__file__).resolve().parents[2]
_KEY = "nbpress_proof"


def results_path() -> Path:
    return Path(os.environ.get("NBPRESS_PROOF_RESULTS") or ROOT / ".proof" / "results.json")


class Proof:
    """What one test proves; written into its report's user_properties."""

    def __init__(self, node: pytest.Item):
        self._node = node
        callspec = getattr(node, "callspec", None)
        self.database = callspec.params.get("database_url") if callspec is not None else None

    def case(self, category: str, case: str, proves: str) -> None:
        variant = f" [{self.database}]" if self.database else ""
        self._node.user_properties.append((_KEY, {"kind": "case", "category": category, "case": case + variant,
                                                  "proves": proves}))

    def figures(self, name: str, values: dict[str, Any]) -> None:
        self._node.user_properties.append((_KEY, {"kind": "figures", "name": name, "values": values}))


@pytest.fixture
def proof(request) -> Proof:
    return Proof(request.node)


class _Collected:
    def __init__(self) -> None:
        self.started = dt.datetime.now(dt.timezone.utc)
        self.cases: dict[str, dict[str, Any]] = {}  # nodeid -> case with outcome
        self.figures: dict[str, dict[str, Any]] = {}


_COLLECTED = _Collected()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entries = [value for key, value in report.user_properties if key == _KEY]
    if not entries:
        return
    failed = report.failed
    for entry in entries:
        if entry["kind"] == "figures":
            if report.when == "call":
                _COLLECTED.figures[entry["name"]] = {**entry["values"], "outcome": "failed" if failed else report.outcome}
            continue
        known = _COLLECTED.cases.get(report.nodeid + entry["case"])
        if report.when == "call" or known is None:
            outcome = "failed" if failed else report.outcome
            reason = ""
            if report.skipped and isinstance(report.longrepr, tuple):
                reason = str(report.longrepr[2]).removeprefix("Skipped: ")
            _COLLECTED.cases[report.nodeid + entry["case"]] = {**entry, "outcome": outcome, "reason": reason,
                                                               "seconds": round(report.duration, 2)}
        elif failed:  # a teardown that fails turns a passed case into a failed one
            known["outcome"] = "failed"


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput") or not (_COLLECTED.cases or _COLLECTED.figures):
        return  # xdist workers report to the controller; runs without proof cases leave the file alone
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "profile": PROFILE.name,
        "started": _COLLECTED.started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cases": sorted(({k: v for k, v in c.items() if k != "kind"} for c in _COLLECTED.cases.values()),
                        key=lambda c: (c["category"], c["case"])),
        "figures": _COLLECTED.figures,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
