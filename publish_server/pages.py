"""Recipients' pages: report list, report history, downloads (blueprint ``pages``).

Views are thin: they read the query string, call the small services below (which never touch
``request``) and render. Everything a user sees comes through :mod:`access`, so a publication
that is not granted is absent from lists and answers 404 when asked for by id (guessed or not).
Files are found by the server-stored SHA-256 only; nothing a client sends becomes a path.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app, render_template, request
from flask_jwt_extended import get_current_user
from sqlalchemy import or_
from werkzeug.http import is_resource_modified
from werkzeug.wsgi import wrap_file

from . import access, audit, download_gate, variants
from .errors import Gone, NotFound
from .extensions import db
from .rate_limits import unlimited
from .security_headers import PDF_VIEW_CSP
from .models import Publication, Report, User
from .signin.session import login_required_page
from .object_downloads import object_response
from .storage import StoredObject, relative_path, store_for

__all__ = ["bp", "ReportGroup", "VariantGroup", "PeriodGroup", "list_groups", "report_history", "report_variants", "search_condition",
           "download_name", "publication_path", "file_response", "audited_download"]

log = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)

COLLAPSED = 5  # versions per report on the unfiltered list; the report page has them all
ROW_CAP = 2000  # rows read for one list page: a bound on work, not a feature
QUERY_MAX = 100


# --- services (no request in here) ----------------------------------------------------------


@dataclass
class PeriodGroup:
    """One period of one variant: its latest version, and the earlier ones (newest first)."""

    label: str
    latest: Publication
    earlier: list[Publication] = field(default_factory=list)

    @property
    def first(self) -> Publication:
        return self.earlier[-1] if self.earlier else self.latest


@dataclass
class VariantGroup:
    label: str  # "" for a report without variants
    periods: list[PeriodGroup] = field(default_factory=list)


@dataclass
class ReportGroup:
    report: Report
    publications: list[Publication] = field(default_factory=list)  # newest first
    withdrawn: list[Publication] = field(default_factory=list)  # shown with their reasons, never served

    @property
    def total(self) -> int:
        return len(self.publications)

    @property
    def variants(self) -> list[VariantGroup]:
        """report -> variant -> periods. Variants by their newest publication; periods newest first
        by their first version (a re-run of an old week does not move it above a newer week)."""
        variants: dict[str, VariantGroup] = {}
        periods: dict[tuple[str, str], PeriodGroup] = {}
        for publication in self.publications:  # newest first
            key = (publication.variant_label, publication.period_label)
            if key in periods:
                periods[key].earlier.append(publication)
                continue
            periods[key] = PeriodGroup(publication.period_label, publication)
            variants.setdefault(publication.variant_label, VariantGroup(publication.variant_label)).periods.append(periods[key])
        for variant in variants.values():
            variant.periods.sort(key=lambda p: (p.first.created_at, p.first.id), reverse=True)
        return list(variants.values())


def search_condition(query: str):
    """Publications whose report title or slug, period or variant label, or search text (the
    parameter values readers see, the ISO weeks of dates) holds ``query``; a date also finds its
    ISO week. The same for pages and the API."""
    terms = [_like_escaped(term) for term in variants.query_terms(query)]
    return or_(*(condition for pattern in terms for condition in (
        db.func.lower(Report.title).like(pattern, escape="\\"),
        db.func.lower(Report.slug).like(pattern, escape="\\"),
        db.func.lower(Publication.period_label).like(pattern, escape="\\"),
        db.func.lower(Publication.variant_label).like(pattern, escape="\\"),
        Publication.search_text.like(pattern, escape="\\"),
    )))


def _like_escaped(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_groups(user: User, *, report_slug: str = "", query: str = "", variant: str | None = None) -> tuple[list[ReportGroup], bool]:
    """The publications ``user`` may read, grouped by report, newest first (groups too).

    Returns the groups and whether the row cap cut the list short.
    """
    stmt = access.active(access.visible_publications(user)).order_by(None)
    if report_slug:
        stmt = stmt.where(Report.slug == report_slug)
    if variant is not None:
        stmt = stmt.where(Publication.variant_label == variant)
    if query:
        stmt = stmt.where(search_condition(query))
    stmt = stmt.order_by(Publication.created_at.desc(), Publication.version.desc()).limit(ROW_CAP + 1)
    rows = list(db.session.scalars(stmt))
    truncated = len(rows) > ROW_CAP
    groups: dict[int, ReportGroup] = {}
    for publication in rows[:ROW_CAP]:  # newest first, so groups come out ordered by their newest
        groups.setdefault(publication.report_id, ReportGroup(publication.report)).publications.append(publication)
    return list(groups.values()), truncated


def report_history(user: User, slug: str, variant: str | None = None) -> ReportGroup:
    """A report and every version ``user`` may read (of one ``variant`` when given), newest
    first; 404 when there is none (no existence leak)."""
    if not isinstance(slug, str) or not (1 <= len(slug) <= 64) or _CONTROL.search(slug):
        raise NotFound()
    stmt = access.visible_publications(user).order_by(None).where(Report.slug == slug)
    if variant is not None:
        stmt = stmt.where(Publication.variant_label == variant)
    publications = list(db.session.scalars(stmt.order_by(Publication.created_at.desc(), Publication.id.desc())))
    if not publications:
        raise NotFound()
    current = [p for p in publications if p.withdrawn_at is None]
    return ReportGroup(publications[0].report, current, [p for p in publications if p.withdrawn_at is not None])


def report_variants(user: User, report: Report) -> list[str]:
    """The variant labels of ``report`` that ``user`` may read (for the report page's chooser)."""
    stmt = access.visible_publications(user).order_by(None).where(Publication.report_id == report.id)
    stmt = stmt.with_only_columns(Publication.variant_label).distinct().order_by(Publication.variant_label)
    return [label for label in db.session.scalars(stmt) if label]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # what models.new_public_id makes
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(text: str, limit: int) -> str:
    """Query-string input fit for a SQL parameter: no control characters (PostgreSQL refuses NUL)."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def _clean(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("._-")


def download_name(publication: Publication | access.Downloadable) -> str:
    """``weekly_statistics-north-v3-2026-W47.pdf``: only ``[A-Za-z0-9._-]``, never a leading dot."""
    slug = publication.report_slug if isinstance(publication, access.Downloadable) else publication.report.slug
    parts = [_clean(slug)[:64] or "report"]
    variant = _clean(publication.variant_label or "")[:60]
    if variant:
        parts.append(variant)
    parts.append(f"v{publication.version}")
    period = _clean(publication.period_label or "")[:60]
    if period:
        parts.append(period)
    return "-".join(parts) + ".pdf"


def publication_path(publication: Publication | access.Downloadable):
    """The stored file (a path, or an object in object storage), located by the hash recorded at
    publish time; 404 if it went missing, 503 when the object store fails."""
    path = store_for(current_app).locate(publication.sha256)
    if path is None:
        # Operator problem (files folder lost or moved): say so in the log, not to the user.
        log.error("file for publication %s (sha256 %s) is missing from the store", publication.public_id, publication.sha256)
        raise NotFound()
    return path


def _sent_file(path, *, etag: str, last_modified, disposition: str) -> Response:
    """Werkzeug's ``send_file`` for a file whose type, name and cache rule are known: the same
    open file in the server's ``wsgi.file_wrapper`` (sendfile under gunicorn) and the same
    ``make_conditional`` (304, 206 ranges, 416), without guessing a MIME type, encoding a name
    that is ASCII by construction, or building cache headers that the answer then replaces."""
    file = open(path, "rb")
    try:
        size = os.fstat(file.fileno()).st_size
        response = Response(wrap_file(request.environ, file), mimetype="application/pdf", direct_passthrough=True)
        response.content_length = size
        response.last_modified = last_modified
        response.set_etag(etag)
        response.headers["Content-Disposition"] = disposition
        return response.make_conditional(request.environ, accept_ranges=True, complete_length=size)
    except BaseException:
        file.close()
        raise


def file_response(publication: access.Downloadable, path, *, inline: bool = False) -> Response:
    """The PDF answer, once access is checked and the download audited.

    By default the portal sends the file (:func:`_sent_file`: conditional requests, ranges;
    gunicorn hands the open file to ``sendfile``). With ``ACCEL_REDIRECT_PREFIX`` set, the answer carries the same headers
    and no body, and ``X-Accel-Redirect`` names the stored file for the front server to send: a
    path made only of the prefix and the server-recorded SHA-256, never of anything the client sent.
    """
    name = download_name(publication)
    prefix = current_app.config["NBPRESS"]["ACCEL_REDIRECT_PREFIX"]
    if isinstance(path, StoredObject):  # FILES_URL: object storage (ACCEL_REDIRECT_PREFIX is refused with it)
        response = object_response(path, etag=publication.sha256, last_modified=publication.created_at,
                                   disposition=f"{'inline' if inline else 'attachment'}; filename={name}")  # name is [A-Za-z0-9._-]
    elif not prefix:
        response = _sent_file(path, etag=publication.sha256, last_modified=publication.created_at,
                              disposition=f"{'inline' if inline else 'attachment'}; filename={name}")  # name is [A-Za-z0-9._-]
    elif not is_resource_modified(request.environ, etag=publication.sha256, last_modified=publication.created_at):
        response = Response(status=304)  # answered here: nothing for the front server to send
    else:
        response = Response(mimetype="application/pdf")
        response.headers["X-Accel-Redirect"] = f"{prefix}/{relative_path(publication.sha256)}"
        response.headers["Content-Disposition"] = f"{'inline' if inline else 'attachment'}; filename={name}"  # name is [A-Za-z0-9._-]
    if prefix:
        response.set_etag(publication.sha256)
        response.last_modified = publication.created_at
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    if inline:
        response.headers["Content-Security-Policy"] = PDF_VIEW_CSP
    return response


def human_size(size: int | None) -> str:
    if size is None:
        return "–"
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - loop always returns


# --- views -----------------------------------------------------------------------------------


@bp.app_template_filter("filesize")
def _filesize(size: int | None) -> str:
    return human_size(size)


@bp.app_template_filter("published")
def _published(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _signed_in() -> User:
    user = get_current_user()  # loaded by login_required_page; None would be a wiring bug
    if user is None:
        raise NotFound()
    return user


@bp.get("/")
@login_required_page
def index():
    user = _signed_in()
    report_slug = _printable(request.args.get("report", "", type=str), 64)
    query = _printable(request.args.get("q", "", type=str), QUERY_MAX)
    groups, truncated = list_groups(user, report_slug=report_slug, query=query)
    reports = list(db.session.scalars(access.visible_reports(user)))
    collapse = not (report_slug or query)
    return render_template(
        "index.html", user=user, groups=groups, reports=reports, report_slug=report_slug,
        query=query, collapse=COLLAPSED if collapse else None, truncated=truncated,
    )


def _variant_arg() -> str | None:
    """``?variant=north``: one variant (an empty value: the report's publications without one)."""
    if "variant" not in request.args:
        return None
    return _printable(request.args.get("variant", "", type=str), variants.LABEL_MAX)


@bp.get("/reports/<slug>")
@login_required_page
def report(slug: str):
    user = _signed_in()
    variant = _variant_arg()
    group = report_history(user, slug, variant)
    # Only admins are told who else reads it: a recipient learns nothing of other people or groups.
    readers = access.report_readers(group.report, variant or None) if user.is_admin else None
    return render_template("report.html", user=user, group=group, readers=readers, variant=variant,
                           variant_labels=report_variants(user, group.report))


def audited_download(public_id: str, checked: download_gate.Checked, *, via: str, inline: bool = False, **detail) -> Response:
    """The file answer of a checked download (pages and API), its audit row committed first:
    404 for what this reader cannot see (or a lost file), 410 with the reason once withdrawn."""
    user_id = checked.reader.id
    try:
        publication = checked.publication  # None: unknown, malformed or not granted (one query: download_gate)
        if publication is None:
            raise NotFound()
        access.refuse_withdrawn(publication.withdrawn_at, publication.withdrawn_reason)
        path = publication_path(publication)  # found by the stored SHA-256, never by client input
    except (NotFound, Gone) as exc:
        requested = public_id if _PUBLIC_ID.fullmatch(public_id) else "(malformed)"
        audit.insert("download", "refused", user_id=user_id, via=via, **detail, reason=exc.code, requested=requested)
        db.session.commit()
        raise
    audit.insert("download", "ok", user_id=user_id, via=via, **detail, publication=publication.public_id)
    db.session.commit()  # the request boundary: the audit row is stored before bytes go out
    return file_response(publication, path, inline=inline)


@bp.get("/p/<public_id>/download")
@unlimited  # no limit applies to it: the limiter does not even look
@download_gate.page_download  # the token state and the grant rule in one query
def download(public_id: str, checked: download_gate.Checked):
    return audited_download(public_id, checked, via="page", mode="attachment")


@bp.get("/p/<public_id>/view")
@unlimited  # no limit applies to it: the limiter does not even look
@download_gate.page_download
def view(public_id: str, checked: download_gate.Checked):
    return audited_download(public_id, checked, via="page", mode="inline", inline=True)
