"""Network namespaces as "hosts" on one private network, for tests that need more than one machine.

One bridge in the root namespace holds ``<subnet>.1`` (the services in the root namespace bind
there); each namespace is joined to it by a veth pair and gets ``<subnet>.N``. Every name carries
a random tag, so parallel runs never share one, and :func:`private_network` removes everything it
made on the way out, also after a failure. Needs root and iproute2 (``ip netns``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Network:
    gateway: str  # the bridge's address in the root namespace
    cidr: str
    addresses: dict[str, str]  # role -> address
    namespaces: dict[str, str]  # role -> namespace name

    def exec_prefix(self, role: str) -> tuple[str, ...]:
        """Run a command in ``role``'s namespace: ``ip netns exec NAME`` (it execs: the pid stays the command's)."""
        return ("ip", "netns", "exec", self.namespaces[role])


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run as root to test two portal hosts"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (Debian package iproute2)"
    probe = f"nbprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` is unavailable here: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@contextmanager
def private_network(roles: list[str]) -> Iterator[Network]:
    """A bridge and one namespace per role on a random 10.77.X.0/24; all removed on the way out."""
    tag, octet = secrets.token_hex(3), 1 + secrets.randbelow(250)
    subnet = f"10.77.{octet}"
    bridge = f"nbbr{tag}"
    network = Network(gateway=f"{subnet}.1", cidr=f"{subnet}.0/24",
                      addresses={role: f"{subnet}.{10 + i}" for i, role in enumerate(roles)},
                      namespaces={role: f"nb-{tag}-{role}" for role in roles})
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{network.gateway}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i, role in enumerate(roles):
            name, veth = network.namespaces[role], f"nbv{tag}{i}"
            _ip("netns", "add", name)
            _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
            _ip("link", "set", f"{veth}p", "netns", name)
            _ip("link", "set", veth, "master", bridge, "up")
            _ip("-n", name, "link", "set", f"{veth}p", "name", "eth0")
            _ip("-n", name, "addr", "add", f"{network.addresses[role]}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")
        yield network
    finally:
        for role in roles:  # deleting a namespace deletes its end of the veth pair, and so the pair
            subprocess.run(["ip", "netns", "del", network.namespaces[role]], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=20)
