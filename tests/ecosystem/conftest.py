"""Fixtures of the ecosystem tests: the app in-process, real uvicorn processes on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
STARTUP_DEADLINE_S = 60


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", redis_url=None, embedded_worker=False))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def uvicorn_process(app_path: str, app_dir: Path, probe: str, data_dir: Path) -> Iterator[str]:
    """Run ``uvicorn <app_path>`` on 127.0.0.1:<free port> until `probe` answers 200; yield the base URL."""
    port = free_port()
    env = {**os.environ, "CNNPLAN_DATA_DIR": str(data_dir), "CNNPLAN_EMBEDDED_WORKER": "false"}
    env.pop("CNNPLAN_API_KEY", None)
    command = [sys.executable, "-m", "uvicorn", app_path, "--app-dir", str(app_dir), "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"uvicorn {app_path} exited with {process.returncode}: {process.stdout.read().decode()}")
            try:
                if httpx.get(base + probe, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn {app_path} did not answer {probe} within {STARTUP_DEADLINE_S} s")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """The real cnnplan app under uvicorn."""
    with uvicorn_process("service.app:app", ROOT, "/healthz", tmp_path_factory.mktemp("data")) as base:
        yield base


@pytest.fixture(scope="session")
def flaky_server(tmp_path_factory) -> Iterator[str]:
    """A tiny app that answers 503/429 with Retry-After before succeeding (see flaky_app.py)."""
    with uvicorn_process("flaky_app:app", HERE, "/ok", tmp_path_factory.mktemp("flaky")) as base:
        yield base
