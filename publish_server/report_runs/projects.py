"""The project rule for publisher tokens.

A token with a ``project`` acts only on that project's reports; a report without a project is
taken by the first project token that publishes or describes it (one conditional UPDATE, so
two tokens racing for it cannot both win), and until then no project token may withdraw from
it, report its runs or serve its requests; a token without a project (made before projects
existed) acts on every report, as it always did. Every publisher endpoint goes through
:func:`authorize`.
"""

from __future__ import annotations

from sqlalchemy import update

from ..errors import WrongProject
from ..extensions import db
from ..models import PublisherToken, Report

__all__ = ["authorize", "acts_on"]


def acts_on(token: PublisherToken, report: Report) -> bool:
    """May ``token`` act on ``report`` as it stands (no claiming)?"""
    return token.project is None or report.project == token.project


def authorize(token: PublisherToken, report: Report, *, take: bool = False) -> None:
    """Refuse (403 wrong_project) a report of another project; with ``take`` (publishing and
    describing) first take a project-less report for the token's project. The caller commits."""
    if take and token.project is not None and report.project is None:
        db.session.execute(update(Report).where(Report.id == report.id, Report.project.is_(None)).values(project=token.project))
        db.session.refresh(report, ["project"])  # the winner's project if another token was first
    if not acts_on(token, report):
        error = WrongProject(f"This token acts for project {token.project!r}; report {report.slug!r} belongs to another project.")
        error.audit_reason = "wrong_project"
        raise error
