"""Debian's ``redis-server`` for the tests: one process on a port of its own, a password, no persistence."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.helpers import free_port, listening

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """redis-server on ``host`` (loopback by default), its password in a 0600 config file (not on a command line)."""

    def __init__(self, folder: Path, host: str = "127.0.0.1"):
        self.folder, self.host, self.port, self.password = folder, host, free_port(), secrets.token_urlsafe(24)
        self.process: subprocess.Popen | None = None
        config = folder / "redis.conf"
        config.write_text(f"port {self.port}\nbind {host}\nsave \"\"\nappendonly no\ndir {folder}\n"
                          f"requirepass {self.password}\n")
        config.chmod(0o600)

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self) -> None:
        with (self.folder / "redis.log").open("a") as log:
            self.process = subprocess.Popen([REDIS_SERVER, str(self.folder / "redis.conf")], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while not listening(self.port, self.host):
            assert self.process.poll() is None and time.monotonic() < deadline, (self.folder / "redis.log").read_text()
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        self.process = None
