"""Quick (``make test``) and full (``make proof``) sizes of the proof suite, chosen by NBPRESS_PROOF."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Profile", "PROFILE"]


@dataclass(frozen=True)
class Profile:
    name: str
    fuzz_examples: int  # hypothesis examples per API operation, credential kind and database
    load_users: int  # concurrent recipients in the load test
    load_seconds: float  # how long they keep listing and downloading
    load_publications: int  # publications a publisher posts during the load


_PROFILES = {
    "quick": Profile("quick", fuzz_examples=10, load_users=8, load_seconds=10, load_publications=4),
    "full": Profile("full", fuzz_examples=100, load_users=24, load_seconds=45, load_publications=12),
}


def _chosen() -> Profile:
    name = os.environ.get("NBPRESS_PROOF", "quick").strip().lower() or "quick"
    if name not in _PROFILES:
        raise RuntimeError(f"NBPRESS_PROOF={name!r}: expected one of {', '.join(_PROFILES)}")
    return _PROFILES[name]


PROFILE = _chosen()
