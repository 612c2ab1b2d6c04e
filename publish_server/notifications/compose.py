"""The notification mails: one publication, or a user's daily digest.

Links are absolute: ``PUBLIC_URL``, else the scheme and host the publish request came to (stored
on the publication). Every mail carries ``List-Unsubscribe`` with its one-click link and
``List-Unsubscribe-Post`` (RFC 8058), and a Message-ID made from its job, so a mail sent again
after a crash (see :mod:`sender`) is recognisably the same mail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage

from flask import Flask, url_for

from ..mail import compose
from ..models import MailJob, Publication, User
from ..storage import FileStore
from .unsubscribe import make_token

__all__ = ["Item", "link_base", "publication_mail", "digest_mail", "message_id"]


@dataclass(frozen=True)
class Item:
    """One publication as a mail shows it."""

    title: str
    variant: str
    period: str
    summary: str
    version: int
    link: str


def link_base(app: Flask, publication: Publication) -> str:
    return app.config["NBPRESS"]["PUBLIC_URL"] or publication.link_base or "http://localhost"


def message_id(job: MailJob, publication: Publication, user: User, domain: str) -> str:
    """The same for every try of this job; unguessable parts keep two instances' ids apart."""
    salt = hashlib.sha256(f"{publication.public_id}:{user.public_id}".encode()).hexdigest()[:16]
    return f"<nbpress.{job.kind}.{job.id}.{salt}@{domain}>"


def _item(publication: Publication) -> Item:
    return Item(title=publication.report.title, variant=getattr(publication, "variant_label", "") or "",
                period=publication.period_label, summary=publication.summary or "", version=publication.version,
                link=url_for("pages.report", slug=publication.report.slug, _external=True))


def _unsubscribe(message: EmailMessage, link: str) -> None:
    message["List-Unsubscribe"] = f"<{link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def _set_id(message: EmailMessage, value: str) -> None:
    del message["Message-ID"]
    message["Message-ID"] = value


def _domain(message: EmailMessage) -> str:
    return message["From"].addresses[0].domain or "localhost"


def publication_mail(app: Flask, job: MailJob, publication: Publication, user: User) -> EmailMessage:
    with app.test_request_context("/", base_url=link_base(app, publication) + "/"):
        item = _item(publication)
        unsubscribe = url_for("notifications.unsubscribe", token=make_token(user.public_id, [publication.report_id]), _external=True)
        subject = " · ".join(part for part in (item.title, item.variant, item.period) if part)
        message = compose("publication", to_name=user.display_name, to_address=user.email, subject=f"New: {subject}"[:200],
                          name=user.display_name or user.email, item=item, unsubscribe=unsubscribe,
                          account=url_for("auth.account", _external=True))
    _unsubscribe(message, unsubscribe)
    _set_id(message, message_id(job, publication, user, _domain(message)))
    _attach(app, message, publication)
    return message


def _attach(app: Flask, message: EmailMessage, publication: Publication) -> None:
    """The PDF, when the report asks for it and it is under ``NOTIFY_ATTACH_MAX_MB``."""
    if not publication.attach_pdf or publication.size > app.config["NBPRESS"]["NOTIFY_ATTACH_MAX_MB"] * 1024 * 1024:
        return
    path = FileStore(app.config["FILES_DIR"]).open_path(publication.sha256)
    if path is not None:
        name = f"{publication.report.slug}-v{publication.version}.pdf"
        message.add_attachment(path.read_bytes(), maintype="application", subtype="pdf", filename=name)


def digest_mail(app: Flask, jobs: list[MailJob], publications: list[Publication], user: User) -> EmailMessage:
    """One mail listing every publication of ``jobs`` (in the order given)."""
    first = publications[0]
    with app.test_request_context("/", base_url=link_base(app, first) + "/"):
        items = [_item(p) for p in publications]
        unsubscribe = url_for("notifications.unsubscribe", token=make_token(user.public_id, [p.report_id for p in publications]),
                              _external=True)
        message = compose("digest", to_name=user.display_name, to_address=user.email,
                          subject=f"Notebook Press: {len(items)} new report{'s' if len(items) != 1 else ''}",
                          name=user.display_name or user.email, items=items, unsubscribe=unsubscribe,
                          account=url_for("auth.account", _external=True))
    _unsubscribe(message, unsubscribe)
    _set_id(message, message_id(min(jobs, key=lambda j: j.id), first, user, _domain(message)))
    return message
