"""``nbpress preview``: the real command, a real run, real renders fetched over HTTP.

One preview server per module (per xdist worker) on a small project that has no run yet, so
the first thing it does is run the report once. Each test reads the version before its edit
and waits for a newer one: the tests do not depend on their order.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_notebook, pdf_text
from toolkit.render.template_folders import BUILTIN

NBPRESS = Path(sys.executable).with_name("nbpress")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy

SMALL = """
import pandas as pd, matplotlib.pyplot as plt, toolkit as tk
df = pd.DataFrame({"count": [10 * i for i in range(n)]}, index=pd.Index([f"row{i}" for i in range(n)], name="label"))
tk.table("numbers", df, caption="Numbers table")
fig, ax = plt.subplots(figsize=(4, 2)); ax.plot(range(n)); tk.figure("chart", fig, caption="A chart")
"""


class Preview:
    """A running ``nbpress preview``: its process, URL and output lines so far."""

    def __init__(self, args: list[str], cwd: Path):
        self.process = subprocess.Popen([str(NBPRESS), "preview", *args], cwd=cwd, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _wait_for_url(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if " at http://127.0.0.1:" in line:
                    return line.split(" at ", 1)[1].split()[0]
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("no URL printed:\n" + "\n".join(self.lines))

    def get(self, path: str) -> tuple[int, str, bytes]:
        try:
            with OPENER.open(self.url + path.lstrip("/"), timeout=10) as answer:
                return answer.status, answer.headers["Content-Type"], answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read()

    def state(self) -> dict:
        return json.loads(self.get("/version")[2])

    def wait_after(self, version: int, timeout: float = 60) -> dict:
        """The first state newer than ``version`` (a render or a run finished)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state["version"] > version:
                return state
            time.sleep(0.05)
        raise AssertionError(f"no render after version {version}:\n" + "\n".join(self.lines))

    def pdf_text(self, tmp_path: Path) -> str:
        status, kind, body = self.get("/report.pdf")
        assert (status, kind) == (200, "application/pdf")
        target = tmp_path / f"fetched-{time.monotonic_ns()}.pdf"
        target.write_bytes(body)
        return pdf_text(target)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def _tree(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file's hash and mtime: a kept run folder's evidence."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("preview-project")
    shutil.copytree(ROOT / "templates", root / "templates")
    # The project overrides the built-in base template and stylesheet (its fonts stay built-in): the edits below are to these.
    (root / "templates" / "static").mkdir()
    shutil.copy(BUILTIN / "base.html.j2", root / "templates" / "base.html.j2")
    shutil.copy(BUILTIN / "static" / "report.css", root / "templates" / "static" / "report.css")
    make_notebook(root / "notebooks" / "small.ipynb", "n: int = 3", SMALL)
    (root / "notebooks" / "small.yml").write_text("title: Small Preview Report\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def served(small_project: Path):
    preview = Preview(["small"], small_project)
    try:
        yield preview
    finally:
        if preview.process.poll() is None:
            preview.stop()


def test_a_report_without_runs_is_run_once_then_served(served, small_project, tmp_path):
    said = "\n".join(served.lines)
    assert "no succeeded run of small" in said and "running it once" in said
    (kept,) = (small_project / "runs" / "small").iterdir()
    assert f"preview of {kept} at http://127.0.0.1:" in said
    status, kind, page = served.get("/")
    assert status == 200 and kind.startswith("text/html")
    assert b'<iframe src="/report.html' in page and b'href="/report.pdf' in page and b"rendered (start)" in page
    status, _, html = served.get("/report.html")
    assert status == 200 and b'href="/static/report.css"' in html and b"file://" not in html
    assert served.get("/static/report.css")[:2] == (200, "text/css")
    assert served.get("/static/fonts/DejaVuSans.ttf")[0] == 200  # the project has no fonts: the built-in ones
    assert served.get("/assets/chart.svg")[0] == 200
    text = served.pdf_text(tmp_path)
    assert "Small Preview Report" in text and "Numbers table" in text and "row2" in text


def test_nothing_outside_the_render_and_static_folders_is_served(served):
    host, port = served.url.removeprefix("http://").rstrip("/").split(":")
    for path in ("/static/../../notebooks/small.yml", "/assets/../run.json", "/static/%2e%2e/base.html.j2", "/run.json"):
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", path)  # sent as written: no client-side normalising of ../
        assert connection.getresponse().status == 404, path
        connection.close()


def test_css_template_and_spec_edits_render_again_and_leave_the_kept_run_alone(served, small_project, tmp_path):
    (kept,) = (small_project / "runs" / "small").iterdir()
    evidence = _tree(kept)
    css = small_project / "templates" / "static" / "report.css"
    before = served.state()["version"]
    css.write_text(css.read_text(encoding="utf-8") + '\nh1::after { content: " CSSMARKER"; }\n', encoding="utf-8")
    state = served.wait_after(before)
    assert state["ok"] and "report.css changed" in state["message"], state
    assert "CSSMARKER" in served.pdf_text(tmp_path)

    template = small_project / "templates" / "base.html.j2"
    before = state["version"]
    template.write_text(template.read_text(encoding="utf-8").replace("<h1>", "<p>TEMPLATEMARKER</p><h1>", 1),
                        encoding="utf-8")
    state = served.wait_after(before)
    assert state["ok"] and "TEMPLATEMARKER" in served.pdf_text(tmp_path)

    spec = small_project / "notebooks" / "small.yml"
    before = state["version"]
    spec.write_text("title: Renamed By The Spec\n", encoding="utf-8")
    try:
        state = served.wait_after(before)
        assert state["ok"] and "small.yml changed" in state["message"]
        assert "Renamed By The Spec" in served.pdf_text(tmp_path)
    finally:
        spec.write_text("title: Small Preview Report\n", encoding="utf-8")
    assert _tree(kept) == evidence  # every render went to the preview's own folder


def test_a_broken_template_is_shown_on_the_page_and_the_server_keeps_serving(served, small_project, tmp_path):
    template = small_project / "templates" / "base.html.j2"
    good = template.read_text(encoding="utf-8")
    before = served.state()["version"]
    template.write_text(good.replace("{% block", "{% blok", 1), encoding="utf-8")
    try:
        state = served.wait_after(before)
        assert not state["ok"] and "base.html.j2 line" in state["message"] and "blok" in state["message"], state
        page = served.get("/")[2].decode()
        assert 'class="failed"' in page and "unknown tag" in page
        assert "Numbers table" in served.pdf_text(tmp_path)  # the last good render is still served
    finally:
        template.write_text(good, encoding="utf-8")
    state = served.wait_after(state["version"])
    assert state["ok"], state


def test_a_run_dir_with_execute_runs_again_when_the_notebook_is_saved_and_sigterm_stops_it(served, small_project,
                                                                                              tmp_path):
    (run_dir,) = (small_project / "runs" / "small").iterdir()  # made by the module's server
    notebook = small_project / "notebooks" / "small.ipynb"  # the run's notebook (the other server does not watch it)
    original = notebook.read_bytes()
    preview = Preview([str(run_dir), "--execute", "-p", "n=5"], small_project)
    try:
        assert "row4" not in preview.pdf_text(tmp_path)
        before = preview.state()["version"]
        make_notebook(notebook, "n: int = 3", SMALL.replace("Numbers table", "Saved again"))
        state = preview.wait_after(before)
        assert state["ok"] and "small.ipynb saved" in state["message"], state
        text = preview.pdf_text(tmp_path)
        assert "Saved again" in text and "row4" in text  # the new code, with -p n=5
        assert list((small_project / "runs" / "small").iterdir()) == [run_dir]  # no new kept run
    finally:
        code = preview.stop()
        notebook.write_bytes(original)
    assert code == 0 and preview.lines[-1] == "preview stopped"
    with pytest.raises(OSError):
        OPENER.open(preview.url + "version", timeout=2)


@pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"), reason=f"{CHROMIUM} is not installed")
def test_the_page_reloads_by_itself_in_chromium(served, small_project):
    from playwright.sync_api import sync_playwright

    css = small_project / "templates" / "static" / "report.css"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(served.url)
            frame = page.frame_locator("iframe")
            frame.locator("h1").wait_for()
            page.evaluate("window.notReloaded = true")
            before = served.state()["version"]
            css.write_text(css.read_text(encoding="utf-8") + '\nh1 { color: rgb(0, 128, 0); }\n', encoding="utf-8")
            served.wait_after(before)
            page.wait_for_function("!window.notReloaded && Number(document.body.dataset.version) > %d" % before)
            colour = frame.locator("h1").evaluate("h => getComputedStyle(h).color")
            assert colour == "rgb(0, 128, 0)"  # the iframe shows the new render, its CSS served from /static
        finally:
            browser.close()
