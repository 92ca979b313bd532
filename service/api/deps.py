"""FastAPI dependencies, all in one place: the app's settings, the API-key check and the job caller.

Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, which costs more than the work they do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from cnnplan.service.api.owners import resolve_caller
from cnnplan.service.api.security import presented_key
from cnnplan.service.problems import ProblemError
from cnnplan.service.settings import Settings
from cnnplan.service.worker.jobs import Caller


async def get_app_settings(request: Request) -> Settings:
    """The Settings the app was created with (``app.state.settings``); async, so no threadpool hop."""
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(get_app_settings)]


def _unauthorized() -> ProblemError:
    return ProblemError(
        401,
        "Unauthorized",
        "this server needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        field="Authorization",
        code="unauthorized",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def job_caller(request: Request, settings: AppSettings) -> Caller:
    """The caller of a job route: the owner of its key (``CNNPLAN_API_KEYS``, ``CNNPLAN_API_KEY`` = owner
    ``default``, ``CNNPLAN_ADMIN_KEY`` = the admin), or the shared caller without keys; else 401."""
    caller = resolve_caller(settings, presented_key(request))
    if caller is None:
        raise _unauthorized()
    return caller


async def require_api_key(request: Request, settings: AppSettings) -> None:
    """When any key is configured, demand one as ``Authorization: Bearer <key>`` or ``X-API-Key``; else 401."""
    if resolve_caller(settings, presented_key(request)) is None:
        raise _unauthorized()


JobCaller = Annotated[Caller, Depends(job_caller)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        description="Any unique string per submission: sent again (a retry after a lost answer), the same job "
        "comes back instead of a second one. The Python client sends one with every submission.",
    ),
]
"""The ``Idempotency-Key`` header of the job submissions (POST /benchmarks, POST /experiments; docs/fleet.md)."""

__all__ = ["AppSettings", "IdempotencyKey", "JobCaller", "get_app_settings", "job_caller", "require_api_key"]
