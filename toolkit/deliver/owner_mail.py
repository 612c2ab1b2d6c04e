"""Owner notifications over SMTP for unattended runs (the scheduler), configured like the portal.

The variables are the portal's mail settings with the portal's defaults, declared for the
toolkit in :mod:`toolkit.settings` (docs/toolkit-settings.md), so an operator configures mail
once: ``NBPRESS_MAIL_URL`` (``smtp+starttls://host:587``, ``smtps://host:465``, or
``smtp://host:25`` for a relay on this machine, never with a login), ``NBPRESS_MAIL_FROM``,
``NBPRESS_MAIL_USERNAME`` / ``NBPRESS_MAIL_PASSWORD`` (sent only over TLS), and the EHLO,
timeout and certificate settings. Unset (or ``file:...``): messages stay ``notification.eml``
files in the run folders (:class:`~toolkit.deliver.owner_notice.RunFolderMailer`).

The run folder always gets its copy first; a mail server that is down is logged, never fatal to
the run. (The toolkit never imports the portal: this is a small sibling of its SMTP mailer.)
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .. import settings
from ..errors import UsageError
from .owner_notice import Notification, RunFolderMailer

__all__ = ["SmtpOwnerMailer", "owner_mailer_from_env"]

log = logging.getLogger("nbpress.notify")
_SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("ssl", 465)}


@dataclass
class SmtpOwnerMailer:
    """Write ``notification.eml`` into the run folder, then send the message with smtplib."""

    host: str
    port: int
    security: str  # plain | starttls | ssl
    sender: str = settings.default("MAIL_FROM")
    ehlo: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 10.0
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    def describe(self) -> str:
        scheme = {"plain": "smtp", "starttls": "smtp+starttls", "ssl": "smtps"}[self.security]
        return f"{scheme}://{self.host}:{self.port}"

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file or None)  # certificate and host name checked
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file or None)
        return context

    def send(self, notification: Notification) -> None:
        RunFolderMailer().send(notification)  # the evidence, whatever happens to the mail
        local = self.ehlo or None
        try:
            if self.security == "ssl":
                connection = smtplib.SMTP_SSL(self.host, self.port, local_hostname=local, timeout=self.timeout,
                                              context=self._context())
            else:
                connection = smtplib.SMTP(self.host, self.port, local_hostname=local, timeout=self.timeout)
            with connection as smtp:
                smtp.ehlo()
                if self.security == "starttls":
                    smtp.starttls(context=self._context())
                    smtp.ehlo()  # capabilities change once encrypted
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(notification.as_email(self.sender))
        except (smtplib.SMTPException, OSError) as exc:  # TLS errors and timeouts are OSErrors
            log.error("owner %s not mailed via %s (%s: %s); the message is in %s", notification.to, self.describe(),
                      type(exc).__name__, exc, notification.run_dir)
            return
        log.info("owner %s mailed via %s: %s", notification.to, self.describe(), notification.subject)


def owner_mailer_from_env(environ: Mapping[str, str] | None = None) -> SmtpOwnerMailer | None:
    """The SMTP mailer the environment configures, or None (run-folder files only)."""
    get = lambda name: settings.get(name, environ)  # noqa: E731  (declared in toolkit/settings.py)
    url = get("MAIL_URL").strip()
    parts = urlsplit(url)
    if not url or parts.scheme.lower() not in _SCHEMES:
        if url and parts.scheme.lower() not in {"file", "memory"}:
            raise UsageError("NBPRESS_MAIL_URL: use smtp+starttls://, smtps://, smtp:// (or file:FOLDER for no mail)")
        return None
    security, default_port = _SCHEMES[parts.scheme.lower()]
    if parts.username or parts.password:
        raise UsageError("NBPRESS_MAIL_URL: put the login in NBPRESS_MAIL_USERNAME / NBPRESS_MAIL_PASSWORD, not in the URL")
    if not parts.hostname:
        raise UsageError("NBPRESS_MAIL_URL: needs a host")
    try:
        port = parts.port or default_port
    except ValueError:
        raise UsageError("NBPRESS_MAIL_URL: the port is not a number") from None
    sender = get("MAIL_FROM").strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in sender) or "@" not in sender:
        raise UsageError("NBPRESS_MAIL_FROM: expected 'Name <address>' or an address, on one line")
    username = get("MAIL_USERNAME")
    if username and security == "plain":
        raise UsageError("NBPRESS_MAIL_USERNAME: logging in needs TLS (smtp+starttls:// or smtps://)")
    return SmtpOwnerMailer(
        host=parts.hostname, port=port, security=security, sender=sender, ehlo=get("MAIL_EHLO"), username=username,
        password=get("MAIL_PASSWORD"), timeout=float(get("MAIL_TIMEOUT_SECONDS")), ca_file=get("MAIL_CA_FILE"),
        cert_file=get("MAIL_CERT_FILE"), key_file=get("MAIL_KEY_FILE"),
    )
