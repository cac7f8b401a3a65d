"""The limits of a public endpoint, as small pieces the app composes.

* :class:`BodyLimit` - ASGI middleware: a request body over its limit (JSON or multipart) is answered 413
  before the app reads it (by its ``Content-Length``, or while reading a body sent without one).
* :class:`ApiKey` - ASGI middleware: with a key set, every path but ``/health`` needs it (header
  ``X-API-Key``, ``Authorization: Bearer KEY``, the ``rnnkit_key`` cookie, or ``?key=`` - which also sets
  the cookie, so that a browser opened on ``/?key=KEY`` loads the page and its files).
* :class:`Admission` - bounded concurrency: at most ``running`` model calls at once in a thread pool of that
  size, at most ``waiting`` more queued; a request beyond that is refused at once with 503 and Retry-After,
  one that waits past its timeout gets 503, one whose call runs past it 504. Never an unbounded queue.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from typing import Any, AsyncIterator, Callable, Iterator
from urllib.parse import parse_qs

from rnnkit.serve.errors import ApiError

KEY_COOKIE = "rnnkit_key"
OPEN_PATHS = ("/health",)


async def _send_json(send, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    def __init__(self, app, max_json: int, max_multipart: int):
        self.app, self.max_json, self.max_multipart = app, max_json, max_multipart

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.max_multipart if multipart else self.max_json
        flag = "--max-upload-bytes" if multipart else "--max-body-bytes"
        too_big = {"error": f"request body over {limit} bytes", "field": None,
                   "expected": f"a {'multipart' if multipart else 'JSON'} body of at most {limit} bytes "
                               f"(the server's {flag})"}
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await _send_json(send, 400, {"error": "Content-Length is not a number", "field": None,
                                                    "expected": "a decimal Content-Length"})
            if int(length) > limit:
                return await _send_json(send, 413, too_big)
            return await self.app(scope, receive, send)
        chunks, size = [], 0  # no Content-Length: read it here, within the limit, then hand it on
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if size > limit:
                return await _send_json(send, 413, too_big)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await self.app(scope, replay, send)


def _given_key(scope) -> tuple[str, bool]:
    """The key a request carries, and whether it came in the query (then the answer sets the cookie)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    if "x-api-key" in headers:
        return headers["x-api-key"], False
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("key")
    if query:
        return query[0], True
    cookie = SimpleCookie(headers.get("cookie", ""))
    return (cookie[KEY_COOKIE].value, False) if KEY_COOKIE in cookie else ("", False)


class ApiKey:
    def __init__(self, app, key: str):
        self.app, self.key = app, key

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.key or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given, from_query = _given_key(scope)
        if not hmac.compare_digest(given.encode(), self.key.encode()):
            return await _send_json(send, 401, {
                "error": "missing or wrong API key" if given else "this server needs an API key", "field": None,
                "expected": "the key in an X-API-Key header, Authorization: Bearer KEY, or ?key=KEY"},
                [(b"www-authenticate", b"Bearer")])
        if not from_query:
            return await self.app(scope, receive, send)

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                cookie = f"{KEY_COOKIE}={self.key}; HttpOnly; SameSite=Strict; Path=/".encode()
                message = {**message, "headers": [*message["headers"], (b"set-cookie", cookie)]}
            await send(message)
        return await self.app(scope, receive, send_with_cookie)


class Admission:
    """Bounded concurrency for the model calls (see the module docstring)."""

    def __init__(self, running: int, waiting: int, timeout_s: float, retry_after_s: int):
        self.running, self.capacity = running, running + waiting
        self.timeout_s, self.retry_after_s = timeout_s, retry_after_s
        self.admitted = 0
        self.refused = 0
        self.pool = ThreadPoolExecutor(running, thread_name_prefix="rnnkit-serve")
        self._slots: asyncio.Semaphore | None = None

    def _busy(self, why: str) -> ApiError:
        return ApiError(503, why, None, f"retry after {self.retry_after_s} s (the server runs {self.running} "
                        f"requests at once and queues {self.capacity - self.running}: --max-concurrent, "
                        "--max-queue)", headers={"Retry-After": str(self.retry_after_s)})

    def _enter(self) -> float:
        if self.admitted >= self.capacity:
            self.refused += 1
            raise self._busy(f"server busy: {self.admitted} requests running or queued")
        self.admitted += 1
        return time.monotonic() + self.timeout_s

    def _leave(self) -> None:
        self.admitted -= 1

    async def _slot(self, deadline: float) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.running)
        try:
            await asyncio.wait_for(self._slots.acquire(), max(deadline - time.monotonic(), 0.0))
        except asyncio.TimeoutError:
            self._leave()
            raise self._busy(f"server busy: no free slot within the {self.timeout_s:g} s timeout") from None

    async def call(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` in the pool; its slot is freed when it returns, even after the request timed out."""
        deadline = self._enter()
        await self._slot(deadline)
        future = asyncio.get_running_loop().run_in_executor(self.pool, fn)

        future.add_done_callback(lambda _: self._release())
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(deadline - time.monotonic(), 0.0))
        except asyncio.TimeoutError:
            raise ApiError(504, f"the request ran past the {self.timeout_s:g} s timeout", None,
                           "a smaller request, or a server with a longer --timeout-s") from None

    async def stream(self, pieces: Callable[[], Iterator[str | dict]]
                     ) -> tuple[AsyncIterator[str | dict], Callable[[], None]]:
        """The pieces of ``pieces()``, each computed in the pool, and the function that frees the slot.

        The slot is held until the stream ends; the iterator frees it when it finishes or is closed, and the
        caller calls the function once the response is over, for a stream that never started (a client
        gone before the first piece). Admission, and the checks ``pieces()`` makes before its first piece,
        come first: a busy server or a bad request is answered with a status before any event is sent."""
        deadline = self._enter()
        await self._slot(deadline)
        release = self._release_once()
        try:
            it = await asyncio.get_running_loop().run_in_executor(self.pool, lambda: iter(pieces()))
        except BaseException:
            release()
            raise
        return self._pieces(it, deadline, release), release

    def _release(self) -> None:
        self._slots.release()
        self._leave()

    def _release_once(self) -> Callable[[], None]:
        held = [True]

        def release() -> None:
            if held[0]:
                held[0] = False
                self._release()
        return release

    async def _pieces(self, it: Iterator[str | dict], deadline: float, release: Callable[[], None]
                      ) -> AsyncIterator[str | dict]:
        loop = asyncio.get_running_loop()
        end = object()
        try:
            while True:
                if time.monotonic() > deadline:
                    raise ApiError(504, f"the stream ran past the {self.timeout_s:g} s timeout", None,
                                   "a shorter generation, or a server with a longer --timeout-s")
                piece = await loop.run_in_executor(self.pool, next, it, end)
                if piece is end:
                    return
                yield piece
        finally:
            release()
