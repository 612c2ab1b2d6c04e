"""Host names: the portal answers only for the hosts it is told (TRUSTED_HOSTS), and nothing it
sends back (a redirect, a link) takes its host from the request.

No database is needed for these answers, so they run once (not per database).
"""

from __future__ import annotations

import logging

import pytest

from publish_server import create_app
from publish_server.errors import ConfigError

from .conftest import base_config


@pytest.fixture
def make_client(tmp_path):
    def make(**settings):
        return create_app(base_config(**settings), instance_path=tmp_path / "instance").test_client()

    return make


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:443", "localhost.evil.example", "127.0.0.1.evil.example"])
def test_a_request_for_another_host_is_refused_in_the_portals_error_shape(client, host, caplog):
    caplog.set_level(logging.WARNING)
    page = client.get("/login", headers={"Host": host})
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "Bad request" in page.text and "Location" not in page.headers
    assert "evil.example" not in page.text  # the error page does not echo the host
    api = client.get("/api/v1/publications", headers={"Host": host})
    assert api.status_code == 400 and api.get_json()["error"] == "untrusted_host"
    assert api.headers["Cache-Control"] == "no-store"
    assert sum("TRUSTED_HOSTS" in r.getMessage() for r in caplog.records) == 2  # one line each, for the operator


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:5000", "127.0.0.1:8000", "127.0.0.1", "[::1]:5000", "[0:0::1]"])
def test_the_default_hosts_serve_local_development_and_the_test_client(client, host):
    response = client.get("/login", headers={"Host": host})
    assert response.status_code == 200 and "Sign in" in response.text


@pytest.mark.parametrize("path", ["/reports//alpha", "/static//portal.css", "/account//devices", "/api//v1/publications"])
def test_doubled_slashes_are_never_redirected(client, path):
    for host, status in (("evil.example", 400), ("localhost", 404)):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == status, (path, host, response.headers.get("Location"))
        assert "Location" not in response.headers


def test_redirects_are_relative(client):
    response = client.get("/reports/alpha", headers={"Host": "localhost:5000"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/login?next=")


def test_a_configured_public_host_is_served_and_the_defaults_are_not(make_client):
    client = make_client(TRUSTED_HOSTS="reports.example.org, Intranet.Example.Org")
    for host in ("reports.example.org", "reports.example.org:8443", "intranet.example.org"):
        assert client.get("/login", headers={"Host": host}).status_code == 200, host
    for host in ("localhost", "127.0.0.1", "example.org", "www.reports.example.org"):
        assert client.get("/login", headers={"Host": host}).status_code == 400, host


def test_behind_a_proxy_the_forwarded_host_is_the_one_checked(make_client):
    """ProxyFix (TRUSTED_PROXIES) puts X-Forwarded-Host in place of Host; the check sees the result."""
    client = make_client(TRUSTED_PROXIES=1, TRUSTED_HOSTS="reports.example.org")
    upstream = {"Host": "127.0.0.1:8000", "X-Forwarded-For": "198.51.100.7"}
    assert client.get("/login", headers={**upstream, "X-Forwarded-Host": "reports.example.org"}).status_code == 200
    assert client.get("/login", headers={**upstream, "X-Forwarded-Host": "evil.example"}).status_code == 400
    assert client.get("/login", headers={"Host": "reports.example.org", "X-Forwarded-Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize(("value", "fragment"), [
    ("", "name at least one host"),
    (" , ", "name at least one host"),
    ("reports.example.org:443", "without a port"),
    ("https://reports.example.org", "not a host name"),
    ("*.example.org", "not a host name"),
    ("bad host", "not a host name"),
    ("[::1", "not a host name"),
])
def test_a_bad_trusted_hosts_setting_stops_start_up_with_one_line(tmp_path, value, fragment):
    with pytest.raises(ConfigError) as info:
        create_app(base_config(TRUSTED_HOSTS=value), instance_path=tmp_path / "instance")
    assert str(info.value).startswith("setting TRUSTED_HOSTS") and fragment in str(info.value)
    assert "\n" not in str(info.value)
