"""The shared test helpers (tests/helpers.py) do what the tests rely on."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import pytest

from tests.helpers import free_port, listening, pid_alive, run_in_pty, wait_for


def test_wait_for_returns_the_first_true_value():
    counter = itertools.count()
    assert wait_for(lambda: next(counter) >= 3 and "ready", timeout=5, what="ready", interval=0.01) == "ready"


def test_wait_for_fails_at_its_deadline_naming_what_it_waited_for():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"^the flag set: still not the case after 0.3 s$"):
        wait_for(lambda: False, timeout=0.3, what="the flag set", interval=0.05)
    assert 0.3 <= time.monotonic() - started < 5


def test_wait_for_fails_at_once_when_the_process_exits():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    started = time.monotonic()
    with pytest.raises(AssertionError, match="the file written: not the case, and the process exited with status 3"):
        wait_for(lambda: False, timeout=60, what="the file written", process=process)
    assert time.monotonic() - started < 30


def test_ports_and_processes():
    port = free_port()
    assert not listening(port)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(process.pid)
    finally:
        process.kill()
        process.wait()
    assert not pid_alive(process.pid)


def test_run_in_pty_gives_a_terminal_and_the_exit_status(tmp_path):
    code = "import sys; print('tty' if sys.stdout.isatty() and sys.stderr.isatty() else 'pipe'); sys.exit(4)"
    status, output = run_in_pty([sys.executable, "-c", code], cwd=tmp_path, env={})
    assert (status, output.strip()) == (4, "tty")
