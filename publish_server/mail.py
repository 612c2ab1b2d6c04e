"""Outgoing mail: sign-in codes and sign-in notices, over SMTP or into a development outbox.

The transport is chosen by the ``MAIL_URL`` setting (see :func:`parse_mail_url`):

    smtp+starttls://host:587   STARTTLS (required) with a verified TLS context
    smtps://host:465           implicit TLS (SMTP over SSL)
    smtp://host:25             plain SMTP, for a relay on the same machine; never logs in
    file:outbox                ``.eml`` files in a folder (relative: under the instance folder)
    memory:                    kept in a list on the mailer (the test double of this seam)

TLS contexts come from :func:`ssl.create_default_context` (certificate and host name checked),
optionally with a private CA file and a client certificate. A username and password are sent
only over TLS. Every failure to deliver becomes :class:`errors.MailError`, whose text is for the log,
never for the user. Bodies come from ``templates/mail/<name>.txt`` and ``.html``; header
values (addresses, subjects, the sender) with CR, LF or other control characters are refused, so
no header can be injected. A recipient's display name comes from the database, where an old row
may hold such characters: they are replaced by spaces instead (:func:`text.without_controls`),
so that person's mail still goes out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import smtplib
import ssl
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from flask import current_app, has_request_context, render_template, request, url_for

from .errors import ConfigError, MailError, MailRefused
from .text import without_controls

__all__ = ["MailTarget", "parse_mail_url", "SmtpMailer", "FileOutbox", "RecordingMailer",
           "mailer", "compose", "send_template", "portal_url", "portal_link", "checked_sender", "checked_recipient"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailTarget:
    """A parsed ``MAIL_URL``."""

    kind: str  # "smtp" | "file" | "memory"
    security: str = "plain"  # "plain" | "starttls" | "ssl"
    host: str = ""
    port: int = 0
    path: str = ""


_DEFAULT_PORTS = {"plain": 25, "starttls": 587, "ssl": 465}
_SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "ssl"}


def parse_mail_url(url: str) -> MailTarget:
    """``MAIL_URL`` as a :class:`MailTarget`; :class:`ConfigError` (one line) when malformed."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return MailTarget("memory")
    if scheme == "file":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path:
            raise ConfigError("setting MAIL_URL: file: needs a folder, e.g. file:outbox")
        return MailTarget("file", path=path)
    if scheme in _SCHEMES:
        if parts.username or parts.password:
            raise ConfigError("setting MAIL_URL: put the login in MAIL_USERNAME / MAIL_PASSWORD, not in the URL")
        if not parts.hostname:
            raise ConfigError(f"setting MAIL_URL: {scheme}:// needs a host")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError("setting MAIL_URL: the port is not a number") from None
        security = _SCHEMES[scheme]
        return MailTarget("smtp", security=security, host=parts.hostname, port=port or _DEFAULT_PORTS[security])
    raise ConfigError("setting MAIL_URL: use smtp+starttls://, smtps://, smtp://, file:FOLDER or memory:")


def _check_header(value: str, what: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise MailError(f"refused: the {what} contains a control character (CR/LF)")
    return value


def _address(name: str, address: str) -> Address:
    _check_header(name, "name")
    _check_header(address, "address")
    if address.count("@") != 1 or any(ch in address for ch in " <>,;\"'"):
        raise MailError("refused: not a plain email address")
    user, domain = address.split("@")
    try:
        return Address(display_name=name, username=user, domain=domain)
    except (ValueError, TypeError) as exc:
        raise MailError(f"refused: {exc}") from None


def _sender(text: str) -> Address:
    """``MAIL_FROM``: ``Name <addr@host>`` or a bare address."""
    text = text.strip()
    if text.endswith(">") and "<" in text:
        name, _, address = text[:-1].rpartition("<")
        return _address(name.strip().strip('"'), address.strip())
    return _address("", text)


def checked_sender(text: str) -> Address:
    """``MAIL_FROM`` as an address; :class:`MailError` when it could inject a header."""
    return _sender(text)


def checked_recipient(name: str, address: str) -> Address:
    """A recipient (control characters in the name become spaces); :class:`MailError` for a bad address."""
    return _address(without_controls(name), address)


@dataclass
class SmtpMailer:
    """smtplib with the design's options; one connection per message (codes are rare)."""

    host: str
    port: int
    security: str
    ehlo: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 10.0
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    def __post_init__(self) -> None:
        if self.username and self.security == "plain":
            raise ConfigError("setting MAIL_USERNAME: logging in needs TLS (smtp+starttls:// or smtps://)")

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file or None)
        return context

    def _open(self) -> smtplib.SMTP:
        local = self.ehlo or None
        if self.security == "ssl":
            connection = smtplib.SMTP_SSL(self.host, self.port, local_hostname=local, timeout=self.timeout,
                                          context=self.tls_context())
        else:
            connection = smtplib.SMTP(self.host, self.port, local_hostname=local, timeout=self.timeout)
        try:
            connection.ehlo()
            if self.security == "starttls":
                connection.starttls(context=self.tls_context())
                connection.ehlo()  # the server's capabilities may change once encrypted
            if self.username:
                connection.login(self.username, self.password)
        except BaseException:
            connection.close()
            raise
        return connection

    def send(self, message: EmailMessage) -> None:
        with self.connection() as send:
            send(message)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Callable[[EmailMessage], None]]:
        """One SMTP connection for many messages (notifications): yields ``send(message)``.

        :class:`MailRefused` for a 5xx answer to one message (the connection stays usable),
        :class:`MailError` for anything else (connection refused or lost, 4xx, timeouts).
        """
        try:
            smtp = self._open()
        except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError and timeouts are OSErrors
            raise _mail_error(exc) from None

        def send(message: EmailMessage) -> None:
            try:
                smtp.send_message(message)
            except (smtplib.SMTPException, OSError) as exc:
                raise _mail_error(exc) from None

        try:
            yield send
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()


def _mail_error(exc: Exception) -> MailError:
    """A 5xx answer (every recipient refused with 5xx, too) is :class:`MailRefused`; the rest may pass."""
    codes = [code for code, _ in exc.recipients.values()] if isinstance(exc, smtplib.SMTPRecipientsRefused) \
        else [getattr(exc, "smtp_code", 0)]
    permanent = bool(codes) and all(isinstance(c, int) and 500 <= c < 600 for c in codes)
    return (MailRefused if permanent else MailError)(f"{type(exc).__name__}: {exc}")


def _one_by_one(mailer_) -> contextlib.AbstractContextManager:
    """``connection()`` for transports without one (outbox folder, recording list)."""
    return contextlib.nullcontext(mailer_.send)


@dataclass
class FileOutbox:
    """Development: each message becomes ``<folder>/<time>-<random>.eml``; the path is logged."""

    folder: Path

    def send(self, message: EmailMessage) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
            path = self.folder / f"{stamp}-{secrets.token_hex(4)}.eml"
            path.write_bytes(message.as_bytes())
        except OSError as exc:
            raise MailError(f"outbox: {exc}") from None
        log.warning("mail to the development outbox (not sent): %s", path)  # the path, never the body

    def connection(self):
        return _one_by_one(self)


@dataclass
class RecordingMailer:
    """The test double of the mail seam (``MAIL_URL = "memory:"``): messages kept in ``sent``."""

    sent: list[EmailMessage] = field(default_factory=list)

    def send(self, message: EmailMessage) -> None:
        self.sent.append(message)

    def connection(self):
        return _one_by_one(self)


def build_mailer(settings: dict[str, Any], instance: Path):
    target = parse_mail_url(settings["MAIL_URL"])
    if target.kind == "memory":
        return RecordingMailer()
    if target.kind == "file":
        folder = Path(target.path)
        return FileOutbox(folder if folder.is_absolute() else instance / folder)
    return SmtpMailer(host=target.host, port=target.port, security=target.security, ehlo=settings["MAIL_EHLO"],
                      username=settings["MAIL_USERNAME"], password=settings["MAIL_PASSWORD"],
                      timeout=settings["MAIL_TIMEOUT_SECONDS"], ca_file=settings["MAIL_CA_FILE"],
                      cert_file=settings["MAIL_CERT_FILE"], key_file=settings["MAIL_KEY_FILE"])


def mailer():
    """This app's mailer, built on first use from its settings."""
    found = current_app.extensions.get("nbpress.mailer")
    if found is None:
        found = current_app.extensions["nbpress.mailer"] = build_mailer(
            current_app.config["NBPRESS"], Path(current_app.instance_path))
    return found


def portal_url() -> str:
    """Where recipients reach the portal, for links in mails: ``PUBLIC_URL``, else this request's
    scheme and host (and script root); "" outside a request without ``PUBLIC_URL``."""
    configured = current_app.config["NBPRESS"]["PUBLIC_URL"]
    if configured or not has_request_context():
        return configured
    return request.url_root.rstrip("/")


def portal_link(endpoint: str, **values: Any) -> str:
    """An absolute link for a mail: ``PUBLIC_URL`` + the endpoint's path when set (the address
    recipients reach, whatever host a proxy forwarded), else this request's own."""
    configured = current_app.config["NBPRESS"]["PUBLIC_URL"]
    if not configured:
        return url_for(endpoint, _external=True, **values)
    return configured + current_app.url_map.bind("localhost").build(endpoint, values)


def compose(template: str, *, to_name: str, to_address: str, subject: str, **context: Any) -> EmailMessage:
    """A plain-text + HTML message from ``mail/<template>.txt`` and ``.html``."""
    settings = current_app.config["NBPRESS"]
    sender = _sender(settings["MAIL_FROM"])
    message = EmailMessage()
    message["From"] = sender
    message["To"] = _address(without_controls(to_name), to_address)
    message["Subject"] = _check_header(subject, "subject")
    message["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
    message["Message-ID"] = make_msgid(domain=sender.domain)
    message["Auto-Submitted"] = "auto-generated"
    context.setdefault("portal_url", portal_url())
    message.set_content(render_template(f"mail/{template}.txt", **context))
    message.add_alternative(render_template(f"mail/{template}.html", **context), subtype="html")
    return message


def send_template(template: str, **kwargs: Any) -> None:
    """Compose and send; :class:`MailError` on any failure (the caller decides what the user sees)."""
    mailer().send(compose(template, **kwargs))
