"""FastAPI dependencies, all in one place: the app's settings and the optional API-key check.

Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, which costs more than the work they do.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from cnnplan.service.api.security import presented_key
from cnnplan.service.problems import ProblemError
from cnnplan.service.settings import Settings


async def get_app_settings(request: Request) -> Settings:
    """The Settings the app was created with (``app.state.settings``); async, so no threadpool hop."""
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(get_app_settings)]


async def require_api_key(request: Request, settings: AppSettings) -> None:
    """When ``CNNPLAN_API_KEY`` is set, demand it as ``Authorization: Bearer <key>`` or ``X-API-Key``; else 401."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    given = presented_key(request)
    if given is None or not hmac.compare_digest(given.encode(), expected):
        raise ProblemError(
            401,
            "Unauthorized",
            "this server needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            field="Authorization",
            code="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )


__all__ = ["AppSettings", "get_app_settings", "require_api_key"]
