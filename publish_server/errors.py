"""The portal's error tree. HTTP errors carry their status; one handler answers HTML or JSON.

    PortalError                     base
    ├── ConfigError                 bad settings: start-up stops with one line
    └── HTTPError                   answered to the client with ``status`` and a public ``code``
        ├── BadRequest              400 malformed input
        ├── Unauthorized            401 no or bad credentials
        ├── Forbidden               403 authenticated but not allowed (CSRF, disabled account)
        │   └── PasswordChangeRequired  403 a one-time password: the API allows only changing it
        ├── NotFound                404 missing *or not granted*: existence is never leaked
        ├── Conflict                409 a state conflict
        ├── PayloadTooLarge         413 upload over the cap
        ├── UnsupportedMediaType    415 not a PDF
        ├── TooManyRequests         429 rate limited
        └── ServiceUnavailable      503 cannot serve as configured (see the log)
"""

from __future__ import annotations


class PortalError(Exception):
    pass


class ConfigError(PortalError):
    pass


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


class PayloadTooLarge(HTTPError):
    status, code, message = 413, "too_large", "The upload is too large."


class UnsupportedMediaType(HTTPError):
    status, code, message = 415, "unsupported_media_type", "Only PDF files are accepted."


class TooManyRequests(HTTPError):
    status, code, message = 429, "too_many_requests", "Too many attempts. Please wait and try again."


class ServiceUnavailable(HTTPError):
    status, code, message = 503, "unavailable", "The portal is not available. Please try again later."
