"""The seed database of the proof suite: a small portal with something of every kind.

    users        alice (group finance), bob (no group), carol (admin), dave (disabled)
    groups       finance, operations (empty)
    reports      weekly_statistics (granted to finance), monthly_figures (bob, per publication)
    publications weekly r46 + r47, monthly r11; each PDF kept here with its SHA-256
    tokens       one publisher token, one revoked publisher token
    sessions     API access + refresh tokens for alice and bob (real sign-in with the emailed code)

Publications go through the real ``POST /api/v1/publications``; sign-ins through the real
login + verify API, so the seed is what a running portal would hold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import Grant, Group, Membership, PublisherToken, Report, ReportProfile, RunGrant, User, utcnow
from publish_server.signin.passwords import Passwords
from tests.portal.conftest import TEST_PASSWORD, api_sign_in, make_pdf
from tests.portal.test_publishing import new_publisher_token, publish_ok

__all__ = ["Seed", "Published", "seed_portal", "USERS"]

USERS = {
    "alice": {"groups": ("finance",), "role": "recipient", "active": True},
    "bob": {"groups": (), "role": "recipient", "active": True},
    "carol": {"groups": (), "role": "admin", "active": True},
    "dave": {"groups": ("finance",), "role": "recipient", "active": False},
}


@dataclass(frozen=True)
class Published:
    public_id: str
    report: str
    run_id: str
    pdf: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


@dataclass
class Seed:
    publisher_token: str
    revoked_token: str
    publications: dict[str, Published]
    sessions: dict[str, dict] = field(default_factory=dict)  # name -> token body of api_sign_in

    def email(self, name: str) -> str:
        return f"{name}@example.com"

    def access(self, name: str) -> str:
        return self.sessions[name]["access_token"]

    def readable_by(self, name: str) -> list[Published]:
        return [p for key, p in self.publications.items() if name in _READERS[key]]


RUN_SCHEMA = [
    {"name": "week", "label": "ISO week", "type": {"kind": "date", "optional": False}, "required": False, "default": "2026-11-16"},
    {"name": "regions", "label": "", "type": {"kind": "list", "optional": False,
                                              "item": {"kind": "literal", "choices": ["north", "south"], "optional": False}},
     "required": False, "default": ["north"]},
    {"name": "top", "label": "", "type": {"kind": "int", "optional": True}, "required": False, "default": None},
]

_READERS = {"w46": {"alice", "carol"}, "w47": {"alice", "carol"}, "m11": {"bob", "carol"}}


def _users(app) -> None:
    hasher = Passwords.from_settings(app.config["NBPRESS"])
    password_hash = hasher.hash(TEST_PASSWORD)  # one hash for all: the seed stays quick
    groups = {name: Group(name=name) for name in ("finance", "operations")}
    db.session.add_all(groups.values())
    for name, info in USERS.items():
        user = User(email=f"{name}@example.com", display_name=name.title(), password_hash=password_hash,
                    role=info["role"], active=info["active"])
        db.session.add(user)
        db.session.flush()
        db.session.add_all(Membership(user_id=user.id, group_id=groups[g].id) for g in info["groups"])
    db.session.commit()


def seed_portal(app, client) -> Seed:
    """Fill the (empty, migrated) portal database of ``app``; returns what tests need to know."""
    _users(app)
    publisher = new_publisher_token("seed-publisher")
    revoked = new_publisher_token("seed-revoked")
    db.session.scalars(sa.select(PublisherToken).where(PublisherToken.name == "seed-revoked")).one().revoked_at = utcnow()
    db.session.commit()

    pdfs = {key: make_pdf(pages=2, marker=f"seed {key}") for key in _READERS}
    answers = {
        "w46": publish_ok(client, publisher, pdfs["w46"], run_id="r46", period_label="2026-W46", title="Weekly Statistics"),
        "w47": publish_ok(client, publisher, pdfs["w47"], run_id="r47", period_label="2026-W47"),
        "m11": publish_ok(client, publisher, pdfs["m11"], report="monthly_figures", run_id="r11", period_label="2026-11",
                          title="Monthly Figures", audience={"users": ["bob@example.com"]}),
    }
    weekly = db.session.scalars(sa.select(Report).where(Report.slug == "weekly_statistics")).one()
    finance = db.session.scalars(sa.select(Group).where(Group.name == "finance")).one()
    db.session.add(Grant(report_id=weekly.id, group_id=finance.id))  # weekly: a report grant; monthly: its own
    # weekly runs from the portal too: finance may ask for runs (as the worker described it)
    db.session.add(RunGrant(report_id=weekly.id, group_id=finance.id))
    db.session.add(ReportProfile(report_id=weekly.id, parameters=RUN_SCHEMA, owners=["carol@example.com"]))
    db.session.commit()
    publications = {key: Published(answers[key]["id"], answers[key]["report"], answers[key]["run_id"], pdfs[key])
                    for key in _READERS}
    seed = Seed(publisher, revoked, publications)
    for name in ("alice", "bob"):
        seed.sessions[name] = api_sign_in(client, seed.email(name))
    return seed
