"""Two portal hosts on one private network, sharing PostgreSQL, S3 and Redis; one of them killed mid-load.

Three network namespaces on a bridge (tests/proof/netns.py): "host1" and "host2" each run one
gunicorn portal (2 workers) with the same secrets and settings; "client" runs
tests/proof/two_hosts_client.py. PostgreSQL, moto's S3 server and redis-server run in the root
namespace, bound to the bridge's address only; mail goes to one file outbox both hosts write.

The client signs in on host 1 (password, emailed code) and downloads from host 2 with that
token; host 2 accepts host 1's trusted device without a new code. Two versions are published
through host 1; then several threads download them (and the seeded one) from both hosts while
host 1's gunicorn (master and workers) is SIGKILLed: requests fail over on lost connections only,
no answer is other than 200, every SHA-256 matches what was published. With
host 1 down, a new version is published through host 2 and read back there.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack

import pytest

from benchmarks.portal import start_portal, stop, wait_for_port
from tests.portal.redis_server import REDIS_SERVER, RedisServer
from tests.portal.s3_server import REGION, ROOT, moto_server, s3_client
from tests.postgres import find_bin_dir, postgres_server
from tests.proof.load import seed_instance
from tests.proof.netns import private_network, unavailable
from tests.proof.two_hosts_client import PUBLIC_NAME

PORT = 8000  # the same on both hosts: each has its own address
LOAD_SECONDS = 6
KILL_AFTER = 2.0  # seconds into the load

NO_NAMESPACES = unavailable()  # why not, or None
pytestmark = [
    pytest.mark.skipif(NO_NAMESPACES is not None, reason=NO_NAMESPACES or ""),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (Debian package redis-server; `make test` installs it)"),
    pytest.mark.skipif(find_bin_dir() is None, reason="PostgreSQL is not installed (Debian package postgresql; `make test` installs it)"),
]


def read_line(process: subprocess.Popen, text: str, timeout: float) -> None:
    """Wait (bounded) for a stdout line holding ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            line = process.stdout.readline()
            assert line, f"the client ended before printing {text!r} (status {process.wait(timeout=10)})"
            if text in line:
                return
    raise AssertionError(f"the client did not print {text!r} within {timeout:g} s")


def test_two_hosts_share_sign_in_and_files_and_one_serves_on_when_the_other_is_killed(tmp_path, proof):
    proof.case("faults", "one of two portal hosts (network namespaces, shared PostgreSQL, S3, Redis) SIGKILLed under load",
               "a sign-in on one host serves on the other (token and trusted device); the other host serves on, "
               "no request sees a 500, every SHA-256 matches; publishing goes on through the survivor")
    with ExitStack() as stack:
        net = stack.enter_context(private_network(["host1", "host2", "client"]))
        database_url = stack.enter_context(postgres_server(listen=net.gateway, allow=net.cidr))
        moto = moto_server(host=net.gateway)
        stack.callback(moto.kill)
        redis = RedisServer(tmp_path, host=net.gateway)
        stack.callback(redis.stop)
        redis.start()
        s3_client(moto.port, net.gateway).create_bucket(Bucket="nbpress-hosts")
        outbox = tmp_path / "outbox"  # both hosts' mail
        settings = {"FILES_URL": "s3://nbpress-hosts/portal", "S3_ENDPOINT_URL": f"http://{net.gateway}:{moto.port}",
                    "S3_REGION": REGION, "S3_ACCESS_KEY_ID": "portal", "S3_SECRET_ACCESS_KEY": "portal-secret",
                    "RATELIMIT_STORAGE_URL": redis.url, "MAIL_URL": f"file:{outbox}", "TRUSTED_HOSTS": PUBLIC_NAME}
        instances = {"host1": tmp_path / "host1", "host2": tmp_path / "host2"}
        token, known = seed_instance(instances["host1"], users=1, database_url=database_url, settings=settings)
        instances["host2"].mkdir(mode=0o700)
        shutil.copy(instances["host1"] / "portal.toml", instances["host2"] / "portal.toml")  # same secrets and settings

        servers = {}
        for role, instance in instances.items():
            servers[role] = start_portal(instance, PORT, 2, 4, instance / "gunicorn.log", host=net.addresses[role],
                                         wrapper=net.exec_prefix(role))
            stack.callback(stop, servers[role])
        for role, process in servers.items():
            wait_for_port(PORT, process, f"gunicorn on {role}", timeout=60, host=net.addresses[role])

        client = subprocess.Popen(
            [*net.exec_prefix("client"), sys.executable, "-m", "tests.proof.two_hosts_client", str(outbox),
             f"http://{net.addresses['host1']}:{PORT}", f"http://{net.addresses['host2']}:{PORT}",
             "--seconds", str(LOAD_SECONDS), "--threads", "4", "--known", json.dumps(known)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "NBPRESS_TEST_PUBLISHER_TOKEN": token})
        stack.callback(lambda: client.poll() is None and (client.kill(), client.wait(timeout=10)))
        read_line(client, "load started", timeout=90)
        time.sleep(KILL_AFTER)
        os.killpg(servers["host1"].pid, signal.SIGKILL)  # the host is gone: master and workers at once
        servers["host1"].wait(timeout=10)
        output, _ = client.communicate(timeout=LOAD_SECONDS + 120)
        assert client.returncode == 0, output
        summary = json.loads(output.strip().splitlines()[-1])
        print(f"\ntwo hosts: requests {summary['requests']}, failovers {summary['failovers']}, "
              f"downloads {summary['downloads']} of {summary['publications_downloaded']} publications, errors {summary['error_count']}, "
              f"sign-in {summary['sign_in']}, while host 1 down {summary['published_while_host1_down']}")

    proof.figures("fault: one of two hosts killed", {"host1_requests": summary["requests"].get("host1 200", 0),
                                                      "host2_requests": summary["requests"].get("host2 200", 0),
                                                      "failovers": summary["failovers"],
                                                      "downloads": summary["downloads"], "errors": summary["error_count"]})
    assert summary["sign_in"] == {"host1_login": 202, "host1_verify": 200, "host2_download_with_host1_token": 200,
                                  "host2_download_sha256_ok": True, "host2_login_on_host1_device": 200,
                                  "new_mail_for_host2_login": 0}
    assert summary["error_count"] == 0, summary["errors"]
    assert {status.split()[1] for status in summary["requests"]} == {"200"}  # no 500, nothing but 200
    assert summary["requests"].get("host1 200", 0) > 0 and summary["requests"].get("host2 200", 0) > 0
    assert summary["failovers"] > 0  # host 1 died while the load ran
    assert summary["downloads"] > 0 and summary["sha256_mismatches"] == []
    assert summary["publications_downloaded"] == 3  # the seeded one and two published through host 1
    assert summary["published_while_host1_down"] == {"host1_down": True, "publish_status": 201, "listed": True,
                                                     "read_back_status": 200, "read_back_sha256_ok": True}
