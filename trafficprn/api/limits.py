"""Request bodies under control, before any route sees them (a pure ASGI middleware).

- A write (any method but GET, HEAD, OPTIONS) without the right API key is refused with
  401 (403 where the server has no key) before one byte of its body is read.
- A body larger than `max_body_bytes` is refused with 413: at once when Content-Length
  says so, else as soon as the bytes read pass the limit (chunked uploads).
- A body that does not arrive within `body_timeout_s` gets 408.
The body is read here, bounded, and replayed to the app, so FastAPI never parses more
than the limit and a slow client cannot hold a route.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from trafficprn.api.deps import key_matches
from trafficprn.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Wraps the API app: key check for writes, then a bounded, timed body read."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_key(scope)
            length = self._declared_length(scope)
            chunked = "chunked" in (_header(scope, b"transfer-encoding") or "").lower()
            if length == 0 and not chunked:
                await self.app(scope, receive, send)
                return
            body = await self._read(receive)
        except _Refused as exc:
            await _reply(send, exc.status, exc.detail)
            return
        await self.app(scope, _replay(body, receive), send)

    def _check_key(self, scope: Scope) -> None:
        if scope.get("method", "GET") in READ_METHODS:
            return
        if not self.settings.api_key:
            raise _Refused(403, "this server has no API key configured (TRAFFICPRN_API_KEY); writes are disabled")
        if not key_matches(self.settings, _header(scope, b"x-api-key")):
            raise _Refused(401, "missing or wrong API key (send it in the X-API-Key header)")

    def _declared_length(self, scope: Scope) -> int:
        raw = _header(scope, b"content-length")
        if raw is None:
            return 0
        try:
            length = int(raw)
        except ValueError:
            raise _Refused(400, f"Content-Length {raw[:20]!r} is not a number") from None
        if length < 0:
            raise _Refused(400, "Content-Length is negative")
        if length > self.settings.max_body_bytes:
            raise _Refused(413, f"request body of {length} bytes is over the limit of "
                                f"{self.settings.max_body_bytes} bytes")
        return length

    async def _read(self, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.body_timeout_s
        parts: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                raise _Refused(408, f"the request body did not arrive within {self.settings.body_timeout_s:g} s"
                               ) from None
            if message["type"] == "http.disconnect":
                raise _Refused(400, "the client went away before sending the whole body")
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > limit:
                raise _Refused(413, f"request body is over the limit of {limit} bytes")
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, then whatever the server says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
