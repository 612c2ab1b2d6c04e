"""The notification mails: one publication, or a user's daily digest.

Links are absolute: ``PUBLIC_URL``, else the scheme and host the publish request came to (stored
on the publication). Every mail carries ``List-Unsubscribe`` with its one-click link and
``List-Unsubscribe-Post`` (RFC 8058), and a Message-ID made from its job, so a mail sent again
after a crash (see :mod:`sender`) is recognisably the same mail.

Built with the ``email.mime`` classes rather than :func:`mail.compose`: thousands go out at
once, and the header objects of ``EmailMessage`` cost more CPU than everything else per mail. The
same checks apply (:func:`mail.checked_sender`, :func:`mail.checked_recipient`: no header
injection); bodies come from ``templates/mail/publication|digest.txt|html``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.policy import Compat32
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate
from pathlib import Path

from flask import Flask, render_template

from ..errors import MailError, StorageUnavailable
from ..mail import checked_recipient, checked_sender
from ..models import MailJob, Publication, User
from ..storage import store_for
from .unsubscribe import make_token

__all__ = ["Item", "link_base", "publication_mail", "digest_mail", "message_id"]

log = logging.getLogger(__name__)

class _Unfolded(Compat32):
    """compat32 (plain string headers) written as they are: no folding, no re-encoding.

    Every value set here is ASCII already (RFC 2047 words for names and subjects, base64 bodies)
    and far below the 998-character line limit; folding them cost more CPU than the rest of a
    mail, and a folded ``List-Unsubscribe`` starts with whitespace some parsers keep.
    """

    def fold(self, name: str, value: str) -> str:
        return f"{name}: {value}{self.linesep}"

    def fold_binary(self, name: str, value: str) -> bytes:
        return self.fold(name, value).encode("ascii")


_POLICY = _Unfolded()


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


@functools.cache
def _adapter(app: Flask):
    return app.url_map.bind("localhost")  # paths only: the base (scheme, host, prefix) is prepended


def _path(app: Flask, endpoint: str, **values) -> str:
    return _adapter(app).build(endpoint, values)


def _item(app: Flask, base: str, publication: Publication) -> Item:
    # The report page with the publication's variant chosen, as the publish answer's page_url.
    variant = {"variant": publication.variant_label} if publication.variant_label else {}
    return Item(title=publication.report.title, variant=publication.variant_label,
                period=publication.period_label, summary=publication.summary or "", version=publication.version,
                link=base + _path(app, "pages.report", slug=publication.report.slug, **variant))


def _message(app: Flask, template: str, user: User, subject: str, unsubscribe: str, base: str, **context) -> Message:
    sender = checked_sender(app.config["NBPRESS"]["MAIL_FROM"])
    recipient = checked_recipient(user.display_name, user.email)
    if not recipient.addr_spec.isascii():  # the headers are written as ASCII (see _Unfolded)
        raise MailError("refused: an address with non-ASCII characters (SMTPUTF8 is not used)")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in subject):
        raise MailError("refused: the subject contains a control character (CR/LF)")
    values = dict(name=user.display_name or user.email, unsubscribe=unsubscribe, portal_url=base,
                  account=base + _path(app, "auth.account"), **context)
    message = MIMEMultipart("alternative", policy=_POLICY)
    message.attach(MIMEText(render_template(f"mail/{template}.txt", **values), "plain", "utf-8", policy=_POLICY))
    message.attach(MIMEText(render_template(f"mail/{template}.html", **values), "html", "utf-8", policy=_POLICY))
    message["From"] = formataddr((sender.display_name, sender.addr_spec), charset="utf-8")
    message["To"] = formataddr((recipient.display_name, recipient.addr_spec), charset="utf-8")
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode(maxlinelen=998)
    message["Date"] = formatdate(usegmt=True)
    message["Auto-Submitted"] = "auto-generated"
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.domain = sender.domain or "localhost"  # for the Message-ID, set by the callers
    return message


def publication_mail(app: Flask, job: MailJob, publication: Publication, user: User) -> Message:
    base = link_base(app, publication)
    item = _item(app, base, publication)
    unsubscribe = base + _path(app, "notifications.unsubscribe", token=make_token(user.public_id, [publication.report_id]))
    subject = "New: " + " · ".join(part for part in (item.title, item.variant, item.period) if part)
    message = _message(app, "publication", user, subject[:200], unsubscribe, base, item=item)
    message["Message-ID"] = message_id(job, publication, user, message.domain)
    return _attach(app, message, publication)


def _attach(app: Flask, message: Message, publication: Publication) -> Message:
    """The PDF, when the report asks for it and it is under ``NOTIFY_ATTACH_MAX_MB``."""
    if not publication.attach_pdf or publication.size > app.config["NBPRESS"]["NOTIFY_ATTACH_MAX_MB"] * 1024 * 1024:
        return message
    data = _pdf_bytes(app, publication)
    if data is None:
        return message
    mixed = MIMEMultipart("mixed", policy=_POLICY)
    for name, value in message.items():
        if name.lower() not in ("content-type", "mime-version"):
            mixed[name] = value
    body = MIMEMultipart("alternative", policy=_POLICY)
    for part in message.get_payload():
        body.attach(part)
    mixed.attach(body)
    pdf = MIMEApplication(data, "pdf", policy=_POLICY)
    pdf.add_header("Content-Disposition", "attachment", filename=f"{publication.report.slug}-v{publication.version}.pdf")
    mixed.attach(pdf)
    return mixed


def _pdf_bytes(app: Flask, publication: Publication) -> bytes | None:
    """The publication's PDF from the app's store (the folder, or S3 when ``FILES_URL`` is set).

    None when it is gone, or when the object store cannot answer now: the mail still goes, with
    its link, rather than waiting on the store (one log line says why it has no attachment)."""
    store = store_for(app)
    try:
        found = store.locate(publication.sha256)
        if isinstance(found, Path):
            return found.read_bytes()
        body = None if found is None else store.open_range(publication.sha256, 0, found.size)
        data = None if body is None else b"".join(store.chunks(body, sha256=publication.sha256))
    except StorageUnavailable as exc:
        log.warning("publication %s: mailed without its PDF: %s", publication.public_id, exc)
        return None
    if data is not None and len(data) != found.size:  # the store's read stopped mid-way (chunks logged why)
        log.warning("publication %s: mailed without its PDF: the object store's answer ended short", publication.public_id)
        return None
    return data


def digest_mail(app: Flask, jobs: list[MailJob], publications: list[Publication], user: User) -> Message:
    """One mail listing every publication of ``jobs`` (in the order given)."""
    base = link_base(app, publications[0])
    items = [_item(app, base, p) for p in publications]
    token = make_token(user.public_id, [p.report_id for p in publications])
    unsubscribe = base + _path(app, "notifications.unsubscribe", token=token)
    subject = f"Notebook Press: {len(items)} new report{'s' if len(items) != 1 else ''}"
    message = _message(app, "digest", user, subject, unsubscribe, base, items=items)
    message["Message-ID"] = message_id(min(jobs, key=lambda j: j.id), publications[0], user, message.domain)
    return message
