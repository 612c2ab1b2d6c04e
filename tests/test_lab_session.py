"""The analyst's loop in a real JupyterLab, driven in headless Chromium.

A temporary project (the repository's templates, a notebook with a tagged parameters cell,
``tk.table``/``tk.figure``/``tk.metric`` and a final ``tk.preview()``) is served by
``jupyter lab`` on a free loopback port with a token. The notebook is opened as
``Untitled.ipynb`` (its kernel starts under that name), renamed in the browser to
``regional_sales.ipynb``, then run: the inline PDF must be there, made with the renamed
notebook's spec, and no output may show a record's bytes or a path's repr.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_notebook, pdf_text

pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (`make test` installs it with the test extra)")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = ROOT / "tests" / "artifacts"
FORBIDDEN = ("parquet=b'PAR1", "PosixPath(", "Table(name=", "Figure(name=", "Metric(name=")

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed (`make test` installs Debian's chromium); in CI this test must run",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with opener.open(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"jupyter lab did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def lab(tmp_path):
    """``jupyter lab`` serving a temporary project; yields (base URL, token, project root)."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "templates", project / "templates")
    make_notebook(
        project / "notebooks" / "Untitled.ipynb",
        'region: str = "North"  # the region to report on',
        """
        import pandas as pd, matplotlib.pyplot as plt, toolkit as tk
        sales = pd.DataFrame({"sales": [120, 80, 95]}, index=pd.Index(["north", "south", "east"], name="region"))
        tk.table("summary", sales, caption="Sales by region")
        """,
        "fig, ax = plt.subplots(figsize=(4, 2)); sales.plot.bar(ax=ax, legend=False); ax.set_title('Sales chart')\n"
        "tk.figure('chart', fig)",
        'tk.metric("total", int(sales["sales"].sum()), label="Total sales")',
        "tk.preview()",
    )
    (project / "notebooks" / "regional_sales.yml").write_text("title: Regional Sales Review\n")
    home = tmp_path / "jupyter"
    env = {k: v for k, v in os.environ.items() if k != "NBPRESS_RUN_ID"}
    env.update({
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),  # the kernel finds this server's info file here
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),  # the kernel imports this toolkit
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    })  # fmt: skip
    notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')  # no news prompt over the outputs
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={project}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--ServerApp.allow_root=True",
               "--LabApp.core_mode=True"]  # the packaged build: no 30 s "is the build up to date" check  # fmt: skip
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=project, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(f"{base}/api/status?token={token}", process, log)
        yield base, token, project
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                                              ignore_default_args=["--disable-extensions"])  # Chromium's PDF viewer is one
        try:
            yield chromium
        finally:
            chromium.close()


def test_run_all_in_jupyterlab_shows_the_inline_pdf_and_no_repr_dumps(lab, browser, tmp_path):
    base, token, project = lab
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.set_default_timeout(60_000)
    page.goto(f"{base}/lab/tree/notebooks/Untitled.ipynb?token={token}")
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.context"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel")  # fmt: skip
    # Rename as the file browser does: the kernel keeps running and still believes it serves Untitled.
    page.evaluate("async () => { const w = window.jupyterapp.shell.currentWidget;"
                  " await w.sessionContext.ready; await w.context.rename('regional_sales.ipynb'); }")  # fmt: skip
    page.wait_for_function("window.jupyterapp.shell.currentWidget.sessionContext.session.path.endsWith('regional_sales.ipynb')")
    shown, frame = _run_all(page)
    assert "<table 'summary': 3 rows x 1 column>" in shown and "Error" not in shown, shown[:2000]
    assert page.locator(".jp-OutputArea-output img").count() == 1  # the chart once, not again by the inline backend
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lab_session.png"), full_page=True)
    frame.screenshot(path=str(ARTIFACTS / "lab_session_preview.png"))

    # The PDF in the viewer: the renamed notebook's spec (its title), the records, the parameter.
    text = _inline_pdf_text(page, frame, tmp_path)
    assert "Regional Sales Review" in text and "North" in text and "Total sales" in text and "Sales chart" in text, text
    assert not list((project / "notebooks").glob("Untitled*")), "the rename did not happen on disk"


def test_a_report_made_by_nbpress_new_previews_inline(lab, browser, tmp_path):
    base, token, project = lab
    result = subprocess.run([str(Path(sys.executable).with_name("nbpress")), "new", "weekly_sales"], cwd=project,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.set_default_timeout(60_000)
    page.goto(f"{base}/lab/tree/notebooks/weekly_sales.ipynb?token={token}")
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel")  # fmt: skip
    shown, frame = _run_all(page)
    assert "<table 'daily': 7 rows x 3 columns>" in shown and "Error" not in shown, shown[:2000]
    text = _inline_pdf_text(page, frame, tmp_path)
    assert "Weekly Sales" in text and "Visits and orders per day, north region" in text, text


def _run_all(page):
    """Run every cell; wait for the inline PDF in Chromium's viewer. Returns (all outputs' text, the PDF's frame)."""
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    frame = page.locator(".jp-OutputArea-output iframe").first  # JupyterLab's PDF viewer (application/pdf)
    frame.wait_for(state="visible", timeout=90_000)
    page.wait_for_function(  # every cell done: no "[*]" prompt left
        "() => [...document.querySelectorAll('.jp-InputArea-prompt')].every(p => !p.textContent.includes('*'))")
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 300, box  # shown large enough to read

    outputs = page.locator(".jp-Notebook .jp-OutputArea").all_inner_texts()
    shown = "\n".join(outputs)
    for dump in FORBIDDEN:
        assert dump not in shown, (dump, shown[:2000])

    # Chromium's own PDF viewer (a built-in extension) draws the PDF inside JupyterLab's <object>.
    viewer = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/"
    deadline = time.monotonic() + 20
    while not any(f.url.startswith(viewer) for f in page.frames) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert any(f.url.startswith(viewer) for f in page.frames), [f.url[:80] for f in page.frames]
    page.wait_for_timeout(1500)  # the viewer paints the first page
    return shown, frame


def _inline_pdf_text(page, frame, tmp_path: Path) -> str:
    """The text of the PDF the viewer shows (read back from its blob: URL)."""
    src = frame.element_handle().content_frame().locator("object").get_attribute("data")
    assert src.startswith("blob:"), src
    data = page.evaluate("async src => { const bytes = new Uint8Array(await (await fetch(src)).arrayBuffer());"
                         " let s = ''; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); }", src)  # fmt: skip
    pdf = tmp_path / "inline.pdf"
    pdf.write_bytes(base64.b64decode(data))
    return pdf_text(pdf)
