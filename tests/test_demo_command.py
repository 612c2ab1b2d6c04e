"""`nbpress demo`: PDFs for recent weeks, published to a local portal that it serves until stopped."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import ROOT
from tests.helpers import listening, pid_alive, wait_for


def test_demo_publishes_to_a_local_portal_and_stops_cleanly(tmp_path):
    for folder in ("notebooks", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    exe = Path(sys.executable).with_name("nbpress")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}
    process = subprocess.Popen([str(exe), "demo", "--weeks", "1", "--port", "0"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        output = "".join(lines)
        url = re.search(r"Portal: (http://127\.0\.0\.1:\d+)/", output).group(1)
        password = re.search(r"with the password (\S+)", output).group(1)
        # the recipients' link (the report page) and who reads it: the demo recipient's group
        assert re.search(rf"published weekly_statistics 2026-W\d\d v1: {re.escape(url)}/reports/weekly_statistics \(readable by 1 user in ", output)
        assert urllib.request.urlopen(f"{url}/login", timeout=10).status == 200
        listing = subprocess.run([sys.executable, "-m", "publish_server.admin", "publications", "list"], cwd=tmp_path,
                                 env={**env, "NBPRESS_INSTANCE": str(tmp_path / "instance")}, capture_output=True, text=True, check=True)
        assert "weekly_statistics" in listing.stdout
        assert password not in (tmp_path / "instance" / "portal.log").read_text()  # shown once, never logged
        # the demo's own worker serves Run on the report (the demo group may run it)
        worker_log = tmp_path / "instance" / "worker.log"
        serving = wait_for(lambda: re.search(r"worker \S+:(\d+): serving weekly_statistics for http://127\.0\.0\.1:\d+ \(1 of 1 profiles",
                                             worker_log.read_text()), timeout=60, what="the demo's worker serving", process=process)
        grants = subprocess.run([sys.executable, "-m", "publish_server.admin", "grants", "--report", "weekly_statistics"],
                                cwd=tmp_path, env={**env, "NBPRESS_INSTANCE": str(tmp_path / "instance")}, capture_output=True,
                                text=True, check=True)
        assert "run" in grants.stdout and "demo" in grants.stdout, grants.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert not listening(int(url.rsplit(":", 1)[1]))  # the portal stopped with the demo
    assert not pid_alive(int(serving.group(1)))  # and its worker
    assert json.loads(next((tmp_path / "runs" / "weekly_statistics").glob("*/run.json")).read_text())["publication"]
