"""The reference server's HTTP edge: one JSON error shape, request bodies, CORS.

Every error the server answers, its own or the framework's (404 for an unknown route,
405, 413, a 400 from the HTTP parser for an over-long line, a 500), is
``{"error": "<what went wrong>"}`` with ``Content-Type: application/json``, so a client
parses one shape. The pieces are aiohttp middlewares and small functions, so another
middleware (a request recorder, say) slots in beside them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger("herdlab.server")

#: the largest request body the server reads; a longer one is answered 413 unread
MAX_BODY_BYTES = 16 * 1024


#: headers of an error that a client needs (which methods, when to come back)
_KEPT_HEADERS = ("Allow", "Retry-After")


def json_error(status: int, error: str, headers: dict[str, str] | None = None) -> web.Response:
    """The one error shape: ``{"error": error}`` with ``status``."""
    return web.json_response({"error": error}, status=status, headers=headers)


class BadRequest(Exception):
    """A request the server refuses: answered ``status`` with ``error`` as the message."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error raised below (ours, aiohttp's, or a bug) into the JSON shape."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return json_error(exc.status, exc.error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: exc.headers[k] for k in _KEPT_HEADERS if k in exc.headers}
        return json_error(exc.status, _framework_message(exc), headers)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal server error")


def _framework_message(exc: web.HTTPException) -> str:
    if exc.status == 404:
        return "no such route"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return f"method {exc.method} not allowed; allowed: {', '.join(sorted(exc.allowed_methods))}"
    if exc.status == 413:
        return f"request body over the limit of {MAX_BODY_BYTES} bytes"
    return exc.reason.lower()


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors (a malformed request line,
    an over-long header: the HTTP parser's 400s, before any route or middleware runs) in
    the JSON shape. aiohttp has no hook for those (aio-libs/aiohttp#3287), but
    ``handle_error`` is the documented method that builds their answer."""

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp's own: too late for an answer
            raise ConnectionError("response already started, cannot send the error")
        if status == 500:
            log.error("error handling a request", exc_info=exc)
        else:  # the client's mistake: not worth a traceback in the server's log
            log.debug("bad request: %s", message)
        resp = json_error(status, _parser_message(status, exc, message))
        resp.force_close()
        return resp


def _parser_message(status: int, exc: BaseException | None, message: str | None) -> str:
    if status == 500:
        return "internal server error"
    if isinstance(exc, LineTooLong):
        return "request line or header field too long"
    if not message:
        return f"bad request ({status})"
    return message.strip().splitlines()[0][:200]


class JsonErrorServer(web.Server):
    """``web.Server`` whose connections use :class:`JsonErrorRequestHandler`."""

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through :class:`JsonErrorServer`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # same state, the subclass only changes which handler class __call__ builds
        server.__class__ = JsonErrorServer
        return server


# ------------------------------------------------------------------ request bodies


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's body as a JSON object; ``{}`` for a request without a body.

    415 when a body comes with another content type than ``application/json``;
    413 over :data:`MAX_BODY_BYTES` (from Content-Length, before reading); 400 for
    bytes that are not JSON, or JSON that is not an object."""
    if not request.body_exists:
        return {}
    if request.content_type != "application/json":
        kind = request.content_type or "none"
        raise BadRequest(415, f"content type must be application/json, got {kind}")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadRequest(413, f"request body over the limit of {MAX_BODY_BYTES} bytes")
    raw = await request.read()  # the app's client_max_size bounds a chunked body too
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(400, "body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest(400, f"body must be a JSON object, got {json_type(body)}")
    return body


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def check_fields(body: dict[str, Any], allowed: tuple[str, ...], where: str = "") -> None:
    """400 naming the first field of ``body`` not in ``allowed``."""
    for key in body:
        if key not in allowed:
            raise BadRequest(
                400, f"unknown field {where}{key!r}; allowed: {', '.join(allowed) or 'none'}"
            )


# ------------------------------------------------------------------ CORS

CORS_METHODS = "GET, POST"
CORS_HEADERS = "Content-Type, Last-Event-ID"
CORS_MAX_AGE_S = 600


def cors_middleware(origin: str) -> Middleware:
    """Answer CORS preflights from ``origin`` (204 with the allowed methods and headers);
    a preflight from any other origin gets 403. The ``Access-Control-Allow-Origin``
    header on actual answers comes from :func:`cors_on_prepare`, which also reaches
    streamed answers, prepared before a handler returns."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return await handler(request)
        if request.headers.get("Origin") != origin:
            raise BadRequest(403, f"origin not allowed; allowed: {origin}")
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": CORS_METHODS,
                "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
                "Vary": "Origin",
            },
        )

    return cors


def cors_on_prepare(
    origin: str,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` signal adding ``Access-Control-Allow-Origin`` (and
    exposing ``Retry-After``) for ``origin`` to every answer to a request from it."""

    async def add_header(request: web.Request, response: web.StreamResponse) -> None:
        if request.headers.get("Origin") == origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            # a page's client honours the server's hint on a 503 or 429 only if it can read it
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            response.headers["Vary"] = "Origin"

    return add_header
