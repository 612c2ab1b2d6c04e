"""The host names the portal answers for (``TRUSTED_HOSTS``); a request for any other is a 400.

Werkzeug builds absolute URLs (its redirects, ``url_for(..., _external=True)``) from the
request's ``Host`` (or, with ``TRUSTED_PROXIES``, ``X-Forwarded-Host`` after ProxyFix), which
whoever sends the request chooses. Checking it before anything else runs means nothing the
portal answers can point at another site. The portal's own redirects and links are relative
paths anyway; Werkzeug's slash-merging redirect (``/reports//x`` -> an absolute
``https://<host>/reports/x``) is switched off in :func:`init_app`.

Flask's own ``TRUSTED_HOSTS`` is not used: Werkzeug 3.1 cannot match an IPv6 literal such as
``[::1]`` there, and its refusal (raised while binding the URL adapter) leaves no adapter to
render the HTML error page with, so a browser would get a 500.
"""

from __future__ import annotations

import ipaddress
import logging
import re

from flask import Flask, request
from werkzeug.wsgi import get_host

from .errors import BadRequest, ConfigError

__all__ = ["normal_host", "parse_trusted_hosts", "host_of", "trusted_hosts", "init_app"]

log = logging.getLogger(__name__)

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")


def normal_host(host: str) -> str | None:
    """``host`` (no port) lower-cased, IP literals in one spelling (IPv6 in brackets); None if neither."""
    host = host.strip().lower()
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        return host if len(host) <= 253 and _DNS_NAME.fullmatch(host) else None
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def parse_trusted_hosts(text: str) -> frozenset[str]:
    """The comma-separated setting as a set of hosts; :class:`ConfigError` (one line) when malformed."""
    hosts = set()
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        if re.fullmatch(r"[^:\[\]]+:\d+|\[[^\]]*\]:\d+", entry):
            raise ConfigError(f"setting TRUSTED_HOSTS: give {entry!r} without a port (any port is accepted)")
        normal = normal_host(entry)
        if normal is None:
            raise ConfigError(f"setting TRUSTED_HOSTS: {entry!r} is not a host name or IP address "
                              "(ASCII names such as reports.example.org, 192.0.2.10, [2001:db8::1])")
        hosts.add(normal)
    if not hosts:
        raise ConfigError("setting TRUSTED_HOSTS: name at least one host (the public host name of the portal)")
    return frozenset(hosts)


def host_of(environ: dict) -> str | None:
    """The request's host as :func:`normal_host` spells it (None when unreadable): Werkzeug's
    reading of ``Host`` (``X-Forwarded-Host`` once ProxyFix has run), "" when its characters are
    not those of a host, without the port."""
    host = get_host(environ)
    if host.startswith("["):
        host = host.partition("]")[0] + "]"
    else:
        host = host.partition(":")[0]
    return normal_host(host) if host else None


def trusted_hosts(app: Flask) -> frozenset[str]:
    """The hosts :func:`init_app` bound ``app`` to."""
    return app.extensions["nbpress.trusted_hosts"]


def init_app(app: Flask, trusted: frozenset[str]) -> None:
    app.url_map.merge_slashes = False  # "//" is a 404, never an absolute redirect built from Host
    app.extensions["nbpress.trusted_hosts"] = trusted

    def refuse_other_hosts() -> None:
        if host_of(request.environ) not in trusted:
            # The value passed Werkzeug's character check (or is empty): safe for one log line.
            log.warning("refused a request for host %r: not in TRUSTED_HOSTS", request.host)
            raise BadRequest("This portal is not served under that host name.", code="untrusted_host")

    # First of all hooks (the limiter's included): nothing runs for a host we do not serve.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_other_hosts)
