"""Issue 15's whole loop in headless Chromium, every part real: a portal on loopback mailing to
aiosmtpd, an ``nbpress worker`` process holding the report's token, a kernel, WeasyPrint.

A recipient with a run grant signs in (password and emailed code), opens the report, presses Run,
types a value the toolkit's rules refuse (the same message as ``nbpress run``), then a good one;
the status page follows the request by itself to "succeeded"; the new version's PDF downloads with
the number typed in it; the requester's mail arrives with the report page's link.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa
import yaml
from playwright.sync_api import expect

from publish_server.extensions import db
from publish_server.models import Report, RunGrant, User
from publish_server.notifications import worker as mail_worker
from publish_server.publishing import create_publisher_token
from tests.conftest import make_notebook, pdf_text
from tests.portal.conftest import TEST_PASSWORD
from tests.portal.test_browser import ARTIFACTS, browser, enter_code, serve_portal, smtp  # noqa: F401  (fixtures)

PARAMETERS = """
import datetime
week: datetime.date = datetime.date(2026, 11, 16)  # Week
rows: int = 3  # Rows
"""
BODY = """
import toolkit as tk
tk.metric("rows", rows, label="Rows asked for")
tk.text("note", f"Rows asked for: {rows}")
"""


def _worker(project_root: Path, base: str, token: str) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}
    log = (project_root / "worker.log").open("w")
    return subprocess.Popen([str(Path(sys.executable).with_name("nbpress")), "worker", "--portal", base, "--poll", "0.3"],
                            cwd=project_root, env={**clean, "HOME": str(project_root), "NBPRESS_PUBLISH_TOKEN": token},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_recipient_runs_the_report_from_the_portal_and_reads_the_new_version(tmp_path, project, smtp, browser):  # noqa: F811
    make_notebook(project.notebooks_dir / "weekly_statistics.ipynb", PARAMETERS, BODY)
    (project.notebooks_dir / "weekly_statistics.yml").write_text(yaml.safe_dump(
        {"title": "Weekly Statistics", "show_parameters": {"week": "Week", "rows": "Rows"}, "period": "{week:%G-W%V}"}))
    with serve_portal(tmp_path / "portal", smtp) as (app, base, _seeded):
        with app.app_context():
            report = db.session.scalars(sa.select(Report)).one()
            reader = db.session.scalars(sa.select(User)).one()
            db.session.add(RunGrant(report_id=report.id, user_id=reader.id))  # the seed gave the read grant
            _row, token = create_publisher_token("toolkit")
            db.session.commit()
            db.session.remove()
        stop_mail = threading.Event()
        mails = threading.Thread(target=mail_worker.run, args=(app,), kwargs={"once": False, "poll_seconds": 0.3, "stop": stop_mail},
                                 daemon=True)
        mails.start()
        worker = _worker(project.root, base, token)
        try:
            context = browser.new_context(accept_downloads=True, viewport={"width": 1000, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/reports/weekly_statistics")
            page.get_by_label("Email").fill("reader@example.org")
            page.get_by_label("Password").fill(TEST_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            enter_code(page, smtp, base, 1)
            run_link = page.get_by_role("link", name="Run Weekly Statistics")
            for _ in range(100):  # the worker describes the report (its schema) when it starts
                if run_link.count():
                    break
                page.wait_for_timeout(300)
                page.reload()
            run_link.click()
            assert page.get_by_label("Rows").input_value() == "3"  # the notebook's default, from the worker's profile
            page.get_by_label("Rows").fill("2.5")
            page.get_by_role("button", name="Run", exact=True).click()
            assert page.locator("#param-rows-error").inner_text() == "parameter 'rows': got '2.5', expected int"
            page.get_by_label("Rows").fill("41")
            page.get_by_role("button", name="Run", exact=True).click()
            page.wait_for_url(f"{base}/requests/**")
            expect(page.locator("#run-result")).to_be_visible(timeout=120_000)  # polled: queued -> running -> succeeded
            assert page.locator("#run-state").inner_text() == "succeeded", (worker.args, (project.root / "worker.log").read_text())
            page.screenshot(path=str(ARTIFACTS / "run-from-portal-succeeded.png"), full_page=True)
            page.get_by_role("link", name="Open the report page").click()
            with page.expect_download() as download:
                page.locator("a[href*='/download']").first.click()
            pdf = tmp_path / "new.pdf"
            download.value.save_as(pdf)
            assert "41" in pdf_text(pdf) and "Rows asked for" in pdf_text(pdf)  # the new version, not the seeded one
            context.close()
            for _ in range(200):
                ended = [m for m in smtp.inbox.to("reader@example.org") if "run" in str(m["Subject"]).lower()
                         and "succeeded" in m.get_body(preferencelist=("plain",)).get_content().lower()]
                if ended:
                    break
                threading.Event().wait(0.1)
            assert ended, [str(m["Subject"]) for m in smtp.inbox.to("reader@example.org")]
            assert f"{base}/reports/weekly_statistics" in ended[0].get_body(preferencelist=("plain",)).get_content()
        finally:
            stop_mail.set()
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
            mails.join(timeout=10)
