"""What the toolkit tells the portal about runs, over its HTTP API (issue 15's worker-facing half).

- ``PUT  /api/v1/reports/<report>/profile``             the parameter form, schedule, owners
- ``POST /api/v1/reports/<report>/runs``                a run's log line (upsert by run id)
- ``PUT  /api/v1/reports/<report>/runs/<id>/notebook``  a failed run's executed notebook as HTML
- ``POST /api/v1/run-requests/claim``                   take a queued request (204: none)
- ``POST /api/v1/run-requests/<id>/progress``           stage + lease renewal; the answer may say cancel
- ``POST /api/v1/run-requests/<id>/finish``             the outcome

Same rules as publishing (:mod:`.portal_client`, whose config and URL checks are reused): the
publisher token only over HTTPS or to this machine, never to a redirect, never in a message;
connection failures, timeouts, 5xx, 429 and a 409 ``conflict`` (another writer at the same
moment) retried with exponential backoff; any other 4xx is final. A 409 ``lease_lost`` is
:class:`LeaseLostError`: the run belongs to someone else now.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from ..errors import LeaseLostError, PublishError
from ..version import __version__
from .portal_client import PublishConfig, _Bearer, _delay, _message, _portal_base

__all__ = ["PortalRuns", "ClaimedRequest", "ProgressAnswer"]


@dataclass(frozen=True)
class ClaimedRequest:
    id: str
    report: str
    parameters: dict[str, Any]
    attempt: int
    lease_seconds: float
    requested_by: str


@dataclass(frozen=True)
class ProgressAnswer:
    cancel: bool
    lease_seconds: float


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


class PortalRuns:
    """The run endpoints of one portal, with one publisher token (thread-safe: a session per call)."""

    def __init__(self, config: PublishConfig, *, retries: int = 4, timeout: float = 30.0, backoff: float = 0.5,
                 environ: Mapping[str, str] | None = None):
        self.base = _portal_base(config.portal, os.environ if environ is None else environ)
        self._token = config.token
        self.retries, self.timeout, self.backoff = retries, timeout, backoff

    def __repr__(self) -> str:
        return f"PortalRuns({self.base!r})"

    # --- reports -------------------------------------------------------------------------

    def put_profile(self, report: str, profile: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/api/v1/reports/{_path(report)}/profile", profile, what="the profile") or {}

    def post_run_log(self, report: str, log: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/reports/{_path(report)}/runs", log, what="the run log") or {}

    def put_notebook(self, report: str, run_id: str, html: bytes) -> None:
        self._call("PUT", f"/api/v1/reports/{_path(report, 'runs', run_id)}/notebook", html,
                   content_type="text/html; charset=utf-8", what="the executed notebook")

    # --- run requests --------------------------------------------------------------------

    def claim(self, worker: str, reports: list[str] | None = None) -> ClaimedRequest | None:
        """The next queued request for this token's reports, or None when nothing is queued."""
        body: dict[str, Any] = {"worker": worker}
        if reports:
            body["reports"] = list(reports)
        # No retry after a sent claim: a lost answer would leave a request claimed twice over;
        # its lease lapses and the portal queues it again instead.
        answer = self._call("POST", "/api/v1/run-requests/claim", body, what="a claim", retry_sent=False)
        if not answer:
            return None
        try:
            found = answer["request"]
            return ClaimedRequest(id=str(found["id"]), report=str(found["report"]), parameters=dict(found.get("parameters") or {}),
                                  attempt=int(found.get("attempt") or 1), lease_seconds=float(found["lease_seconds"]),
                                  requested_by=str(found.get("requested_by") or ""))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise PublishError(f"portal at {self.base} answered a claim without a request's id, report and lease") from None

    def progress(self, request_id: str, worker: str, stage: str) -> ProgressAnswer:
        answer = self._call("POST", f"/api/v1/run-requests/{_path(request_id)}/progress", {"worker": worker, "stage": stage},
                            what="progress", retries=1) or {}
        try:
            return ProgressAnswer(cancel=bool(answer.get("cancel")), lease_seconds=float(answer["lease_seconds"]))
        except (KeyError, TypeError, ValueError):
            raise PublishError(f"portal at {self.base} answered progress without a lease") from None

    def finish(self, request_id: str, worker: str, status: str, **fields: Any) -> str:
        body = {"worker": worker, "status": status, **{k: v for k, v in fields.items() if v is not None}}
        answer = self._call("POST", f"/api/v1/run-requests/{_path(request_id)}/finish", body, what="the outcome") or {}
        return str(answer.get("status") or status)

    # --- the request ---------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any, *, what: str, content_type: str = "application/json",
              retries: int | None = None, retry_sent: bool = True) -> dict[str, Any] | None:
        """The answer's JSON (None for 204); retried as the module says; PublishError otherwise."""
        attempts = max(1, (self.retries if retries is None else retries) + 1)
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json", "Content-Type": content_type, "User-Agent": f"nbpress/{__version__}"}
        failure, response = "", None
        with requests.Session() as session:
            for attempt in range(1, attempts + 1):
                response = None
                try:
                    response = session.request(method, self.base + path, data=data, headers=headers, auth=_Bearer(self._token),
                                               timeout=(10, self.timeout), allow_redirects=False)
                except requests.ConnectTimeout:
                    failure = f"portal unreachable at {self.base} after {attempt} attempts (timed out)"
                except requests.Timeout:
                    failure = f"portal at {self.base} did not answer {what} in time"
                    if not retry_sent:
                        break
                except requests.ConnectionError:
                    failure = f"portal unreachable at {self.base} after {attempt} attempts (connection failed)"
                else:
                    found = self._answer(response, what, attempt)
                    if found is not _RETRY:
                        return found
                    failure = f"portal failed with {response.status_code} after {attempt} attempts: {_message(response)}"
                if attempt < attempts:
                    time.sleep(_delay(attempt, self.backoff, response))
        raise PublishError(failure, status=response.status_code if response is not None else None, attempts=attempts)

    def _answer(self, response: requests.Response, what: str, attempt: int) -> Any:
        status = response.status_code
        if status == 204:
            return None
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError:
                raise PublishError(f"portal at {self.base} answered {what} with {status} but not JSON", status=status,
                                   attempts=attempt) from None
        if 300 <= status < 400:
            raise PublishError(f"portal answered {status} (a redirect): pass the portal's final URL with --portal",
                               status=status, attempts=attempt)
        if status == 409 and (code := _error_code(response)) != "conflict":  # "conflict": racing another writer, try again
            if code == "lease_lost":
                raise LeaseLostError(f"the portal gave this request to another worker or ended it: {_message(response)}",
                                     status=status, attempts=attempt)
            raise PublishError(f"portal refused {what} ({status}): {_message(response)}", status=status, attempts=attempt)
        if status == 409:
            return _RETRY
        if status != 429 and status < 500:
            raise PublishError(f"portal refused {what} ({status}): {_message(response)}", status=status, attempts=attempt)
        return _RETRY


_RETRY = object()


def _error_code(response: requests.Response) -> str:
    try:
        return str(response.json().get("error") or "")
    except (ValueError, AttributeError):
        return ""
