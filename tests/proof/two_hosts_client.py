"""The client of tests/proof/test_two_hosts.py, run inside the "client" network namespace.

``python -m tests.proof.two_hosts_client OUTBOX URL1 URL2 --seconds S --threads N``; the
publisher token comes in ``NBPRESS_TEST_PUBLISHER_TOKEN`` (never on a command line). It prints
``load started`` when the load begins (the test then kills host 1) and, last, one JSON line:
requests and statuses per host, failovers and every error seen.

A request goes to one host and, on a lost connection only (refused, reset, cut mid-answer),
to the other: any answer, a 500 included, is final and is checked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import secrets
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from benchmarks.portal import make_pdf
from tests.proof.load import PASSWORD, REPORT, code_from_outbox

EMAIL = "reader0@example.org"
PUBLIC_NAME = "reports.example.org"  # both hosts serve this name (TRUSTED_HOSTS), as behind one load balancer
LOST = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)  # the connection, not an answer


def session() -> requests.Session:
    """A keep-alive session that asks for the portal by its public name, whichever host it reaches."""
    http = requests.Session()
    http.headers["Host"] = PUBLIC_NAME
    return http


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()  # "host1 200"
        self.failovers = 0
        self.errors: list[str] = []
        self.downloads = 0

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


class FailoverClient:
    """One thread's keep-alive sessions to both hosts."""

    def __init__(self, hosts: dict[str, str], tally: Tally):
        self.hosts, self.tally = hosts, tally
        self.sessions = {name: session() for name in hosts}

    def request(self, method: str, path: str, prefer: str, expect: int, **kwargs) -> requests.Response | None:
        order = [prefer] + [name for name in self.hosts if name != prefer]
        for name in order:
            try:
                response = self.sessions[name].request(method, self.hosts[name] + path, timeout=15, **kwargs)
                response.content  # read the whole body here: a cut mid-body is a lost connection too
            except LOST:
                with self.tally.lock:
                    self.tally.failovers += 1
                continue
            with self.tally.lock:
                self.tally.statuses[f"{name} {response.status_code}"] += 1
            if response.status_code != expect:
                self.tally.error(f"{method} {path.split('?')[0]} on {name}: {response.status_code}")
                return None
            return response
        self.tally.error(f"{method} {path.split('?')[0]}: no host answered")
        return None


def sign_in_on_one_use_on_the_other(hosts: dict[str, str], outbox: Path) -> tuple[dict, dict]:
    """Password and emailed code on host 1; the same access token and trusted device on host 2."""
    one, two = session(), session()
    seen = set(outbox.glob("*.eml"))
    started = one.post(f"{hosts['host1']}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=15)
    assert started.status_code == 202, started.text
    code = code_from_outbox(outbox, EMAIL, seen, time.monotonic() + 30)
    verified = one.post(f"{hosts['host1']}/api/v1/auth/verify", timeout=15, json={
        "challenge_id": started.json()["challenge_id"], "client_secret": started.json()["client_secret"], "code": code})
    assert verified.status_code == 200, verified.text
    headers = {"Authorization": f"Bearer {verified.json()['access_token']}"}
    listing = two.get(f"{hosts['host2']}/api/v1/publications?limit=50", headers=headers, timeout=15)
    assert listing.status_code == 200, listing.text
    first = listing.json()["publications"][0]
    download = two.get(hosts["host2"] + first["download_url"], headers=headers, timeout=15)
    mails_before = set(outbox.glob("*.eml"))
    again = two.post(f"{hosts['host2']}/api/v1/auth/login", timeout=15,
                     json={"email": EMAIL, "password": PASSWORD, "device_token": verified.json()["device_token"]})
    report = {"host1_login": started.status_code, "host1_verify": verified.status_code,
              "host2_download_with_host1_token": download.status_code,
              "host2_download_sha256_ok": hashlib.sha256(download.content).hexdigest() == first["sha256"],
              "host2_login_on_host1_device": again.status_code,
              "new_mail_for_host2_login": len(set(outbox.glob("*.eml")) - mails_before)}
    return report, {"Authorization": f"Bearer {again.json()['access_token']}"} if again.status_code == 200 else headers


def load(client: FailoverClient, headers: dict, tally: Tally, stop_at: float, index: int,
         digests: dict[str, set[str]]) -> None:
    rounds = 0
    while time.monotonic() < stop_at:
        rounds += 1
        prefer = ("host1", "host2")[(index + rounds) % 2]
        listing = client.request("GET", "/api/v1/publications?limit=50", prefer, 200, headers=headers)
        if listing is None:
            continue
        choice = random.choice(listing.json()["publications"])
        download = client.request("GET", choice["download_url"], prefer, 200, headers=headers)
        if download is None:
            continue
        with tally.lock:
            tally.downloads += 1
            digests.setdefault(choice["id"], set()).add(hashlib.sha256(download.content).hexdigest())


def publish(http: requests.Session, base: str, label: str) -> tuple[requests.Response, str]:
    """Post one new version of the report (a fresh PDF); returns the answer and the PDF's SHA-256."""
    pdf = make_pdf(60_000)
    sha = hashlib.sha256(pdf).hexdigest()
    metadata = {"report": REPORT, "run_id": f"two-hosts-{secrets.token_hex(3)}", "sha256": sha, "period_label": label, "pages": 1}
    posted = http.post(f"{base}/api/v1/publications", timeout=30,
                       headers={"Authorization": f"Bearer {os.environ['NBPRESS_TEST_PUBLISHER_TOKEN']}"},
                       files={"file": ("report.pdf", pdf, "application/pdf"), "metadata": (None, json.dumps(metadata))})
    return posted, sha


def publish_on_host2(hosts: dict[str, str], headers: dict) -> dict:
    """One new version through host 2 while host 1 is down, then read back through host 2."""
    http = session()
    try:
        http.get(hosts["host1"] + "/login", timeout=5)
        host1_down = False
    except LOST:
        host1_down = True
    posted, sha = publish(http, hosts["host2"], "while host 1 is down")
    result = {"host1_down": host1_down, "publish_status": posted.status_code}
    if posted.status_code == 201:
        public_id = posted.json()["id"]
        listed = http.get(f"{hosts['host2']}/api/v1/publications?limit=50", headers=headers, timeout=15).json()
        entry = next((p for p in listed["publications"] if p["id"] == public_id), None)
        result["listed"] = entry is not None
        if entry is not None:
            back = http.get(hosts["host2"] + entry["download_url"], headers=headers, timeout=15)
            result["read_back_status"] = back.status_code
            result["read_back_sha256_ok"] = hashlib.sha256(back.content).hexdigest() == sha
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outbox", type=Path)
    parser.add_argument("host1")
    parser.add_argument("host2")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--known", default="{}", help="JSON {public_id: sha256} published before the run")
    args = parser.parse_args(argv)
    hosts, tally = {"host1": args.host1, "host2": args.host2}, Tally()
    sign_in, headers = sign_in_on_one_use_on_the_other(hosts, args.outbox)
    truth = json.loads(args.known)
    http = session()
    for n in range(2):  # two more versions, through host 1: the load downloads them from both hosts
        posted, sha = publish(http, hosts["host1"], f"before the load {n}")
        assert posted.status_code == 201, posted.text
        truth[posted.json()["id"]] = sha
    digests: dict[str, set[str]] = {}
    stop_at = time.monotonic() + args.seconds
    threads = [threading.Thread(target=load, args=(FailoverClient(hosts, tally), headers, tally, stop_at, i, digests), daemon=True)
               for i in range(args.threads)]
    for thread in threads:
        thread.start()
    print("load started", flush=True)
    for thread in threads:
        thread.join(timeout=args.seconds + 60)
    mismatched = sorted(pid for pid, seen in digests.items() if seen != {truth.get(pid)})
    published = publish_on_host2(hosts, headers)
    print(json.dumps({"sign_in": sign_in, "requests": dict(sorted(tally.statuses.items())), "failovers": tally.failovers,
                      "downloads": tally.downloads, "publications_downloaded": len(digests), "sha256_mismatches": mismatched, "errors": tally.errors[:10],
                      "error_count": len(tally.errors), "published_while_host1_down": published}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
