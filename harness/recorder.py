"""What the lab's job server saw: every request, by client and job.

An aiohttp middleware and a response-prepare hook, installed on the reference server
by :func:`install` (``herdlab serve --record FILE``), so the server itself stays as it
is. Each finished request becomes one JSON line in FILE:

- ``client``: the ``X-Herdlab-Client`` header, else the ``herdlab_client`` query
  parameter (a browser's EventSource cannot set headers), else the connection
  (``conn-N``: Toxiproxy opens one upstream connection per client connection);
- ``kind`` (``create``, ``stream``, ``state``, ``other``), ``method``, ``path``, ``job``
  (from the path, or from a 201's body), ``key`` (an ``Idempotency-Key``, which ties
  the attempts of one create together);
- ``start_s`` and ``end_s`` on the machine's monotonic clock (shared by every process,
  so the lab lines it up with its fault timeline), ``status``, ``retry_after``;
- streams: ``last_event_id`` sent, ``sse_retry_ms`` and ``event_ids`` written, and
  ``closed_s``: when the connection closed, seen by a watcher within 20 ms, because a
  cut stream's handler only notices at its next write, up to a heartbeat later.

With ``cors`` every answer carries CORS headers for a page from another origin (the
lab serves its example page from the server's own port, the API through Toxiproxy).
A ``?lastEventId=`` query parameter is passed on as ``Last-Event-ID``.
Only the API (``/api/``) is recorded; routes under ``/lab/`` serve the example pages
and ``/lab/status`` (requests started, ``open``: started and not yet written, the
monotonic time of the first).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

CLIENT_HEADER = "X-Herdlab-Client"
CLIENT_QUERY = "herdlab_client"
CLOSE_WATCH_S = 0.02
_JOB_PATH = re.compile(r"^/api/ai/jobs/(?P<id>[^/]+)(?P<stream>/stream)?$")
_ID_LINE = re.compile(rb"^id: ?(\d+)\s*$", re.MULTILINE)
_RETRY_LINE = re.compile(rb"^retry: ?(\d+)\s*$", re.MULTILINE)
_RECORDED = "/api/"
_CORS_HEADERS = "Content-Type, X-Herdlab-Client, Idempotency-Key, Last-Event-ID"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Recorder:
    """Writes one JSON line per finished request to ``path``."""

    def __init__(self, path: Path, pages_dir: Path | None = None, cors: bool = False) -> None:
        self.path = path
        self.pages_dir = pages_dir
        self.cors = cors
        self.out: TextIO | None = None
        self.requests = 0
        self.written = 0
        self.first_s: float | None = None
        self.conn_ids: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self.conn_seq = itertools.count(1)

    # ------------------------------------------------------------ wiring

    def install(self, app: web.Application) -> None:
        """Add the middleware, the prepare hook and the /lab/ routes to ``app``."""
        app.middlewares.append(self.middleware)
        app.on_response_prepare.append(self._on_prepare)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        app.router.add_get("/lab/status", self.status)
        if self.pages_dir is not None:
            app.router.add_static("/lab/pages/", self.pages_dir)

    async def _open(self, _: web.Application) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.out = self.path.open("a", buffering=1)  # line-buffered: each record lands whole

    async def _close(self, _: web.Application) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.requests,
                "open": self.requests - self.written,  # started, not yet written
                "first_s": self.first_s,
            }
        )

    # ------------------------------------------------------------ recording

    def client_of(self, request: web.Request) -> str:
        named = request.headers.get(CLIENT_HEADER) or request.query.get(CLIENT_QUERY)
        if named:
            return named[:200]
        transport = request.transport
        if transport is None:
            return "conn-unknown"
        conn = self.conn_ids.get(transport)
        if conn is None:
            conn = f"conn-{next(self.conn_seq)}"
            self.conn_ids[transport] = conn
        return conn

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and self.cors:
            return self._preflight(request)
        if not request.path.startswith(_RECORDED):
            return await handler(request)
        start_s = time.monotonic()
        request = _with_query_last_event_id(request)
        if self.first_s is None:
            self.first_s = start_s
        self.requests += 1
        record = self._new_record(request, start_s)
        request["herdlab_record"] = record
        watcher: asyncio.Task[None] | None = None
        if record["kind"] == "stream":
            watcher = asyncio.ensure_future(self._watch_close(request, record))
        try:
            response = await handler(request)
            record["status"] = response.status
            self._finish(record, response)
            return response
        except web.HTTPException as exc:
            record["status"] = exc.status
            raise
        except (ConnectionError, asyncio.CancelledError):
            record.setdefault("status", 0)  # a stream's status was stamped when prepared
            raise
        finally:
            record["end_s"] = time.monotonic()
            if watcher is not None:
                await asyncio.sleep(0)  # a close seen just now is stamped first
                watcher.cancel()
            self._write(record)

    def _new_record(self, request: web.Request, start_s: float) -> dict[str, Any]:
        match = _JOB_PATH.match(request.path)
        kind = "other"
        if request.path == "/api/ai/jobs" and request.method == "POST":
            kind = "create"
        elif match is not None:
            kind = "stream" if match["stream"] else "state"
        record: dict[str, Any] = {
            "client": self.client_of(request),
            "kind": kind,
            "method": request.method,
            "path": request.path,
            "job": match["id"] if match else None,
            "key": request.headers.get("Idempotency-Key"),
            "start_s": start_s,
        }
        if kind == "stream":
            record["last_event_id"] = request.headers.get("Last-Event-ID")
            record["event_ids"] = []
            record["sse_retry_ms"] = None
            record["closed_s"] = None
        return record

    def _finish(self, record: dict[str, Any], response: web.StreamResponse) -> None:
        record["retry_after"] = response.headers.get("Retry-After")
        if record["kind"] == "create" and response.status == 201:
            body = getattr(response, "body", None)
            if isinstance(body, bytes | bytearray):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    record["job"] = str(json.loads(body)["id"])

    def _write(self, record: dict[str, Any]) -> None:
        self.written += 1
        if self.out is not None:
            self.out.write(json.dumps(record, separators=(",", ":")) + "\n")

    async def _watch_close(self, request: web.Request, record: dict[str, Any]) -> None:
        """Stamp ``closed_s`` when the stream's connection goes (bounded by the request)."""
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                record["closed_s"] = time.monotonic()
                return
            await asyncio.sleep(CLOSE_WATCH_S)

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        if self.cors:
            self._cors_headers(request, response.headers)
        if response.content_type != "text/event-stream":
            return
        record = self._stream_record(request)
        if record is None:
            return
        record["status"] = response.status
        write = response.write

        async def recording_write(data: bytes | bytearray | memoryview) -> None:
            chunk = bytes(data)
            record["event_ids"].extend(int(m) for m in _ID_LINE.findall(chunk))
            retry = _RETRY_LINE.search(chunk)
            if retry is not None:
                record["sse_retry_ms"] = int(retry.group(1))
            await write(data)

        response.write = recording_write  # type: ignore[method-assign]

    def _stream_record(self, request: web.Request) -> dict[str, Any] | None:
        found: dict[str, Any] | None = request.get("herdlab_record")
        return found

    # ------------------------------------------------------------ CORS

    def _preflight(self, request: web.Request) -> web.Response:
        response = web.Response(status=204)
        self._cors_headers(request, response.headers)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
        return response

    @staticmethod
    def _cors_headers(request: web.Request, headers: Any) -> None:
        headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
        headers["Access-Control-Expose-Headers"] = "Retry-After"
        headers["Vary"] = "Origin"


def _with_query_last_event_id(request: web.Request) -> web.Request:
    """A new EventSource cannot send ``Last-Event-ID`` (only the browser's own reconnect
    does), so a page that reconnects by itself passes it as ``?lastEventId=``, as
    EventSource polyfills do; the lab hands it to the server as the header."""
    value = request.query.get("lastEventId")
    if not value or "Last-Event-ID" in request.headers:
        return request
    headers = request.headers.copy()
    headers["Last-Event-ID"] = value
    return request.clone(headers=headers)
