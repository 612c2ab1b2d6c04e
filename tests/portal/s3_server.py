"""A real S3-compatible server on loopback for the portal's object-store tests: moto's standalone
server as its own process (``python -m moto.server``), and the fault proxy (tests/portal/tcp_proxy.py)
in front of it when a test needs a slow, stalled or killed store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import requests

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child process with its own port; ``kill()`` sends SIGKILL and reaps it."""

    def __init__(self, args: list[str], *, port: int, env: dict | None = None, host: str = "127.0.0.1"):
        self.args, self.port, self.env, self.host = args, port, env, host
        self.popen: subprocess.Popen | None = None

    def start(self) -> Process:
        self.popen = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                      env={**os.environ, **(self.env or {})}, cwd=ROOT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                assert self.popen.poll() is None, f"{self.args[:3]} exited with {self.popen.returncode}"
                time.sleep(0.05)
        raise TimeoutError(f"{self.args[:3]} did not listen on port {self.port}")

    def wait_for_line(self, text: str, timeout: float = 20) -> None:
        """Read the child's stdout until a line holds ``text`` (blocking reads: the child prints it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.popen.stdout.readline()
            if text in line:
                return
            assert line, f"{self.args[:3]} ended before printing {text!r}"
        raise TimeoutError(text)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)


def moto_server(port: int | None = None, *, auth: bool = False, host: str = "127.0.0.1") -> Process:
    """moto's S3 in its own process on ``host``; with ``auth``, every key is refused (403), as a wrong key is."""
    port = port or free_port()
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if auth else {"INITIAL_NO_AUTH_ACTION_COUNT": "inf"}
    process = Process([sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)], port=port, env=env, host=host).start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the port opens before the app answers
        try:
            requests.get(f"http://{host}:{port}/moto-api/", timeout=2)
            return process
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError("moto did not answer")


def proxy(target_port: int, *, port: int | None = None, delay: float = 0.0, chunk: int = 65536,
          stall_after: int | None = None) -> Process:
    port = port or free_port()
    args = [sys.executable, "-m", "tests.portal.tcp_proxy", str(port), str(target_port), "--delay", str(delay), "--chunk", str(chunk)]
    if stall_after is not None:
        args += ["--stall-after", str(stall_after)]
    process = Process(args, port=port).start()
    process.wait_for_line("ready")
    return process


def s3_client(port: int, host: str = "127.0.0.1"):
    """A client of our own, beside the portal's: what is really in the bucket."""
    return boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name=REGION,
                        aws_access_key_id="observer", aws_secret_access_key="observer-secret")


def keys(client, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))
