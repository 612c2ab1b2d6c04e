"""MAC addresses from the kernel's neighbour table (publish_server.signin.mac_addresses).

Parsing is tested on samples in the real formats of /proc/net/arp, ``ip -j neigh`` and
``ip -j addr``. Then, for real (as root, which CI is): a network namespace joined to the host by
a veth pair with a known MAC signs in to a portal listening on the host side; the device must
record that MAC, and after the MAC changes the next sign-in must ask for a code.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from flask_migrate import upgrade
from werkzeug.serving import make_server

from publish_server import create_app
from publish_server.extensions import db
from publish_server.models import Device, User
from publish_server.signin.mac_addresses import KernelSources, MacReading, parse_ip_addr, parse_ip_neigh, parse_proc_arp, read_mac
from publish_server.signin.password_step import passwords

from .conftest import TEST_PASSWORD, base_config, last_code

PROC_ARP = """IP address       HW type     Flags       HW address            Mask     Device
192.168.1.1      0x1         0x2         a4:91:b1:0c:de:01     *        eth0
192.168.1.23     0x1         0x0         00:00:00:00:00:00     *        eth0
10.213.5.2       0x1         0x2         02:13:AA:00:00:01     *        veth0
"""
IP_NEIGH = json.dumps([
    {"dst": "fe80::1", "dev": "eth0", "lladdr": "a4:91:b1:0c:de:01", "router": None, "state": ["REACHABLE"]},
    {"dst": "2001:db8::23", "dev": "eth0", "lladdr": "52:54:00:12:34:56", "state": ["STALE"]},
    {"dst": "2001:db8::99", "dev": "eth0", "state": ["FAILED"]},
])
IP_ADDR = json.dumps([
    {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifindex": 2, "ifname": "eth0", "flags": ["BROADCAST", "UP"], "addr_info": [
        {"family": "inet", "local": "192.168.1.10", "prefixlen": 24}, {"family": "inet6", "local": "2001:db8::10", "prefixlen": 64}]},
])


class Recorded(KernelSources):
    """The same reader with recorded kernel output instead of the live tables."""

    def addresses(self):
        return IP_ADDR

    def arp(self):
        return PROC_ARP

    def neigh6(self):
        return IP_NEIGH


def test_parse_proc_arp_keeps_complete_entries_only():
    assert parse_proc_arp(PROC_ARP) == {"192.168.1.1": "a4:91:b1:0c:de:01", "10.213.5.2": "02:13:aa:00:00:01"}


def test_parse_ip_neigh_and_addr():
    assert parse_ip_neigh(IP_NEIGH) == {"fe80::1": "a4:91:b1:0c:de:01", "2001:db8::23": "52:54:00:12:34:56"}
    assert [str(n) for n in parse_ip_addr(IP_ADDR)] == ["192.168.1.0/24", "2001:db8::/64"]


@pytest.mark.parametrize(("ip", "expected"), [
    ("192.168.1.1", MacReading("a4:91:b1:0c:de:01", "known")),
    ("2001:db8::23", MacReading("52:54:00:12:34:56", "known")),
    ("::ffff:192.168.1.1", MacReading("a4:91:b1:0c:de:01", "known")),
    ("192.168.1.23", MacReading(None, "unknown: not in the neighbour table")),
    ("10.213.5.2", MacReading(None, "unknown: not on a directly connected network")),  # in the table, but routed
    ("203.0.113.9", MacReading(None, "unknown: not on a directly connected network")),
    ("127.0.0.1", MacReading(None, "unknown: loopback (same machine)")),
    ("not an ip", MacReading(None, "unknown: no client address")),
    (None, MacReading(None, "unknown: no client address")),
])
def test_read_mac(ip, expected):
    assert read_mac(ip, Recorded()) == expected


def test_an_unreadable_table_is_unknown_not_an_error():
    class Broken(Recorded):
        def arp(self):
            raise PermissionError("no")

    assert read_mac("192.168.1.1", Broken()) == MacReading(None, "unknown: neighbour table not readable (PermissionError)")


# --- for real: a namespace, a veth pair, a known MAC -------------------------------------------------

CLIENT = r"""
import json, sys, urllib.request, urllib.error
url, body = sys.argv[1], sys.argv[2]
request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST")
try:
    with urllib.request.urlopen(request, timeout=10) as answer:
        print(json.dumps({"status": answer.status, "body": json.loads(answer.read())}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "body": json.loads(error.read())}))
"""


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=20).stdout


@pytest.fixture
def veth():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace and a veth pair (CI runs as root)")
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is not installed")
    tag = secrets.token_hex(3)
    ns, host_if, ns_if = f"nbp{tag}", f"nbph{tag}", f"nbpn{tag}"
    subnet = 10 + secrets.randbelow(200)
    host_ip, ns_ip, mac = f"10.213.{subnet}.1", f"10.213.{subnet}.2", "02:13:00:00:00:01"
    try:
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _run("ip", "link", "set", ns_if, "netns", ns)
        _run("ip", "addr", "add", f"{host_ip}/24", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "address", mac)
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/24", "dev", ns_if)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield {"ns": ns, "host_if": host_if, "ns_if": ns_if, "host_ip": host_ip, "ns_ip": ns_ip, "mac": mac}
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_sign_in_from_a_namespace_records_its_mac_and_a_new_mac_needs_a_code(tmp_path, veth):
    app = create_app(base_config(TRUSTED_HOSTS=veth["host_ip"]), instance_path=tmp_path / "instance")  # the name clients use
    with app.app_context():
        upgrade()
        db.session.add(User(email="mac@example.org", password_hash=passwords().hash(TEST_PASSWORD)))
        db.session.commit()
        db.session.remove()
    server = make_server(veth["host_ip"], 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://{veth['host_ip']}:{server.server_port}/api/v1/auth"

    def from_namespace(path: str, body: dict) -> dict:
        out = _run("ip", "netns", "exec", veth["ns"], sys.executable, "-c", CLIENT, f"{base}/{path}", json.dumps(body))
        return json.loads(out)

    credentials = {"email": "mac@example.org", "password": TEST_PASSWORD}
    try:
        started = from_namespace("login", credentials)
        assert started["status"] == 202
        with app.app_context():
            code = last_code(app, "mac@example.org")
        verified = from_namespace("verify", {"challenge_id": started["body"]["challenge_id"],
                                             "client_secret": started["body"]["client_secret"], "code": code})
        assert verified["status"] == 200
        token = verified["body"]["device_token"]
        with app.app_context():
            device = db.session.scalars(db.select(Device)).one()
            assert device.macs == [veth["mac"]] and device.mac_status == "known" and device.ips == [veth["ns_ip"]]
            db.session.remove()
        assert from_namespace("login", {**credentials, "device_token": token})["status"] == 200  # same MAC: no code

        # Another machine takes the address (a new MAC); the host forgets the old entry, as it would once stale.
        _run("ip", "netns", "exec", veth["ns"], "ip", "link", "set", veth["ns_if"], "address", "02:13:00:00:00:99")
        _run("ip", "neigh", "flush", "to", veth["ns_ip"], "dev", veth["host_if"])
        _run("ip", "netns", "exec", veth["ns"], "ip", "neigh", "flush", "dev", veth["ns_if"])
        again = from_namespace("login", {**credentials, "device_token": token})
        assert again["status"] == 202, again
        with app.app_context():
            assert "02:13:00:00:00:99" in Path("/proc/net/arp").read_text()
            db.session.remove()
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()
