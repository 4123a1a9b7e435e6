"""An ASGI guard in front of the app: the key is checked before any body byte is read, and the body is
counted as it arrives (chunked or not) and given a time limit, instead of trusting `Content-Length`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: (status, message) when a request must be refused before its body is read, else None.
Authorize = Callable[[Scope], tuple[int, str] | None]


class BodyGuard:
    """Refuses unauthorized requests before reading their body (401), stops reading a body once it passes
    `max_bytes` (413: at most `max_bytes` plus one receive buffer is taken in) and gives each wait for more
    body `read_timeout_s` (408), answering JSON errors of the app's shape itself."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float, authorize: Authorize) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s
        self.authorize = authorize

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.authorize(scope)
        if refused is not None:
            await _respond(send, *refused, "request")
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _respond(send, 413, f"request body larger than the limit of {self.max_bytes:,} bytes", "request")
            return
        guarded = _GuardedRequest(self, receive, send)
        await self.app(scope, guarded.receive, guarded.send)


class _GuardedRequest:
    """One request's body, counted and timed as it arrives; once refused, the app sees a disconnect and its
    own reply is dropped."""

    def __init__(self, guard: BodyGuard, receive: Receive, send: Send) -> None:
        self.guard, self._receive, self._send = guard, receive, send
        self.received, self.answered, self.started = 0, False, False

    async def receive(self) -> Message:
        guard = self.guard
        if self.answered:
            return {"type": "http.disconnect"}
        try:
            with anyio.fail_after(guard.read_timeout_s):
                message = await self._receive()
        except TimeoutError:
            return await self.refuse(408, f"request body not received within {guard.read_timeout_s:g} s")
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > guard.max_bytes:
                return await self.refuse(413, f"request body larger than the limit of {guard.max_bytes:,} bytes")
        return message

    async def refuse(self, status: int, detail: str) -> Message:
        if not self.started:
            await _respond(self._send, status, detail, "request")
        self.answered = True
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # we already answered; the app's own reply to the cut-off body is dropped
        self.started = True
        await self._send(message)


async def _respond(send: Send, status: int, detail: str, kind: str) -> None:
    body = json.dumps({"detail": detail, "type": kind}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
