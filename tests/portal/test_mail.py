"""The mailer against a real SMTP server on loopback (aiosmtpd) with a CA made by openssl.

Plain, STARTTLS + AUTH, implicit TLS, a refusing server, a server that is down, an untrusted
certificate (the client must refuse to send), and header injection. No database is needed, so
these run once (not per database).
"""

from __future__ import annotations

import email
import email.policy
import logging
import time

import pytest

from publish_server import create_app
from publish_server.errors import ConfigError, MailError
from publish_server.mail import FileOutbox, RecordingMailer, SmtpMailer, compose, mailer, parse_mail_url, send_template
from tests.helpers import free_port

from .conftest import base_config
from .smtp_server import SMTP_PASSWORD, SMTP_USER, SmtpServer, make_pki, text_of


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mail_app(tmp_path):
    app = create_app(base_config(MAIL_URL="memory:", MAIL_FROM="Notebook Press <press@example.org>"), instance_path=tmp_path / "i")
    with app.test_request_context():
        yield app


def message(**overrides):
    fields = {"to_name": "Ana", "to_address": "ana@example.org", "subject": "Your sign-in code",
              "name": "Ana", "code": "12345678", "minutes": 10, "when": "2026-01-01 10:00", "ip": "192.0.2.1", **overrides}
    return compose("code", **fields)


def test_compose_has_plain_text_and_html_bodies_from_templates(mail_app):
    built = message(name="<b>Ana</b>")
    assert built["From"].addresses[0].addr_spec == "press@example.org" and str(built["To"]) == "Ana <ana@example.org>"
    assert "12345678" in text_of(built) and "<b>Ana</b>" in text_of(built)  # plain text is not HTML-escaped
    html = built.get_body(preferencelist=("html",)).get_content()
    assert "&lt;b&gt;Ana&lt;/b&gt;" in html and "<strong>12345678</strong>" in html


@pytest.mark.parametrize("field", ["to_address", "subject"])
@pytest.mark.parametrize("bad", ["x\r\nBcc: evil@example.com", "x\nBcc: evil@example.com", "x\rX: y"])
def test_cr_lf_in_addresses_and_subjects_is_refused(mail_app, field, bad):
    value = bad if field != "to_address" else f"ana@example.org{bad}"
    with pytest.raises(MailError, match="control character"):
        message(**{field: value})


@pytest.mark.parametrize(("bad", "shown"), [
    ("x\r\nBcc: evil@example.com", "x Bcc: evil@example.com"),
    ("x\nBcc: evil@example.com", "x Bcc: evil@example.com"),
    ("x\rX: y", "x X: y"),
    ("x\u2028Bcc: evil@example.com", "x Bcc: evil@example.com"),
    ("x\x85Bcc: evil@example.com", "x Bcc: evil@example.com"),
    ("x\x00\x1b[2J\u202e", "x [2J"),
])
def test_control_characters_in_a_recipients_name_are_replaced_not_sent(mail_app, bad, shown):
    """Names come from the database (old rows may hold anything): the mail goes out, with no extra header."""
    built = message(to_name=bad)
    [address] = built["To"].addresses
    assert address.addr_spec == "ana@example.org" and address.display_name == shown
    sent = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    assert sent["Bcc"] is None and sent["X"] is None and sent["To"].addresses[0].display_name == shown
    head = built.as_string().partition("\n\n")[0]
    assert not any(ch in head for ch in "\r\x00\x1b\x85\u2028\u202e")


def test_a_sender_with_cr_lf_is_refused(tmp_path):
    app = create_app(base_config(MAIL_URL="memory:", MAIL_FROM="Press <p@example.org>\r\nBcc: x@evil.com"), instance_path=tmp_path / "i")
    with app.test_request_context(), pytest.raises(MailError):
        message()


def test_plain_smtp_delivers(mail_app):
    with SmtpServer("plain") as server:
        SmtpMailer("127.0.0.1", server.port, "plain", ehlo="portal.test", timeout=5).send(message())
    [got] = server.inbox.messages
    assert got["Subject"] == "Your sign-in code" and "12345678" in text_of(got)


def test_starttls_with_a_private_ca_and_login(mail_app, pki):
    with SmtpServer("starttls", cert=pki.cert, key=pki.key, auth=True) as server:
        SmtpMailer("127.0.0.1", server.port, "starttls", username=SMTP_USER, password=SMTP_PASSWORD,
                   ca_file=str(pki.ca), timeout=5).send(message())
    assert len(server.inbox.messages) == 1
    assert [entry.split(":")[1] for entry in server.inbox.logins] == [SMTP_USER]


def test_starttls_login_with_a_wrong_password_fails_cleanly(mail_app, pki):
    with SmtpServer("starttls", cert=pki.cert, key=pki.key, auth=True) as server:
        with pytest.raises(MailError, match="535"):  # aiosmtpd answers 535
            SmtpMailer("127.0.0.1", server.port, "starttls", username=SMTP_USER, password="wrong",
                       ca_file=str(pki.ca), timeout=2).send(message())
    assert server.inbox.messages == []


def test_implicit_tls(mail_app, pki):
    with SmtpServer("ssl", cert=pki.cert, key=pki.key, auth=True) as server:
        SmtpMailer("127.0.0.1", server.port, "ssl", username=SMTP_USER, password=SMTP_PASSWORD,
                   ca_file=str(pki.ca), timeout=5).send(message())
    assert len(server.inbox.messages) == 1


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_refused_before_anything_is_sent(mail_app, pki, mode):
    with SmtpServer(mode, cert=pki.rogue_cert, key=pki.rogue_key, auth=True) as server:
        with pytest.raises(MailError, match="SSLCertVerificationError|CERTIFICATE_VERIFY_FAILED"):
            SmtpMailer("127.0.0.1", server.port, mode, username=SMTP_USER, password=SMTP_PASSWORD,
                       ca_file=str(pki.ca), timeout=5).send(message())
    assert server.inbox.messages == [] and server.inbox.logins == []


def test_the_system_trust_store_does_not_trust_the_test_ca(mail_app, pki):
    with SmtpServer("starttls", cert=pki.cert, key=pki.key) as server:
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED|SSLCertVerificationError"):
            SmtpMailer("127.0.0.1", server.port, "starttls", timeout=5).send(message())
    assert server.inbox.messages == []


def test_a_server_that_refuses_gives_a_mail_error(mail_app):
    with SmtpServer("plain") as server:
        server.inbox.refuse = "554 5.7.1 Message refused"
        with pytest.raises(MailError, match="554"):
            SmtpMailer("127.0.0.1", server.port, "plain", timeout=5).send(message())


def test_a_server_that_is_down_gives_a_mail_error_quickly(mail_app):
    started = time.monotonic()
    with pytest.raises(MailError, match="ConnectionRefusedError"):
        SmtpMailer("127.0.0.1", free_port(), "plain", timeout=2).send(message())
    assert time.monotonic() - started < 3


def test_login_without_tls_is_refused_at_configuration():
    with pytest.raises(ConfigError, match="needs TLS"):
        SmtpMailer("127.0.0.1", 25, "plain", username="u", password="p")


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp+starttls://mail.example.org", ("smtp", "starttls", "mail.example.org", 587)),
    ("smtps://mail.example.org:2465", ("smtp", "ssl", "mail.example.org", 2465)),
    ("smtp://localhost", ("smtp", "plain", "localhost", 25)),
])
def test_mail_urls(url, expected):
    target = parse_mail_url(url)
    assert (target.kind, target.security, target.host, target.port) == expected


@pytest.mark.parametrize("url", ["http://x", "smtp://", "smtps://user:pw@host", "file:", "smtp://host:port"])
def test_bad_mail_urls_stop_start_up(tmp_path, url):
    with pytest.raises(ConfigError, match="MAIL_URL"):
        create_app(base_config(MAIL_URL=url), instance_path=tmp_path / "i")


def test_the_file_outbox_writes_eml_and_logs_the_path_not_the_code(tmp_path, caplog):
    app = create_app(base_config(MAIL_URL="file:outbox"), instance_path=tmp_path / "i")
    with app.test_request_context():
        assert isinstance(mailer(), FileOutbox)
        with caplog.at_level(logging.WARNING, logger="publish_server.mail"):
            send_template("code", to_name="Ana", to_address="ana@example.org", subject="Your sign-in code",
                          name="Ana", code="87654321", minutes=10, when="now", ip="192.0.2.1")
    [written] = (tmp_path / "i" / "outbox").glob("*.eml")
    assert b"87654321" in written.read_bytes()
    assert str(written) in caplog.text and "87654321" not in caplog.text


def test_the_recording_backend_keeps_messages(mail_app):
    send_template("code", to_name="Ana", to_address="ana@example.org", subject="S", name="Ana", code="1", minutes=1, when="w", ip="i")
    assert isinstance(mailer(), RecordingMailer) and len(mailer().sent) == 1
