"""Fixtures of the ecosystem tests: the app in-process, real uvicorn processes on free loopback ports."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from live_processes import ServerProcess, free_port

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", redis_url=None, embedded_worker=False))


@contextmanager
def uvicorn_process(app_path: str, app_dir: Path, probe: str, data_dir: Path) -> Iterator[str]:
    """Run ``uvicorn <app_path>`` on 127.0.0.1:<free port> until `probe` answers 200; yield the base URL."""
    port = free_port()
    env = {**os.environ, "CNNPLAN_DATA_DIR": str(data_dir), "CNNPLAN_EMBEDDED_WORKER": "false"}
    env.pop("CNNPLAN_API_KEY", None)
    command = [sys.executable, "-m", "uvicorn", app_path, "--app-dir", str(app_dir), "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    with ServerProcess(command, port, env, ROOT, probe) as server:
        yield server.url


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """The real cnnplan app under uvicorn."""
    with uvicorn_process("cnnplan.service.api.app:app", ROOT, "/healthz", tmp_path_factory.mktemp("data")) as base:
        yield base


@pytest.fixture(scope="session")
def flaky_server(tmp_path_factory) -> Iterator[str]:
    """A tiny app that answers 503/429 with Retry-After before succeeding (see flaky_app.py)."""
    with uvicorn_process("flaky_app:app", HERE, "/ok", tmp_path_factory.mktemp("flaky")) as base:
        yield base
