"""Publish a finished run's PDF to the portal over HTTP (``nbpress publish``, ``run --publish``).

The publication HTTP API is the only contract with the portal: this module never imports
``publish_server``. One ``POST /api/v1/publications`` per attempt, multipart with the PDF
(part ``file``) and a JSON ``metadata`` part (report, run id, SHA-256, parameters, period,
variant, pages, audience). A report with ``variant_by`` sends its ``audience.by`` groups as
``variant_audience``: the portal grants them the run's variant (every version of it) rather than
this one publication.

Where the publisher token comes from, never the command line (other users can read it in
``ps``): ``NBPRESS_PUBLISH_TOKEN``, else the TOML file named by ``NBPRESS_PUBLISH_CONFIG`` or
``~/.config/nbpress/publish.toml`` (keys ``portal`` and ``token``; refused when other users can
read it). The portal URL: ``--portal``, else ``NBPRESS_PORTAL_URL``, else that file. The token
is sent only over HTTPS, or plain HTTP to this machine (``NBPRESS_PUBLISH_ALLOW_HTTP=1`` for a
private network), never to a redirect target, and never appears in a message.

Connection failures, timeouts, 5xx and 429 are retried with exponential backoff (a 429's
``Retry-After`` is honoured, capped); any other 4xx is final. Sending again is safe: the portal
answers a run it already has with that same publication.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from .. import settings
from ..errors import PublishError, RunDirError
from ..inputs.sensitive import mask_url_passwords, shareable
from ..inputs.spec import Audience
from ..runs.run_folder import PublicationRef, RunRecord, load_run, save_run
from ..version import __version__

__all__ = ["PublishConfig", "PublishedRun", "load_publish_config", "publish_run", "period_label", "mask_url_passwords"]

# The variables, their defaults and docs are declared in toolkit/settings.py.
TOKEN_ENV = settings.PREFIX + "PUBLISH_TOKEN"
CONFIG_ENV = settings.PREFIX + "PUBLISH_CONFIG"
PORTAL_ENV = settings.PREFIX + "PORTAL_URL"
ALLOW_HTTP_ENV = settings.PREFIX + "PUBLISH_ALLOW_HTTP"
DEFAULT_CONFIG = settings.default("PUBLISH_CONFIG")
ENDPOINT = "/api/v1/publications"
MAX_DELAY = 30.0


@dataclass(frozen=True)
class PublishConfig:
    portal: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class PublishedRun:
    id: str
    report: str
    version: int
    url: str  # the download URL on the portal (API: answers 401 JSON to a browser)
    sha256: str
    created: bool  # False: the portal already had this run and answered with that publication
    page_url: str = ""  # the report's page (the run's variant chosen): the link for recipients (their browser signs in there)
    variant_label: str = ""  # "north"; "" for a report without variants
    period_label: str = ""  # "2026-W47": versions count per variant and period, so lines name both
    readers: int | None = None  # recipients who can read it; None: the portal did not say (older portal)
    reader_groups: tuple[str, ...] = ()

    @property
    def link(self) -> str:
        """The link to show people: the report page, or the download URL from a portal without pages."""
        return self.page_url or self.url

    @property
    def name(self) -> str:
        """``weekly_statistics north 2026-W47 v2``: the report, its variant, period and version, as lines name it."""
        return " ".join(part for part in (self.report, self.variant_label, self.period_label, f"v{self.version}") if part)

    @property
    def nobody_can_read(self) -> bool:
        return self.readers == 0

    def readers_text(self) -> str:
        """Who can read it, said plainly: "12 users in north, south"; "" when the portal did not say."""
        if self.readers is None:
            return ""
        users = f"{self.readers} user" + ("" if self.readers == 1 else "s")
        return f"{users} in {', '.join(self.reader_groups)}" if self.reader_groups else users


# --- configuration ---------------------------------------------------------------------------


def _config_file(env: Mapping[str, str]) -> tuple[Path, dict[str, str]]:
    explicit = env.get(CONFIG_ENV)
    path = Path(settings.get("PUBLISH_CONFIG", env)).expanduser()
    if not path.is_file():
        if explicit:
            raise PublishError(f"{path}: no such publish config (named by {CONFIG_ENV})")
        return path, {}
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise PublishError(f"{path}: other users can read this file with its token; run: chmod 600 {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # The decoder's message can quote the line, and the line can be the token: name the class only.
        raise PublishError(f"{path}: cannot read it as TOML ({type(exc).__name__})") from None
    for key, value in data.items():
        if key not in {"portal", "token"}:
            raise PublishError(f"{path}: unknown key {key!r} (expected portal and token)")
        if not isinstance(value, str):
            raise PublishError(f"{path}: {key} must be a string")
    return path, data


def load_publish_config(portal: str | None = None, *, environ: Mapping[str, str] | None = None) -> PublishConfig:
    """The portal URL and the token, from ``portal``, the environment and the config file."""
    env = os.environ if environ is None else environ
    path, values = _config_file(env)
    token = (settings.get("PUBLISH_TOKEN", env) or values.get("token") or "").strip()
    url = (portal or settings.get("PORTAL_URL", env) or values.get("portal") or "").strip()
    if not token:
        raise PublishError(f"no publisher token: set {TOKEN_ENV} or put token = \"...\" in {path}")
    if not url:
        raise PublishError(f"no portal URL: pass --portal URL, set {PORTAL_ENV} or put portal = \"...\" in {path}")
    return PublishConfig(url, token)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _portal_base(url: str, env: Mapping[str, str]) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise PublishError("the portal URL must look like https://host[:port][/path]")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise PublishError("the portal URL must carry no credentials, query or fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not settings.get("PUBLISH_ALLOW_HTTP", env):
        raise PublishError(
            f"refusing to send the publisher token over plain HTTP to {parts.hostname}: use https:// "
            f"(or set {ALLOW_HTTP_ENV}=1 on a private network)"
        )
    return url.strip().rstrip("/")


# --- what is sent ----------------------------------------------------------------------------


def period_label(record: RunRecord) -> str:
    """The period a run covers, as made when it was prepared (spec ``period``).

    Runs kept from before that field existed fall back to their first header parameter's value.
    """
    if record.period:
        return record.period
    shown = [record.parameters[name] for name in record.spec.get("header_parameters") or [] if name in record.parameters]
    return " ".join(str(shown[0]).split())[:120] if shown else ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _variant_audience(audience: Mapping[str, Any] | None, parameters: dict[str, Any]) -> Mapping[str, Any] | None:
    """The spec's audience for this run's parameter values (``audience.by``: the north PDF
    goes to the north team, not to every team named in the mapping)."""
    if not audience or not audience.get("by"):
        return audience
    return Audience.model_validate(audience).for_values(parameters)


def _audiences(record: RunRecord, audience: Mapping[str, Any] | None) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """This publication's own audience and its variant's (None: none).

    Without ``variant_by`` (or with an ``audience`` given) the spec's audience for this run's
    values goes to the publication, as before; with it, the ``audience.by`` groups go to the variant.
    """
    spec_audience = record.spec.get("audience")
    if audience is not None or not record.variant or not spec_audience or not spec_audience.get("by"):
        return (audience if audience is not None else _variant_audience(spec_audience, record.parameters)), None
    parsed = Audience.model_validate(spec_audience)
    common = {"groups": list(parsed.groups), "users": list(parsed.users)}
    everyone = parsed.for_values(record.parameters)
    by_variant = [g for g in everyone["groups"] if g not in common["groups"]]
    return (common if common["groups"] or common["users"] else None), ({"groups": by_variant, "users": []} if by_variant else None)


def _metadata(record: RunRecord, sha256: str, audience: Mapping[str, Any] | None) -> dict[str, Any]:
    spec = record.spec
    chosen, for_variant = _audiences(record, audience)
    metadata: dict[str, Any] = {
        "report": record.report,
        "title": spec.get("title") or None,
        "description": spec.get("description") or None,
        "run_id": record.run_id,
        "sha256": sha256,
        "parameters": shareable(record.parameters),
        "period_label": period_label(record),
        "pages": record.pages,
    }
    if record.variant:
        metadata["variant"] = dict(record.variant)
    if record.summary:
        metadata["summary"] = record.summary
    if (spec.get("notify") or {}).get("attach_pdf"):
        metadata["notify"] = {"attach_pdf": True}
    if chosen:
        metadata["audience"] = {"groups": list(chosen.get("groups") or []), "users": list(chosen.get("users") or [])}
    if for_variant:
        metadata["variant_audience"] = for_variant
    return metadata


# --- the request -----------------------------------------------------------------------------


class _Bearer(requests.auth.AuthBase):
    """The token as an auth object: requests then skips ~/.netrc and drops it on redirects."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(***)"


def _message(response: requests.Response) -> str:
    try:
        text = str(response.json().get("message") or "")
    except (ValueError, AttributeError):
        text = ""
    text = " ".join((text or response.reason or "no message").split())
    return text[:300]


def _delay(attempt: int, backoff: float, response: requests.Response | None) -> float:
    delay = backoff * 2 ** (attempt - 1)
    if response is not None and response.status_code in {429, 503}:
        try:
            delay = max(delay, float(response.headers.get("Retry-After", "")))
        except ValueError:
            pass
    return min(delay, MAX_DELAY)


def _post(base: str, pdf: Path, metadata: dict[str, Any], token: str, *, retries: int, timeout: float, backoff: float) -> tuple[int, dict[str, Any]]:
    attempts = max(1, retries + 1)
    body = json.dumps(metadata)
    headers = {"Accept": "application/json", "User-Agent": f"nbpress/{__version__}"}
    failure = ""
    with requests.Session() as session:
        for attempt in range(1, attempts + 1):
            response = None
            try:
                with pdf.open("rb") as handle:
                    files = {"file": ("report.pdf", handle, "application/pdf"), "metadata": (None, body, "application/json")}
                    response = session.post(base + ENDPOINT, files=files, headers=headers, auth=_Bearer(token),
                                            timeout=(10, timeout), allow_redirects=False)
            except requests.Timeout:
                failure = f"portal unreachable at {base} after {attempt} attempts (timed out)"
            except requests.ConnectionError:
                failure = f"portal unreachable at {base} after {attempt} attempts (connection failed)"
            else:
                status = response.status_code
                if status in {200, 201}:
                    try:
                        return status, response.json()
                    except ValueError:
                        raise PublishError(f"portal at {base} answered {status} without a publication (not JSON)", status=status, attempts=attempt) from None
                if 300 <= status < 400:
                    raise PublishError(f"portal answered {status} (a redirect): pass the portal's final URL with --portal", status=status, attempts=attempt)
                if status != 429 and status < 500:
                    raise PublishError(f"portal refused the upload ({status}): {_message(response)}", status=status, attempts=attempt)
                failure = f"portal failed with {status} after {attempt} attempts: {_message(response)}"
            if attempt < attempts:
                time.sleep(_delay(attempt, backoff, response))
    raise PublishError(failure, status=response.status_code if response is not None else None, attempts=attempts)


def _audience_answer(base: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The page link and readers from a publish answer; empty from a portal that sends neither."""
    readers = answer.get("readers")
    found: dict[str, Any] = {}
    if answer.get("page_url"):
        found["page_url"] = urljoin(base + "/", str(answer["page_url"]))
    if answer.get("variant_label"):
        found["variant_label"] = str(answer["variant_label"])
    if answer.get("period_label"):
        found["period_label"] = str(answer["period_label"])
    if isinstance(readers, dict):
        found["readers"] = int(readers["count"])
        found["reader_groups"] = tuple(str(g) for g in readers.get("groups") or ())
    return found


def publish_run(
    run_dir: Path | str,
    portal_url: str,
    token: str,
    *,
    audience: Mapping[str, Any] | None = None,
    retries: int = 4,
    timeout: float = 60.0,
    backoff: float = 0.5,
    environ: Mapping[str, str] | None = None,
) -> PublishedRun:
    """Publish ``run_dir``'s ``report.pdf``; record the publication in its ``run.json``.

    ``audience`` ({"groups": [...], "users": [...]}) overrides the spec's; ``retries`` is how
    many times a transient failure is retried after the first attempt.
    """
    run_dir = Path(run_dir)
    record = load_run(run_dir)
    # A run whose only failure was its (scheduled) upload has a finished PDF: it may go out later.
    upload_failed = record.status == "failed" and record.error is not None and record.error.stage == "publish"
    if record.status != "succeeded" and not upload_failed:
        raise PublishError(f"{run_dir}: the run did not succeed (status: {record.status}); a failed run is never published")
    pdf = run_dir / "report.pdf"
    if not pdf.is_file():
        raise RunDirError(f"{run_dir}: no report.pdf to publish")
    if not token:
        raise PublishError(f"no publisher token: set {TOKEN_ENV} or use the publish config file")
    base = _portal_base(portal_url, os.environ if environ is None else environ)
    sha256 = _sha256(pdf)
    status, answer = _post(base, pdf, _metadata(record, sha256, audience), token, retries=retries, timeout=timeout, backoff=backoff)
    try:
        published = PublishedRun(
            id=str(answer["id"]), report=str(answer["report"]), version=int(answer["version"]),
            url=urljoin(base + "/", str(answer["download_url"])), sha256=str(answer["sha256"]),
            created=status == 201, **_audience_answer(base, answer),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise PublishError(f"portal at {base} answered without the publication's id and version") from None
    if published.sha256 != sha256:
        raise PublishError(f"portal at {base} recorded another SHA-256 for this run ({published.sha256[:12]}...)")
    record.publication = PublicationRef(id=published.id, version=published.version, portal=base, url=published.url,
                                        page_url=published.page_url)
    if upload_failed:
        record.status, record.error = "succeeded", None
    save_run(run_dir, record)
    return published
