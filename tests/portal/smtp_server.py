"""A real SMTP server on loopback (aiosmtpd) and a throw-away PKI made with the openssl CLI.

Used by the mail tests, the sign-in tests that read codes from real mail, and the browser test.
"""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.helpers import free_port

SMTP_USER, SMTP_PASSWORD = "mailer", "smtp password for tests"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA the client is told to trust
    cert: Path  # server certificate for 127.0.0.1 / localhost, signed by ``ca``
    key: Path
    rogue_cert: Path  # self-signed, for the same names: must be refused
    rogue_key: Path


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=nbpress test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=folder)
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=folder)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", cwd=folder)
    return Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "rogue.pem", folder / "rogue.key")


@dataclass
class Inbox:
    """What the server accepted; ``refuse`` makes it answer 5xx to DATA."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: str = ""
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return self.refuse
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER \
            and auth_data.password.decode() == SMTP_PASSWORD
        if ok:
            self.logins.append(f"{mechanism}:{auth_data.login.decode()}")
        return AuthResult(success=ok, handled=False)  # handled=True (the default) would leave a refusal unanswered

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def code_in(message: EmailMessage) -> str:
    found = re.search(r"^\s+(\d{6,10})\s*$", text_of(message), re.MULTILINE)
    assert found, "no code in the message"
    return found.group(1)


class SmtpServer:
    """``with SmtpServer(mode=...) as server:`` -> ``server.port``, ``server.inbox``.

    mode: "plain", "starttls" (TLS required before AUTH and MAIL), "ssl" (implicit TLS).
    """

    def __init__(self, mode: str = "plain", *, cert: Path | None = None, key: Path | None = None, auth: bool = False):
        import ssl

        self.mode, self.inbox, self.port = mode, Inbox(), free_port()
        kwargs: dict = {}
        if mode in ("starttls", "ssl"):
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert), str(key))
            if mode == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        if auth:
            # aiosmtpd advertises AUTH under implicit TLS only when not told to require STARTTLS
            kwargs.update(authenticator=self.inbox.authenticate, auth_required=True, auth_require_tls=mode != "ssl")
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
