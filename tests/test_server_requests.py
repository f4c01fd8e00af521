"""The reference server refuses garbage: every malformed request gets a 4xx JSON answer
and leaves the server as it was. A real ``herdlab serve`` process, over real sockets."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.procs import LOOPBACK, ManagedProcess, free_port
from harness.server_http import MAX_BODY_BYTES
from harness.services import http_ok

pytestmark = pytest.mark.integration

ORIGIN = "http://page.test:3000"
JSON = {"Content-Type": "application/json"}


class Server:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One request on a fresh connection: status, headers, decoded JSON body (or None)."""
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            heads = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        if heads.get("content-type", "").startswith("application/json"):
            return resp.status, heads, json.loads(raw)
        return resp.status, heads, None

    def stats(self) -> dict[str, Any]:
        status, _, body = self.request("GET", "/admin/stats")
        assert status == 200
        return dict(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    argv = [sys.executable, "-m", "harness.cli", "serve", "--port", str(port), "--admin",
            "--cors-origin", ORIGIN]  # fmt: skip
    proc = ManagedProcess("job-server", argv, Path(tmp_path_factory.mktemp("serve")))
    proc.start(lambda: http_ok(f"http://{LOOPBACK}:{port}/healthz"))
    yield Server(port)
    proc.stop()


def state(server: Server) -> dict[str, Any]:
    """What a bad request must not change: counters, jobs, capacity, and that a create
    is still accepted (no fault switched on)."""
    s = server.stats()
    return {k: s[k] for k in ("accepted", "jobs", "capacity", "rejected_503", "errors")}


def assert_json_error(answer: tuple[int, dict[str, str], Any], status: int, *words: str) -> None:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"].startswith("application/json")
    assert set(body) == {"error"}
    for word in words:
        assert word in body["error"], body


BAD_CREATES = [
    pytest.param(b"{bad", JSON, 400, ("not valid JSON",), id="malformed-json"),
    pytest.param(b"[1, 2]", JSON, 400, ("JSON object", "array"), id="json-list"),
    pytest.param(b'"text"', JSON, 400, ("JSON object", "string"), id="json-string"),
    pytest.param(b'{"prompt": "x"}', JSON, 400, ("unknown field 'prompt'",), id="unknown-field"),
    pytest.param(b'{"input": 3}', JSON, 400, ("input", "string"), id="wrong-type"),
    pytest.param(b"\xff\xfe{}", JSON, 400, ("UTF-8",), id="not-utf8"),
    pytest.param(b"[" * 100_00, JSON, 400, ("too deeply",), id="deep-nesting"),
    pytest.param(b"hello", {"Content-Type": "text/plain"}, 415, ("text/plain",), id="text"),
    pytest.param(
        b"a=b",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        ("application/x-www-form-urlencoded",),
        id="form",
    ),
    pytest.param(b"{}", {}, 415, ("application/json",), id="no-content-type"),
    pytest.param(
        b" " * (MAX_BODY_BYTES + 1) + b"{}", JSON, 413, (str(MAX_BODY_BYTES),), id="over-limit"
    ),
]


@pytest.mark.parametrize(("body", "headers", "status", "words"), BAD_CREATES)
def test_a_malformed_job_creation_is_a_4xx_json_error_and_creates_nothing(
    server: Server, body: bytes, headers: dict[str, str], status: int, words: tuple[str, ...]
) -> None:
    before = state(server)
    assert_json_error(server.request("POST", "/api/ai/jobs", body, headers), status, *words)
    assert state(server) == before


def test_a_chunked_body_over_the_limit_is_413_and_creates_nothing(server: Server) -> None:
    before = state(server)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 1024

    conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=10)
    try:
        conn.request("POST", "/api/ai/jobs", body=chunks(), headers=JSON, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 413 and "error" in json.loads(resp.read())
    finally:
        conn.close()
    assert state(server) == before


def test_a_100_mb_declared_body_is_refused_unread(server: Server) -> None:
    """Content-Length over the limit: 413 before a byte of the body is read."""
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as s:
        s.sendall(b"POST /api/ai/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000000\r\n\r\n{")  # fmt: skip
        head = s.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413") and "application/json" in head


def test_a_good_job_creation_is_accepted_with_or_without_a_body(server: Server) -> None:
    before = server.stats()["accepted"]
    assert server.request("POST", "/api/ai/jobs", b"{}", JSON)[0] == 201
    assert server.request("POST", "/api/ai/jobs", b'{"input": "hi"}', JSON)[0] == 201
    assert server.request("POST", "/api/ai/jobs")[0] == 201
    assert server.stats()["accepted"] == before + 3


def test_framework_errors_are_the_same_json_shape(server: Server) -> None:
    assert_json_error(server.request("GET", "/nope"), 404, "no such route")
    status, headers, body = server.request("DELETE", "/api/ai/jobs")
    assert_json_error((status, headers, body), 405, "DELETE", "POST")
    assert headers["allow"] == "POST"
    assert_json_error(server.request("GET", "/api/ai/jobs/j999999"), 404, "no such job")
    assert_json_error(server.request("GET", "/api/ai/jobs/j999999/stream"), 404, "no such job")


def test_an_over_long_request_line_is_a_400_json_error(server: Server) -> None:
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as s:
        s.sendall(b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.split(" ")[1] == "400" and "application/json" in head
    assert "too long" in json.loads(body)["error"]


BAD_FAULTS = [
    pytest.param(b"{not json", "not valid JSON", id="malformed-json"),
    pytest.param(b"[]", "JSON object", id="json-list"),
    pytest.param(b'{"outage": true}', "outage", id="outage-true"),
    pytest.param(b'{"outage": {"retry_after_s": "soon"}}', "outage.retry_after_s", id="hint-str"),
    pytest.param(b'{"outage": {"retry_after_s": -1}}', "outage.retry_after_s", id="hint-neg"),
    pytest.param(b'{"outage": {"when": 1}}', "outage.'when'", id="outage-field"),
    pytest.param(b'{"errors": {"probability": "0.5"}}', "errors.probability", id="p-str"),
    pytest.param(b'{"errors": {"probability": 1.5}}', "errors.probability", id="p-range"),
    pytest.param(b'{"errors": {"status": 200, "probability": 1}}', "errors.status", id="status"),
    pytest.param(b'{"errors": {"status": true}}', "errors.status", id="status-bool"),
    pytest.param(b'{"capacity_instances": "abc"}', "capacity_instances", id="capacity-str"),
    pytest.param(b'{"capacity_instances": -1}', "capacity_instances", id="capacity-neg"),
    pytest.param(b'{"capacity_instances": 2.5}', "capacity_instances", id="capacity-float"),
    pytest.param(b'{"speed": 3}', "'speed'", id="unknown-field"),
    # a valid field first and a bad one after: nothing is applied (all or nothing)
    pytest.param(
        b'{"outage": {"retry_after_s": 1}, "capacity_instances": "x"}',
        "capacity_instances",
        id="all-or-nothing",
    ),
]


@pytest.mark.parametrize(("body", "names"), BAD_FAULTS)
def test_bad_admin_faults_are_a_400_naming_the_field_and_change_nothing(
    server: Server, body: bytes, names: str
) -> None:
    before = state(server)
    assert_json_error(server.request("POST", "/admin/faults", body, JSON), 400, names)
    assert state(server) == before
    assert server.request("POST", "/api/ai/jobs", b"{}", JSON)[0] == 201  # no outage, no errors
    assert server.stats()["capacity"] == before["capacity"]


def test_admin_faults_that_are_valid_apply_and_reset(server: Server) -> None:
    body = b'{"outage": {"retry_after_s": 2}, "capacity_instances": 0}'
    assert server.request("POST", "/admin/faults", body, JSON)[0] == 200
    try:
        status, headers, _ = server.request("POST", "/api/ai/jobs", b"{}", JSON)
        assert status == 503 and headers["retry-after"] == "2"
        assert server.stats()["capacity"] == 0
    finally:
        assert server.request("POST", "/admin/reset")[0] == 200
    assert server.request("POST", "/api/ai/jobs", b"{}", JSON)[0] == 201


def test_a_finished_jobs_stream_answers_204_to_a_client_that_has_every_event(
    server: Server,
) -> None:
    _, _, job = server.request("POST", "/api/ai/jobs", b"{}", JSON)
    conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
    try:  # follow it to the end: the default server's job takes about a second
        conn.request("GET", f"/api/ai/jobs/{job['id']}/stream")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    last = max(int(line[3:]) for line in text.splitlines() if line.startswith("id:"))
    assert "event: result" in text
    status, _, _ = server.request(
        "GET", f"/api/ai/jobs/{job['id']}/stream", headers={"Last-Event-ID": str(last)}
    )
    assert status == 204


def test_cors_preflight_from_the_allowed_origin_and_no_other(server: Server) -> None:
    pre = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}  # fmt: skip
    status, headers, _ = server.request("OPTIONS", "/api/ai/jobs", headers=pre)
    assert status == 204
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
    assert "Content-Type" in headers["access-control-allow-headers"]
    other = {**pre, "Origin": "http://elsewhere.test"}
    assert_json_error(server.request("OPTIONS", "/api/ai/jobs", headers=other), 403, ORIGIN)
    status, headers, _ = server.request("POST", "/api/ai/jobs", b"{}", {**JSON, "Origin": ORIGIN})
    assert status == 201 and headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-expose-headers"] == "Retry-After"
    status, headers, _ = server.request("GET", "/healthz", headers={"Origin": "http://x.test"})
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--cors-origin", "http://page.test/app"], "--cors-origin must be an origin"),
        (["--cors-origin", "*"], "--cors-origin must be an origin"),
        (["--job-ttl-s", "0"], "--job-ttl-s must be in [1, 86400]"),
    ],
)
def test_serve_refuses_bad_flags_with_a_clear_message(flags: list[str], words: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "serve", "--port", str(free_port()), *flags],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and words in result.stderr
    assert "Traceback" not in result.stderr
