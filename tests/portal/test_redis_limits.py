"""Per-IP limits shared through Redis, and failing closed when Redis is away.

A real ``redis-server`` (Debian's; loopback, a password, no persistence) and two real gunicorn
servers of one portal (one SQLite database, one Redis). Sign-in attempts from one address,
spread over both servers, stop at exactly the configured count in total; with Redis stopped,
limited endpoints answer 503 (never served past the limit, never 500) while the rest of the
portal serves; Redis back, sign-in serves again. Plus the settings that hold the limits.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

from flask_migrate import upgrade

from publish_server import create_app
from publish_server.errors import ConfigError
from publish_server.rate_limits import LIMIT_SETTINGS, masked_url
from benchmarks.portal import start_portal, stop, wait_for_port
from tests.helpers import free_port
from tests.portal.redis_server import REDIS_SERVER, RedisServer
from tests.proof.load import PASSWORD, seed_instance

from .conftest import base_config

AT_ONCE = 50
SIGNIN_LIMIT = 12  # not the default (10): the setting is what counts
UNAVAILABLE = "Sign-in is unavailable for a moment; try again shortly."


@contextmanager
def portal(instance: Path, name: str) -> Iterator[str]:
    """One gunicorn server (1 worker, 4 threads) of ``instance``, logging to gunicorn-NAME.log; yields its base URL."""
    port = free_port()
    process = start_portal(instance, port, 1, 4, instance / f"gunicorn-{name}.log")
    try:
        wait_for_port(port, process, f"gunicorn {name}")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def api_login(base: str, email: str, password: str) -> requests.Response:
    return requests.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password}, timeout=60)


def at_once(calls) -> list[requests.Response]:
    """Run the calls together: every thread waits at a barrier, then all send."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def wrong_logins(bases: list[str], tag: str) -> list[requests.Response]:
    """AT_ONCE failed sign-ins from this address, alternating servers, each for its own address
    (so the per-account brake in the database never answers: only the per-IP limit does)."""
    return at_once([lambda i=i: api_login(bases[i % len(bases)], f"{tag}{i}@example.org", "not the password!")
                    for i in range(AT_ONCE)])


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (Debian package redis-server; `make test` installs it)")
def test_two_servers_share_the_per_ip_limits_in_redis_and_refuse_while_it_is_away(tmp_path):
    redis = RedisServer(tmp_path)
    instance = tmp_path / "instance"
    seed_instance(instance, users=1)  # reader0@example.org with PASSWORD; file outbox
    with (instance / "portal.toml").open("a") as settings:
        settings.write(f'RATELIMIT_STORAGE_URL = "{redis.url}"\nRATELIMIT_SIGNIN_PER_IP = "{SIGNIN_LIMIT} per hour"\n')
    with ExitStack() as stack:
        stack.callback(redis.stop)
        # Server B starts while Redis is not running yet: it serves, and sign-in answers 503.
        b = stack.enter_context(portal(instance, "b"))
        assert requests.get(f"{b}/login", timeout=30).status_code == 200
        early = api_login(b, "reader0@example.org", PASSWORD)
        assert early.status_code == 503 and early.json() == {"error": "unavailable", "message": UNAVAILABLE}
        assert early.headers["Retry-After"] == "5"

        redis.start()
        a = stack.enter_context(portal(instance, "a"))
        bases = [a, b]
        # Sign-ins that work take no slot (each gives its own back), in either server.
        assert [api_login(base, "reader0@example.org", PASSWORD).status_code for base in bases + [a]] == [202] * 3

        answers = wrong_logins(bases, "guess")
        assert Counter(r.status_code for r in answers) == {401: SIGNIN_LIMIT, 429: AT_ONCE - SIGNIN_LIMIT}
        assert {r.status_code for r in answers[0::2]} == {401, 429} == {r.status_code for r in answers[1::2]}  # both counted
        assert api_login(b, "reader0@example.org", PASSWORD).status_code == 429  # the right password waits too

        redis.stop()
        answers = wrong_logins(bases, "away")
        assert Counter(r.status_code for r in answers) == {503: AT_ONCE}
        assert {r.json()["message"] for r in answers} == {UNAVAILABLE}
        page = requests.post(f"{a}/login", data={"email": "x@example.org", "password": "y"}, timeout=30)
        assert page.status_code == 503 and UNAVAILABLE in page.text and "Traceback" not in page.text
        withdraw = requests.post(f"{a}/api/v1/publications/nothing/withdraw", json={"reason": "r"}, timeout=30,
                                 headers={"Authorization": "Bearer not-a-token"})
        assert withdraw.status_code == 503 and withdraw.json()["error"] == "unavailable"
        assert [requests.get(f"{base}/login", timeout=30).status_code for base in bases] == [200, 200]  # the rest serves

        redis.start()  # empty again (no persistence): counting starts over
        assert [api_login(base, "back@example.org", "not the password!").status_code for base in bases] == [401, 401]
        assert api_login(a, "reader0@example.org", PASSWORD).status_code == 202

    masked = masked_url(redis.url)
    assert masked == f"redis://:***@127.0.0.1:{redis.port}/0"
    for name, outages in (("a", ["while serving"]), ("b", ["at start-up", "while serving"])):
        log = (instance / f"gunicorn-{name}.log").read_text()
        assert redis.password not in log and "Traceback" not in log, log
        # One line per outage and server, however many requests it refused; one when Redis is back.
        unreachable = [line for line in log.splitlines() if "unreachable" in line]
        assert [re.search(r"unreachable (at start-up|while serving)", line).group(1) for line in unreachable] == outages, log
        assert all(masked in line for line in unreachable)
        assert len(re.findall("reachable again", log)) == len(outages), log


@pytest.mark.parametrize("name", LIMIT_SETTINGS)
@pytest.mark.parametrize("value", ["ten per minute", "10 per fortnight", "", "0 per minute", "10/minute;"])
def test_a_malformed_limit_stops_start_up_with_one_line_naming_it(tmp_path, name, value):
    with pytest.raises(ConfigError, match=rf"^setting {name}: ") as refused:
        create_app(base_config(**{name: value}), instance_path=tmp_path / "instance")
    assert "\n" not in str(refused.value)


def test_limit_settings_take_several_windows_and_storage_urls_are_checked(tmp_path):
    app = create_app(base_config(RATELIMIT_SIGNIN_PER_IP="3/minute;20/hour"), instance_path=tmp_path / "a")
    assert app.config["NBPRESS"]["RATELIMIT_SIGNIN_PER_IP"] == "3/minute;20/hour"
    with pytest.raises(ConfigError, match=r"^setting RATELIMIT_STORAGE_URL: expected memory:// or redis://") as refused:
        create_app(base_config(RATELIMIT_STORAGE_URL="memcached://:hunter22@cache:11211"), instance_path=tmp_path / "b")
    assert "hunter22" not in str(refused.value)
    assert masked_url("rediss://user:hunter22@cache:6380/1") == "rediss://user:***@cache:6380/1"
    assert masked_url("redis://cache:6379/0") == "redis://cache:6379/0"


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (Debian package redis-server; `make test` installs it)")
def test_redis_gone_after_the_check_still_answers_without_a_500(tmp_path):
    """Flask-Limiter reads Redis again after the view (its X-RateLimit headers): Redis stopped
    between the check and that read leaves the view's answer as it was, and one log line."""
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        app = create_app(base_config(RATELIMIT_STORAGE_URL=redis.url), instance_path=tmp_path / "instance")
        with app.app_context():
            upgrade()
        app.after_request(lambda response: (redis.stop(), response)[1])  # runs first of the after-request hooks
        answer = app.test_client().post("/api/v1/auth/login", json={"email": "nobody@example.org", "password": "wrong!"})
        assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_credentials"
        assert "X-RateLimit-Limit" not in answer.headers
    finally:
        redis.stop()


def test_a_silent_redis_is_given_up_on_after_2_seconds_with_a_503(tmp_path):
    """A Redis host that accepts connections and never answers (hung, or a black hole behind a
    proxy) must not hold sign-in: redis-py would wait forever without the portal's timeouts."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        app = create_app(base_config(RATELIMIT_STORAGE_URL=url), instance_path=tmp_path / "instance")
        answers = []
        login = threading.Thread(target=lambda: answers.append(app.test_client().post(
            "/api/v1/auth/login", json={"email": "a@example.org", "password": "wrong!"})), daemon=True)
        started = time.monotonic()
        login.start()
        login.join(10)  # closing the silent socket afterwards ends a request still waiting
        waited = time.monotonic() - started
    assert answers, f"still waiting for Redis after {waited:.0f} s"
    assert answers[0].status_code == 503 and answers[0].get_json()["message"] == UNAVAILABLE
    assert 1.5 < waited < 4.5, waited  # 2 s (recent redis-py clients give up after 5 s by themselves; older ones never)
