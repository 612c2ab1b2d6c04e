"""Owner e-mail over SMTP for unattended runs: a real aiosmtpd server on loopback, real TLS."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_notebook
from tests.portal.smtp_server import SMTP_PASSWORD, SMTP_USER, SmtpServer, make_pki, text_of
from toolkit.deliver.owner_mail import owner_mailer_from_env
from toolkit.deliver.owner_notice import Notification
from toolkit.errors import UsageError


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def notification(tmp_path: Path) -> Notification:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return Notification("owner@example.com", "[nbpress] weekly failed (r1)", "Failing cell: 3\n", run_dir)


def test_starttls_with_login_delivers_the_mail_and_keeps_the_run_folder_copy(tmp_path, pki):
    with SmtpServer("starttls", cert=pki.cert, key=pki.key, auth=True) as server:
        mailer = owner_mailer_from_env({
            "NBPRESS_MAIL_URL": f"smtp+starttls://127.0.0.1:{server.port}", "NBPRESS_MAIL_CA_FILE": str(pki.ca),
            "NBPRESS_MAIL_USERNAME": SMTP_USER, "NBPRESS_MAIL_PASSWORD": SMTP_PASSWORD,
            "NBPRESS_MAIL_FROM": "Reports <reports@example.com>",
        })
        sent = notification(tmp_path)
        mailer.send(sent)
    [message] = server.inbox.to("owner@example.com")
    assert message["Subject"] == sent.subject and "reports@example.com" in message["From"]
    assert text_of(message).strip() == "Failing cell: 3"
    assert server.inbox.logins and (sent.run_dir / "notification.eml").is_file()
    assert SMTP_PASSWORD not in repr(mailer)


def test_an_untrusted_server_is_refused_and_only_logged(tmp_path, pki, caplog):
    with SmtpServer("starttls", cert=pki.rogue_cert, key=pki.rogue_key) as server:
        mailer = owner_mailer_from_env({"NBPRESS_MAIL_URL": f"smtp+starttls://127.0.0.1:{server.port}",
                                        "NBPRESS_MAIL_CA_FILE": str(pki.ca)})
        sent = notification(tmp_path)
        with caplog.at_level(logging.ERROR, logger="nbpress.notify"):
            mailer.send(sent)  # never raises: the run goes on, the copy is in the folder
    assert server.inbox.messages == [] and (sent.run_dir / "notification.eml").is_file()
    assert "owner owner@example.com not mailed" in caplog.text and "SSLCertVerificationError" in caplog.text


@pytest.mark.parametrize("env, message", [
    ({"NBPRESS_MAIL_URL": "smtp://127.0.0.1:25", "NBPRESS_MAIL_USERNAME": "u"}, "logging in needs TLS"),
    ({"NBPRESS_MAIL_URL": "smtp+starttls://u:pw@host"}, "not in the URL"),
    ({"NBPRESS_MAIL_URL": "http://host"}, r"use smtp\+starttls://"),
    ({"NBPRESS_MAIL_URL": "smtp://host", "NBPRESS_MAIL_FROM": "a@b.c\r\nBcc: x@y.z"}, "on one line"),
])
def test_mail_settings_are_checked(env, message):
    with pytest.raises(UsageError, match=message):
        owner_mailer_from_env(env)
    assert owner_mailer_from_env({}) is None and owner_mailer_from_env({"NBPRESS_MAIL_URL": "file:outbox"}) is None


def test_once_mails_the_owner_about_a_failed_scheduled_run(project):
    make_notebook(project.notebooks_dir / "boom.ipynb", "n: int = 1", 'raise KeyError("missing column")')
    (project.notebooks_dir / "boom.yml").write_text(yaml.safe_dump({"owner": "owner@example.com",
                                                                     "schedule": {"cron": "0 6 * * *"}}))
    exe = Path(sys.executable).with_name("nbpress")
    with SmtpServer("plain") as server:
        env = {**os.environ, "NBPRESS_MAIL_URL": f"smtp://127.0.0.1:{server.port}"}
        result = subprocess.run([str(exe), "schedule", "--once", "boom"], cwd=project.root, env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"owner mail: by smtp://127.0.0.1:{server.port}" in result.stderr
    [message] = server.inbox.to("owner@example.com")
    body = text_of(message)
    assert "boom failed" in message["Subject"] and "Failing cell: 1 (KeyError: 'missing column')" in body
    assert "Executed notebook: " in body and "executed.ipynb" in body
