"""Wall time, CPU time and peak memory of a command and every process it starts.

Peak memory is reported three ways, because a process tree has no single honest number:

* ``tree_rss``: the largest sum of RSS over the process and all its descendants, sampled
  every 20 ms. Pages shared between processes (the Python binary, cairo, pango, fonts) are
  counted once per process, so this overstates a tree; it is the figure the targets use.
* ``tree_pss``: the same samples as proportional set size (shared pages split between the
  processes sharing them): what the tree really costs the machine.
* ``max_rss``: the kernel's peak RSS of the largest single process, as ``/usr/bin/time``
  reports it ("Maximum resident set size"); for one process it is exact, and sampling cannot
  miss a short peak. The command is started by ``/usr/bin/time``, not by this process: a
  child forked from a big process inherits that process's RSS as its own peak until exec.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

__all__ = ["Measurement", "run"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process and its waited-for descendants
    tree_rss: float  # MiB
    tree_pss: float  # MiB
    max_rss: float  # MiB (nan without /usr/bin/time)
    processes: int  # most processes alive at once

    def as_dict(self) -> dict:
        return asdict(self)


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.02, *, include_root: bool = True):
        super().__init__(daemon=True)
        self.root, self.interval, self.include_root = psutil.Process(pid), interval, include_root
        self.rss = self.pss = 0
        self.processes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.root] if self.include_root else []
                procs += self.root.children(recursive=True)
            except psutil.Error:
                return
            rss = pss = 0
            for proc in procs:
                try:
                    info = proc.memory_full_info()
                except psutil.Error:
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self.processes = max(self.processes, len(procs))
            self.stop.wait(self.interval)


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 3600,
        sample_every: float = 0.02) -> Measurement:
    """Run ``cmd`` to completion and measure it; raises ``CalledProcessError`` if it fails.

    ``sample_every``: seconds between memory samples of the process tree. Each sample reads
    every process's smaps, which costs this process CPU the measured command may need: with a
    dozen processes (a batch), sample every half second, not every 20 ms.
    """
    timer = shutil.which("time", path="/usr/bin:/bin")
    with tempfile.NamedTemporaryFile("r", suffix=".maxrss") as maxrss:
        launch = [timer, "-f", "%M", "-o", maxrss.name, *cmd] if timer else cmd
        result = _run(launch, cwd, env, timeout, sample_root=not timer, sample_every=sample_every)
        kib = maxrss.read().strip().splitlines()[-1:] if timer else []
    max_rss = int(kib[0]) / 1024 if kib and kib[0].isdigit() else float("nan")
    return Measurement(**{**result, "max_rss": max_rss})


def _run(cmd: list[str], cwd, env, timeout: float, *, sample_root: bool, sample_every: float) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = _Sampler(proc.pid, sample_every, include_root=sample_root)
    sampler.start()
    out: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda n=n, s=s: out.__setitem__(n, s.read()), daemon=True)
        for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    deadline = started + timeout
    while True:  # wait4 gives this child's own rusage (RUSAGE_CHILDREN mixes every child ever run)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
        time.sleep(0.005)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop.set()
    sampler.join()
    for reader in readers:
        reader.join()
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out.get("stdout"), out.get("stderr"))
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "tree_rss": sampler.rss / MIB,
        "tree_pss": sampler.pss / MIB,
        "processes": sampler.processes,
    }
