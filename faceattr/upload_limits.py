"""ASGI middleware that bounds an upload's size and time, counted as the bytes arrive.

A ``Content-Length`` above the limit is answered 413 before any body is read; a chunked upload
(no length) is counted as it streams and answered 413 as soon as it passes the limit, not after it
ends; a client that sends its body slower than ``max_seconds`` in all is answered 408. Once this
middleware has answered, the application sees the client as gone and whatever it sends is dropped.
"""
from __future__ import annotations

import asyncio
import json
from typing import Awaitable, Callable

Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class UploadLimits:
    """``max_bytes``: the stated limit; a body is refused above ``max_bytes + slack_bytes`` (room for
    a multipart form's boundaries and headers around the file)."""

    def __init__(self, app, max_bytes: int, max_seconds: float, slack_bytes: int = 0):
        self.app, self.max_bytes, self.max_seconds = app, max_bytes, max_seconds
        self.refuse_above = max_bytes + slack_bytes

    async def __call__(self, scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.refuse_above:
            await _answer(send, 413, f"upload of {int(declared):,} bytes is above the limit of "
                                     f"{self.max_bytes:,} bytes")
            return
        await _LimitedRequest(self, receive, send).run(scope)


class _LimitedRequest:
    """One request's byte count, deadline and whether the middleware has answered it."""

    def __init__(self, limits: UploadLimits, receive: Receive, send: Send):
        self.limits, self._receive, self._send = limits, receive, send
        self.received = 0
        self.answered = False
        self.response_started = False
        self.deadline = asyncio.get_running_loop().time() + limits.max_seconds

    async def run(self, scope) -> None:
        await self.limits.app(scope, self.receive, self.send)

    async def receive(self) -> Message:
        if self.answered:
            return {"type": "http.disconnect"}
        left = self.deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self._receive(), max(left, 0.0))
        except asyncio.TimeoutError:
            return await self._refuse(408, f"upload not received within {self.limits.max_seconds:g} s")
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limits.refuse_above:
                return await self._refuse(413, f"upload is above the limit of {self.limits.max_bytes:,} bytes "
                                               f"({self.received:,} bytes received so far)")
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        self.response_started = True
        await self._send(message)

    async def _refuse(self, status: int, detail: str) -> Message:
        if not self.response_started:
            await _answer(self._send, status, detail)
        self.answered = True
        return {"type": "http.disconnect"}


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
