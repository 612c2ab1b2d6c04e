"""The README's operator sequence, run line by line as written, against a fresh instance folder.

The lines come from README.md itself (the two ``sh`` blocks under "Publishing and the portal"),
so the README cannot drift from what works. Three things differ from a person at a terminal,
each for a reason: the dev server gets a free ``--port`` (other tests run beside this one), the
token and port are put where the README shows ``...`` and 5000, and ``nbpress run`` (a real
notebook run, tested elsewhere) is replaced by a finished run folder that ``nbpress publish``
then publishes as the README's last line says.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.helpers import free_port, wait_until_listening
from tests.test_publish_client import make_run_dir

ROOT = Path(__file__).resolve().parents[2]
NBPRESS = Path(sys.executable).with_name("nbpress")


def readme_blocks() -> list[list[str]]:
    """The shell lines (comments dropped) of each ``sh`` block in the README's portal section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Publishing and the portal\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [[line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()] for block in blocks]


def _run(line: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    args = shlex.split(line)
    assert args[0] == "nbpress", line
    return subprocess.run([str(NBPRESS), *args[1:]], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_readme_operator_sequence_works_on_a_fresh_instance(tmp_path):
    operator, publisher = readme_blocks()[:2]
    assert operator[0] == "nbpress portal serve --dev"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}
    env.update(NBPRESS_INSTANCE=str(tmp_path / "instance"), HOME=str(tmp_path),
               NBPRESS_ARGON2_MEMORY_KIB="64", NBPRESS_ARGON2_TIME_COST="1")  # fast hashing: a test bench
    port = free_port()
    server = subprocess.Popen([str(NBPRESS), *shlex.split(operator[0])[1:], "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_listening(port, server, name="the dev server")
        outputs = []
        for line in operator[1:]:
            done = _run(line, env, tmp_path)
            assert done.returncode == 0, f"{line}\n{done.stderr}"
            outputs.append(done.stdout)
        token = re.search(r"^token: (\S+)$", outputs[-1], flags=re.M).group(1)

        # the publisher's block: the export (token and port filled in), then `nbpress publish` of a finished run
        export, run_line, publish_line = publisher
        assert export.startswith("export ") and run_line.startswith("nbpress run ") and "--publish" in run_line
        for assignment in shlex.split(export)[1:]:
            name, value = assignment.split("=", 1)
            env[name] = value.replace("...", token).replace(":5000", f":{port}")
        run_dir = make_run_dir(tmp_path / "runs")
        done = _run(publish_line.replace("<run-id>", run_dir.name), env, tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # no "nobody can read" warning: the grant made before publishing covers it
        assert done.stdout.splitlines()[1:] == ["readable by 1 user in north"]
        assert done.stdout.splitlines()[0].endswith(f"http://127.0.0.1:{port}/reports/weekly_statistics")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_users_add_with_a_group_not_made_yet_refuses_and_names_the_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}
    env.update(NBPRESS_INSTANCE=str(tmp_path / "instance"), NBPRESS_SECRET_KEY="s" * 40, NBPRESS_JWT_SECRET="j" * 40)
    assert _run("nbpress portal init-db", env, tmp_path).returncode == 0
    refused = _run("nbpress portal users add ana@example.org --group north", env, tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "Error: no group named 'north' (create it with `groups add north`)"
    assert "ana@example.org" not in _run("nbpress portal users list", env, tmp_path).stdout  # nothing half-made
