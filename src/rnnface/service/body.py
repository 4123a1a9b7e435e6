"""An ASGI guard in front of the app: the key is checked before any body byte is read, and the body is
counted as it arrives (chunked or not) and given a time limit, instead of trusting `Content-Length`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
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

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]) -> None:
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
        state = {"received": 0, "answered": False, "started": False}

        async def guarded_receive() -> Message:
            if state["answered"]:
                return {"type": "http.disconnect"}
            try:
                with anyio.fail_after(self.read_timeout_s):
                    message = await receive()
            except TimeoutError:
                await refuse(408, f"request body not received within {self.read_timeout_s:g} s")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    await refuse(413, f"request body larger than the limit of {self.max_bytes:,} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def refuse(status: int, detail: str) -> None:
            if not state["started"]:
                await _respond(send, status, detail, "request")
            state["answered"] = True

        async def guarded_send(message: Message) -> None:
            if state["answered"]:
                return  # we already answered; the app's own reply to the cut-off body is dropped
            state["started"] = True
            await send(message)

        await self.app(scope, guarded_receive, guarded_send)


async def _respond(send: Callable[[Message], Awaitable[None]], status: int, detail: str, kind: str) -> None:
    body = json.dumps({"detail": detail, "type": kind}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
