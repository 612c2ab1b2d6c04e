"""``nbpress preview``: how long from saving a template to the new PDF being served.

    python -m benchmarks.live_preview [--repeats N]      (also part of make bench)

The real command serves a demo run; each edit puts a new visible line into the demo's
template, then ``/version`` is polled every 10 ms until the new render is there (its PDF
written). That time includes the watcher's poll (every 100 ms, then 30 ms for the file to stand still) and
reading the records, HTML, glyph check and PDF. Compared with a raw WeasyPrint render of the
same HTML in this process. Every edit's PDF is checked for its line. Target: under 1 s.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

TARGET_SECONDS = 1.0
BIN = Path(sys.executable).parent
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> bytes:
    with OPENER.open(url, timeout=30) as answer:
        return answer.read()


def _start(project: Path, run_dir: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([str(BIN / "nbpress"), "--project", str(project), "preview", str(run_dir)],
                               cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for line in list(lines):
            if " at http://127.0.0.1:" in line:
                return process, line.split(" at ", 1)[1].split()[0]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise SystemExit("nbpress preview did not start:\n" + "".join(lines))


def _wait_after(url: str, version: int) -> dict:
    while True:
        state = json.loads(_get(url + "version"))
        if state["version"] > version:
            return state
        time.sleep(0.01)


def bench_live(project: Path, run_dir: Path, repeats: int) -> dict:
    import weasyprint

    template = project / "templates" / "weekly_statistics.html.j2"
    original = template.read_text(encoding="utf-8")
    process, url = _start(project, run_dir)
    edits, raw, renders, missing = [], [], [], 0
    html, base_url = (run_dir / "report.html").read_text(encoding="utf-8"), run_dir.resolve().as_uri() + "/"
    try:
        for i in range(repeats):
            before = json.loads(_get(url + "version"))["version"]
            marker = f"Bench edit number {i + 1}"
            start = time.perf_counter()
            template.write_text(original.replace("{% block content %}", f"{{% block content %}}<p>{marker}</p>", 1),
                                encoding="utf-8")
            state = _wait_after(url, before)
            edits.append(time.perf_counter() - start)
            renders.append(state["seconds"])
            if not state["ok"] or marker not in _pdf_text(_get(url + "report.pdf")):
                missing += 1
            start = time.perf_counter()
            weasyprint.HTML(string=html, base_url=base_url).write_pdf()
            raw.append(time.perf_counter() - start)
    finally:
        template.write_text(original, encoding="utf-8")
        process.terminate()
        process.wait(timeout=30)
    return {"edit": statistics.median(edits), "render": statistics.median(renders), "raw": statistics.median(raw),
            "missing": missing, "runs": {"edit": edits, "render": renders, "raw": raw}}


def _pdf_text(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, check=True, capture_output=True).stdout.decode()


def print_live(result: dict) -> None:
    ratio = result["edit"] / result["raw"] if result["raw"] else float("nan")
    verdict = "ok" if result["edit"] < TARGET_SECONDS and not result["missing"] else "MISSED"
    print(f"nbpress preview, template edit -> new PDF served: median {result['edit']:.2f} s "
          f"(of which the render {result['render']:.2f} s), raw WeasyPrint on the same HTML {result['raw']:.2f} s, "
          f"ratio {ratio:.2f}x; edits missing from their PDF: {result['missing']}; "
          f"target < {TARGET_SECONDS:.0f} s {verdict}")  # fmt: skip


def main() -> None:
    import argparse

    from .pipeline import WEEK, _demo_project

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nbpress-bench-live-") as tmp:
        project, db = _demo_project(Path(tmp))
        subprocess.run([str(BIN / "nbpress"), "--project", str(project), "run", "weekly_statistics", "-p", f"week={WEEK}",
                        "-p", f"database_url=sqlite:///{db}"], check=True, cwd=project, capture_output=True)
        (run_dir,) = (project / "runs" / "weekly_statistics").iterdir()
        print_live(bench_live(project, run_dir, args.repeats))
        shutil.rmtree(project / "runs", ignore_errors=True)


if __name__ == "__main__":
    main()
