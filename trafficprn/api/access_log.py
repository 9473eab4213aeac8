"""Keep searched plates out of the access log: uvicorn logs each request's path with its
query string, and `GET /api/plates?text=...` carries a plate."""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = ("text", "plate", "plate_text", "plate_hash", "key", "api_key")
_PARAM = re.compile(r"(?P<pre>[?&](?:" + "|".join(SECRET_PARAMS) + r")=)[^&#\s]*", re.IGNORECASE)


def redact(path: str) -> str:
    """`/api/plates?text=ABC123&limit=5` -> `/api/plates?text=***&limit=5`."""
    return _PARAM.sub(r"\g<pre>***", path)


class RedactQuery(logging.Filter):
    """On uvicorn's access records (args: client, method, path, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        elif isinstance(record.msg, str) and "?" in record.msg:
            record.msg = redact(record.msg)
        return True


def install(logger_name: str = "uvicorn.access") -> None:
    """Add the filter once to the access logger (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
