"""Keep password-reset tokens out of the access logs.

The emailed link carries its token in the URL path (``/password/reset/<token>``), and both
Werkzeug (development server) and gunicorn log every request line. A filter on their access
loggers replaces the token with ``***`` in the message and its arguments before any handler
writes it. A front server (nginx) keeps its own log: see docs/security-model.md.
"""

from __future__ import annotations

import logging
import re

__all__ = ["mask", "TokenMask", "install"]

_TOKEN_IN_PATH = re.compile(r"(/password/reset/)[^\s?\"/]+")
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


def mask(text: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1***", text)


def _masked(value):
    return mask(value) if isinstance(value, str) else value


class TokenMask(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        if isinstance(record.args, dict):  # gunicorn's access log passes its atoms as a dict
            record.args = {k: _masked(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_masked(v) for v in record.args)
        return True


def install() -> None:
    """Add the filter once to each access logger (create_app may run many times in a process)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenMask) for f in logger.filters):
            logger.addFilter(TokenMask())
