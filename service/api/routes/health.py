"""/healthz (the process answers) and /readyz (every required component works)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.deps import AppSettings
from cnnplan.service.schemas import Health, Readiness
from cnnplan.service.settings import Settings
from cnnplan.service.worker.jobs import check_broker_component
from cnnplan.solver import PlanRequest, make_plan

router = APIRouter(tags=["health"])

Component = dict[str, Any]
"""``{"ok": bool, "required": bool, "detail": str}``."""


def check_solver(settings: Settings) -> Component:
    """The planner answers the worked example of docs/theory.md#exact-model (z=18, k=3, t=1/6 -> one stage of 8)."""
    stages = make_plan(PlanRequest(image_size=18)).stages
    return {"ok": stages == (8,), "required": True, "detail": f"plan(18) stages {list(stages)}"}


def check_data_dir(settings: Settings) -> Component:
    """The data directory exists and is writable (or can be created); optional for planning."""
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        writable = os.access(path, os.W_OK)
    except OSError as error:
        return {"ok": False, "required": False, "detail": f"{path}: {error.strerror}"}
    return {"ok": writable, "required": False, "detail": f"{path} {'writable' if writable else 'not writable'}"}


READINESS_CHECKS: dict[str, Callable[[Settings], Component]] = {
    "solver": check_solver,
    "data_dir": check_data_dir,
    "broker": check_broker_component,
}
"""Component name -> check; other areas add one line (e.g. the broker)."""


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> FastJSONResponse:
    """Always ``{"status": "ok"}`` while the event loop runs."""
    return FastJSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: every required component works",
    responses={503: {"model": Readiness, "description": "A required component is down"}},
)
def readyz(settings: AppSettings) -> FastJSONResponse:
    """200 when every required component is ok, else 503; each component says why."""
    components: dict[str, Component] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            components[name] = check(settings)
        except Exception as error:  # a failing component is reported, not raised
            components[name] = {"ok": False, "required": True, "detail": f"{type(error).__name__}: {error}"}
    ready = all(c["ok"] for c in components.values() if c.get("required", True))
    return FastJSONResponse({"ready": ready, "components": components}, status_code=200 if ready else 503)
