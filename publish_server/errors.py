"""The portal's error tree: every error class the portal raises is defined here and drawn below.

HTTP errors carry their status and a public ``code``; one handler (:mod:`error_pages`) answers
HTML or JSON with the class's public message, never the exception's internals.

    PortalError                     base
    ├── ConfigError                 bad settings: start-up stops with one line
    ├── MailError                   a mail was not handed to the mail server (its text is for the log only)
    │   └── MailRefused             the server refused it for good (5xx): no retry
    └── HTTPError                   answered to the client with ``status`` and a public ``code``
        ├── BadRequest              400 malformed input
        │   └── PasswordRejected    400 a new password is refused (policy, mismatch, wrong current one)
        ├── Unauthorized            401 no or bad credentials
        ├── Forbidden               403 authenticated but not allowed (CSRF, disabled account)
        │   ├── PasswordChangeRequired  403 a one-time password: the API allows only changing it
        │   └── WrongProject        403 a publisher token acting on another project's report
        ├── NotFound                404 missing *or not granted*: existence is never leaked
        ├── Conflict                409 a state conflict
        │   └── LeaseLost           409 a run request no longer running under this worker (lease lapsed, or ended)
        ├── Gone                    410 a withdrawn publication (the message is the reason)
        ├── PayloadTooLarge         413 upload over the cap
        ├── UnsupportedMediaType    415 not a PDF
        ├── ChecksumMismatch        422 the file's SHA-256 is not the one announced
        ├── TooManyRequests         429 rate limited
        ├── ServiceUnavailable      503 cannot serve as configured (see the log)
        │   ├── StorageUnavailable  503 the object store did not answer or refused: nothing stored or sent
        │   └── LimitsUnavailable   503 the per-IP limits' storage (Redis) cannot be reached: refused, never unlimited
        ├── StorageFull             507 no room for the file: nothing was stored
        └── CodeProblem             400 a sign-in code step failed (401, 429 or 503 set per case)

One more class is a ``ConfigError`` but lives elsewhere: ``processes.StartUpError`` is also
gunicorn's ``AppImportError`` (so gunicorn logs one line), and this module imports nothing.
tests/portal/test_layout.py checks that this drawing and the classes agree.
"""

from __future__ import annotations


class PortalError(Exception):
    pass


class ConfigError(PortalError):
    pass


class MailError(PortalError):
    """The message could not be handed to the mail server (or was refused before sending)."""


class MailRefused(MailError):
    """The mail server refused this message for good (a 5xx answer): trying again will not help."""


class HTTPError(PortalError):
    status = 500
    code = "internal_error"
    message = "Something went wrong on our side."

    def __init__(self, message: str | None = None, *, code: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code


class BadRequest(HTTPError):
    status, code, message = 400, "bad_request", "The request is not valid."


class PasswordRejected(BadRequest):
    """A new password is refused; ``str()`` (the message) is safe to show the user."""

    code, message = "password_rejected", "That password cannot be used."


class Unauthorized(HTTPError):
    status, code, message = 401, "unauthorized", "Please sign in."


class Forbidden(HTTPError):
    status, code, message = 403, "forbidden", "You are not allowed to do that."


class PasswordChangeRequired(Forbidden):
    code, message = "password_change_required", "Choose a new password first: POST /api/v1/auth/password."


class NotFound(HTTPError):
    status, code, message = 404, "not_found", "There is nothing here."


class Conflict(HTTPError):
    status, code, message = 409, "conflict", "That conflicts with the current state."


class WrongProject(Forbidden):
    """A publisher token acting on a report of another project (see :mod:`report_runs.projects`)."""

    code = "wrong_project"


class LeaseLost(Conflict):
    """A worker's progress or finish for a run request it no longer holds (see :mod:`report_runs.claims`)."""

    code, message = "lease_lost", "This request is no longer running under this worker (its lease lapsed, or it ended)."


class Gone(HTTPError):
    status, code, message = 410, "withdrawn", "This publication was withdrawn."


class PayloadTooLarge(HTTPError):
    status, code, message = 413, "too_large", "The upload is too large."


class UnsupportedMediaType(HTTPError):
    status, code, message = 415, "unsupported_media_type", "Only PDF files are accepted."


class ChecksumMismatch(HTTPError):
    status, code, message = 422, "checksum_mismatch", "The file's SHA-256 does not match the metadata."


class TooManyRequests(HTTPError):
    status, code, message = 429, "too_many_requests", "Too many attempts. Please wait and try again."


class ServiceUnavailable(HTTPError):
    status, code, message = 503, "unavailable", "The portal is not available. Please try again later."


class StorageUnavailable(ServiceUnavailable):
    """The object store failed (down, slow, refused credentials); the log line says which, without secrets."""

    code, message = "storage_unavailable", "The file store is not reachable right now; nothing was stored or sent. Please try again later."


class LimitsUnavailable(ServiceUnavailable):
    message = "Sign-in is unavailable for a moment; try again shortly."


class StorageFull(HTTPError):
    status, code, message = 507, "storage_full", "The portal has no room for the file right now; nothing was stored. Try again later."


class CodeProblem(HTTPError):
    """Why a code step failed; ``code`` is the public error code, the message is safe to show.

    The status is set per case (see :mod:`signin.code_challenges`): 401 for a wrong code or an
    ended challenge, 429 for too many codes, 503 when the code could not be sent.
    """

    status, code, message = 400, "code_invalid", "That code is not right. Check the email and try again."
