"""The MAC address of a client, from the kernel's neighbour table, when it can be known at all.

A MAC address only exists on the local link: a client behind a router shows the router's MAC,
and one behind a proxy shows the proxy's. So the address is read only when the client's IP
is inside a network the server itself has an address on (``ip -j addr``), from
``/proc/net/arp`` for IPv4 and ``ip -j neigh`` for IPv6. Nothing a client sends (headers, body)
is ever used. When the MAC cannot be known the reading says why, and callers fall back to the
device cookie and the IP.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MacReading", "KernelSources", "read_mac", "parse_proc_arp", "parse_ip_neigh", "parse_ip_addr"]

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_ZERO_MAC = "00:00:00:00:00:00"
_ATF_COM = 0x2  # /proc/net/arp flag: the entry is complete


@dataclass(frozen=True)
class MacReading:
    mac: str | None  # lower-case aa:bb:cc:dd:ee:ff, or None when not known
    status: str  # "known" or "unknown: <why>"

    @property
    def known(self) -> bool:
        return self.mac is not None


def _unknown(why: str) -> MacReading:
    return MacReading(None, f"unknown: {why}")


def parse_proc_arp(text: str) -> dict[str, str]:
    """``/proc/net/arp`` -> {ip: mac} for complete entries."""
    found: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6:
            continue
        ip, _hw_type, flags, mac = fields[0], fields[1], fields[2], fields[3].lower()
        try:
            complete = int(flags, 16) & _ATF_COM
        except ValueError:
            continue
        if complete and _MAC.match(mac) and mac != _ZERO_MAC:
            found[ip] = mac
    return found


def parse_ip_neigh(text: str) -> dict[str, str]:
    """``ip -j neigh`` -> {ip: mac} for entries with a link-layer address that is not FAILED."""
    found: dict[str, str] = {}
    for entry in json.loads(text or "[]"):
        mac = str(entry.get("lladdr", "")).lower()
        states = entry.get("state") or []
        if _MAC.match(mac) and mac != _ZERO_MAC and "FAILED" not in states and "INCOMPLETE" not in states:
            found[str(ipaddress.ip_address(entry["dst"]))] = mac
    return found


def parse_ip_addr(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``ip -j addr`` -> the networks the server has an address on (loopback left out)."""
    networks = []
    for link in json.loads(text or "[]"):
        if "LOOPBACK" in (link.get("flags") or []):
            continue
        for info in link.get("addr_info") or []:
            if info.get("family") in ("inet", "inet6") and info.get("local") and info.get("prefixlen") is not None:
                networks.append(ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network)
    return networks


class KernelSources:
    """Where the tables come from: the running kernel (tests may pass recorded samples instead)."""

    timeout = 2.0

    def _ip(self, *args: str) -> str:
        result = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=self.timeout, check=True)
        return result.stdout

    def addresses(self) -> str:
        return self._ip("addr")

    def arp(self) -> str:
        return Path("/proc/net/arp").read_text(encoding="ascii", errors="replace")

    def neigh6(self) -> str:
        return self._ip("-6", "neigh")


def read_mac(client_ip: str | None, sources: KernelSources | None = None) -> MacReading:
    """The MAC address of ``client_ip`` (the TCP peer, after trusted proxies), or why not."""
    try:
        ip = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return _unknown("no client address")
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return _unknown("loopback (same machine)")
    sources = sources or KernelSources()
    try:
        networks = parse_ip_addr(sources.addresses())
        if not any(ip.version == net.version and ip in net for net in networks):
            return _unknown("not on a directly connected network")
        table = parse_proc_arp(sources.arp()) if ip.version == 4 else parse_ip_neigh(sources.neigh6())
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as exc:
        return _unknown(f"neighbour table not readable ({type(exc).__name__})")
    mac = table.get(str(ip))
    return MacReading(mac, "known") if mac else _unknown("not in the neighbour table")
