"""Fixtures of the service tests: an app per test on a temporary data dir, and an in-process httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Defaults, except a private data dir and no broker."""
    return Settings(data_dir=tmp_path / "data", redis_url=None, embedded_worker=False)


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """httpx against the ASGI app in this process (no sockets)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield http
