"""An ASGI guard in front of the app: the key is checked before any body byte is read, and the body is counted
as it arrives (chunked or not) against the limit of the route it goes to, within one time limit for the whole
body, instead of trusting `Content-Length`. A request refused before its body is all in has its connection
closed, so a client cannot go on sending what nobody reads."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Admission:
    """What the guard decides from a request's headers: a refusal (status, message) or the body it may send."""

    refusal: tuple[int, str] | None
    max_bytes: int


Admit = Callable[[Scope], Admission]


class BodyGuard:
    """Refuses unauthorized requests before reading their body (401), stops reading a body once it passes the
    route's limit (413: at most one receive buffer more is taken in) or once the whole body has taken longer than
    `body_timeout_s` (408), and answers these JSON errors in the app's shape itself."""

    def __init__(self, app: ASGIApp, admit: Admit, body_timeout_s: float) -> None:
        self.app = app
        self.admit = admit
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        admission = self.admit(scope)
        if admission.refusal is not None:
            await _respond(send, *admission.refusal, "request")
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > admission.max_bytes):
            await _respond(send, 413, f"request body larger than the limit of {admission.max_bytes:,} bytes", "request")
            return
        headers = dict(scope.get("headers") or [])
        bodiless = b"transfer-encoding" not in headers and length in (None, b"0")
        deadline = time.monotonic() + self.body_timeout_s
        guarded = _GuardedRequest(admission.max_bytes, deadline, self.body_timeout_s, bodiless, receive, send)
        await self.app(scope, guarded.receive, guarded.send)


class _GuardedRequest:
    """One request's body, counted and timed as it arrives; once refused, the app sees a disconnect and its
    own reply is dropped. Any answer given before the body is all in closes the connection."""

    def __init__(
        self, max_bytes: int, deadline: float, timeout_s: float, bodiless: bool, receive: Receive, send: Send
    ) -> None:
        self.max_bytes, self.deadline, self.timeout_s = max_bytes, deadline, timeout_s
        self._receive, self._send = receive, send
        self.received, self.answered, self.started, self.complete = 0, False, False, bodiless

    async def receive(self) -> Message:
        if self.answered:
            return {"type": "http.disconnect"}
        try:
            with anyio.fail_after(max(0.0, self.deadline - time.monotonic())):
                message = await self._receive()
        except TimeoutError:
            return await self.refuse(408, f"request body not received within {self.timeout_s:g} s")
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received > self.max_bytes:
                return await self.refuse(413, f"request body larger than the limit of {self.max_bytes:,} bytes")
        return message

    async def refuse(self, status: int, detail: str) -> Message:
        if not self.started:
            await _respond(self._send, status, detail, "request")
        self.answered = True
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # we already answered; the app's own reply to the cut-off body is dropped
        if message["type"] == "http.response.start" and not self.complete:
            # answering before the body is all in (an error, say): the rest of it is not to be read
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
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
