"""The API served by a real `cnnplan serve` (uvicorn) process on a free loopback port."""

from __future__ import annotations

import http.client
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_processes import ServerProcess, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """Start `python -m service.cli serve` and wait until /healthz answers; stop it afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "CNNPLAN_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "CNNPLAN_EMBEDDED_WORKER": "false",
        "CNNPLAN_LOG_LEVEL": "warning",
    }
    env.pop("CNNPLAN_API_KEY", None)
    command = [sys.executable, "-m", "cnnplan.service.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with ServerProcess(command, port, env, Path.cwd()) as running:
        yield running.url


def test_health_and_plan_over_http(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["ready"] is True
        plan = client.post("/plan", json={"image_size": 36}).json()
        assert (plan["stages"], plan["top_receptive_field"]) == ([7, 5], [36, 36])
        assert client.get("/plan", params={"image_size": "36"}).json() == plan


def test_problem_details_over_http(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        response = client.post("/plan", json={"image_size": 2**20 + 1})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == "image_size"
        assert client.get("/missing").status_code == 404


def test_streamed_body_over_the_limit_is_413(server):
    def chunks():  # 17 x 64 KiB > 1 MiB, chunked transfer encoding, no Content-Length
        for _ in range(17):
            yield b" " * 65536

    with httpx.Client(base_url=server, timeout=30) as client:
        response = client.post("/plan", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_declared_length_over_the_limit_is_refused_unread(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST /plan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n"
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = connection.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in reply


def test_metrics_over_http(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        client.get("/presets")
        text = client.get("/metrics").text
    assert 'cnnplan_http_requests_total{method="GET",route="/presets",status="200"} 1.0' in text


def test_an_idle_keep_alive_connection_outlives_a_client_pools_expiry(server):
    """httpx drops idle pooled connections after 5 s, uvicorn's own default; the server must keep them
    longer (CNNPLAN_KEEP_ALIVE_TIMEOUT, 65 s) or a client reusing one at the boundary reads a closed socket."""
    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b'{"status":"ok"}'
        time.sleep(6.5)
        connection.request("GET", "/healthz")  # the same socket: http.client reconnects only if told it closed
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b'{"status":"ok"}'
        assert connection.sock is not None
    finally:
        connection.close()
