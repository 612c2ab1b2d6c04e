"""README pictures from the demo, so they stay current: ``make screenshots``.

Runs ``nbpress demo`` (its 4 PDFs, published to a portal on a free loopback port) in a scratch
copy of the repository's notebooks and templates, then:

- ``demo-report.png``: the newest PDF's first page (pdftoppm);
- ``portal-reports.png`` and ``portal-report.png``: the portal's report list and the report's
  page, signed in as the demo recipient in headless Chromium (the password the demo prints
  once, the code from the portal's development outbox).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def _wait_for_line(process: subprocess.Popen, pattern: str, lines: list[str], timeout: float = 600) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"nbpress demo stopped before printing {pattern!r}:\n" + "".join(lines[-20:]))
        lines.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise SystemExit(f"nbpress demo did not print {pattern!r} in {timeout} s")


def _code(outbox: Path) -> str:
    for _ in range(100):
        mails = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)
        if mails:
            body = message_from_bytes(mails[-1].read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
            found = re.search(r"^\s+(\d{6,10})\s*$", body, re.MULTILINE)
            if found:
                return found.group(1)
        time.sleep(0.1)
    raise SystemExit(f"no sign-in code in {outbox}")


def _pdf_page(pdf: Path) -> None:
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(OUT / "demo-report")], check=True)  # fmt: skip


def _portal_pages(base: str, password: str, outbox: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(f"{base}/login")
        page.get_by_label("Email").fill("demo@example.org")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/login/verify**")
        page.get_by_label("Code").fill(_code(outbox))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(f"{base}/")
        page.screenshot(path=str(OUT / "portal-reports.png"), full_page=True)
        page.goto(f"{base}/reports/weekly_statistics")
        run = page.get_by_role("link", name="Run Weekly Statistics")
        for _ in range(120):  # the demo's worker describes the report (its form) once it has started
            if run.count():
                break
            page.wait_for_timeout(500)
            page.reload()
        page.screenshot(path=str(OUT / "portal-report.png"), full_page=True)
        run.click()
        page.screenshot(path=str(OUT / "portal-run.png"), full_page=True)
        page.get_by_role("button", name="Run", exact=True).click()
        page.wait_for_url(f"{base}/requests/**")
        page.locator("#run-result").wait_for(state="visible", timeout=300_000)  # the worker ran and published it
        page.screenshot(path=str(OUT / "portal-run-status.png"), full_page=True)
        browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="nbpress-screenshots-") as scratch:
        project = Path(scratch)
        shutil.copytree(ROOT / "notebooks", project / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        shutil.copytree(ROOT / "templates", project / "templates")
        nbpress = Path(sys.executable).with_name("nbpress")
        process = subprocess.Popen([str(nbpress), "demo", "--port", "0"], cwd=project, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)  # fmt: skip
        lines: list[str] = []
        try:
            base = _wait_for_line(process, r"Portal: (http://127\.0\.0\.1:\d+)/", lines).group(1)
            password = _wait_for_line(process, r"with the password (\S+)", lines).group(1)
            pdf = sorted((project / "runs" / "weekly_statistics").glob("*/report.pdf"))[-1]
            _pdf_page(pdf)
            _portal_pages(base, password, project / "instance" / "outbox")
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    for name in ("demo-report.png", "portal-reports.png", "portal-report.png", "portal-run.png", "portal-run-status.png"):
        print(OUT / name)


if __name__ == "__main__":
    main()
