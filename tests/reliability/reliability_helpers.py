"""Shared helpers of the reliability tests: problem+json assertions and a real uvicorn process on loopback.

(A module with its own name, not a conftest import: every test directory has a conftest.py.)
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

import httpx
from live_processes import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None, mentions: Iterable[str] = ()
) -> dict[str, Any]:
    """`response` is an RFC 9457 problem with `status`, naming `field`, whose detail mentions each of `mentions`."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"], body
    if field is not None:
        assert body.get("field") == field, body
        assert body.get("reason"), body
    for text in mentions:
        assert text in body["detail"], (text, body["detail"])
    return body


class AppClient:
    """A synchronous httpx client for an ASGI app in this process (no sockets); `client` is the peer address the app sees."""

    def __init__(self, app: Any, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=self.client)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=120) as http:
                return await http.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Uvicorn(ServerProcess):
    """``uvicorn service.app:app`` on a free loopback port, with `env` on top of a clean CNNPLAN_* environment;
    its stdout and stderr go to `log_path`."""

    def __init__(
        self, data_dir: Path, log_path: Path, env: Mapping[str, str] | None = None, log_level: str = "info"
    ) -> None:
        port = free_port()
        base = {key: value for key, value in os.environ.items() if not key.startswith("CNNPLAN_")}
        base.update({"CNNPLAN_DATA_DIR": str(data_dir), "CNNPLAN_EMBEDDED_WORKER": "false", "PYTHONPATH": str(ROOT)})
        base.update(env or {})
        command = [sys.executable, "-m", "uvicorn", "cnnplan.service.api.app:app", "--host", "127.0.0.1", "--port", str(port),
                   "--log-level", log_level, "--no-access-log" if log_level == "warning" else "--access-log"]  # fmt: skip
        super().__init__(command, port, base, ROOT)
        self.port = port
        self.log_path = log_path

    def __enter__(self) -> Self:
        self.log = open(self.log_path, "wb")  # closed by __exit__
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            assert self.log is not None
            self.log.close()

    def log_text(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")


__all__ = ["ROOT", "AppClient", "Uvicorn", "assert_problem", "free_port", "rss_bytes"]
