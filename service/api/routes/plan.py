"""/plan: the deepest valid network for an image size (POST body, GET query string, batch)."""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.answer_cache import json_answer
from cnnplan.service.api.batches import answer_within_budget, check_batch_size
from cnnplan.service.api.deps import AppSettings
from cnnplan.service.api.formats import FORMAT_DESCRIPTION, PLAN_FORMAT_RESPONSES, PlanFormat, plan_response
from cnnplan.service.convert import plan_body, plan_body_json, plan_summary_body, to_plan_request
from cnnplan.service.problems import ProblemError, problem_responses
from cnnplan.service.schemas import (
    VIEW_DESCRIPTION,
    PlanBatchRequest,
    PlanBatchResponse,
    PlanRequestModel,
    PlanResponse,
    PlanSummary,
    PlanSummaryBatchResponse,
    View,
)
from cnnplan.solver import make_plan

router = APIRouter(tags=["plan"])

_IMAGE_SIZE_QUERY = re.compile(r"^\s*(\d{1,8})\s*(?:[xX]\s*(\d{1,8})\s*)?$")


def parse_image_size_query(text: str) -> int | list[int]:
    """``"224"`` -> 224, ``"224x160"`` -> [224, 160]; anything else is a 422 naming image_size."""
    match = _IMAGE_SIZE_QUERY.match(text)
    if match is None:
        reason = f"must be a side like 224 or HEIGHTxWIDTH like 224x160, got {text[:40]!r}"
        raise ProblemError(
            422, "Invalid request", f"image_size: {reason}", field="image_size", reason=reason, code="validation_error"
        )
    height, width = match.groups()
    return int(height) if width is None else [int(height), int(width)]


def plan_json(request: Request, body: PlanRequestModel, view: View, http_caching: bool) -> Response:
    """The JSON answer of a validated body in `view`, through the answer cache (keyed by the canonical body)."""
    if view == "summary":
        return json_answer(request, ("plan", view, body), lambda: plan_summary_body(body), http_caching)
    return json_answer(request, ("plan", view, body), lambda: plan_body_json(body), http_caching)


@router.post(
    "/plan",
    response_model=PlanResponse | PlanSummary,
    response_class=FastJSONResponse,
    responses={**PLAN_FORMAT_RESPONSES, **problem_responses(401, 413, 422)},
    summary="Plan the deepest network for an image size",
)
async def post_plan(
    request: Request,
    body: PlanRequestModel,
    format: PlanFormat = Query("json", description=FORMAT_DESCRIPTION),
    view: View = Query("full", description=VIEW_DESCRIPTION),
) -> Response:
    """Maximise the number of feature-level convolutions under both constraints (THEORY.md section 4).
    ``view=summary`` answers a `PlanSummary` (no per-layer list)."""
    if format != "json":
        return plan_response(make_plan(to_plan_request(body)), format)
    return plan_json(request, body, view, http_caching=False)


@router.get(
    "/plan",
    response_model=PlanResponse | PlanSummary,
    response_class=FastJSONResponse,
    responses={**PLAN_FORMAT_RESPONSES, **problem_responses(401, 422)},
    summary="Plan from a query string (for curl); the width rule keeps its default",
)
async def get_plan(
    request: Request,
    image_size: str = Query(description="A side (224) or HEIGHTxWIDTH (224x160); sides 1..2^20."),
    kernel_size: int = 3,
    min_c_value: str = Query("1/6", max_length=64, description="A number or 'p/q'."),
    model: Literal["exact", "simplified"] = "exact",
    downsample: Literal["maxpool", "avgpool", "conv"] = "maxpool",
    in_channels: int = 3,
    num_classes: int = 1000,
    dropout: float = 0.5,
    batch_norm: bool = True,
    rf_side: Literal["min", "max"] = "min",
    format: PlanFormat = Query("json", description=FORMAT_DESCRIPTION),
    view: View = Query("full", description=VIEW_DESCRIPTION),
) -> Response:
    """Same answer as POST /plan with the same inputs, with a strong ETag and Cache-Control; a request whose
    If-None-Match names the answer's ETag gets 304 Not Modified."""
    body = PlanRequestModel.model_validate(
        {
            "image_size": parse_image_size_query(image_size),
            "kernel_size": kernel_size,
            "min_c_value": min_c_value,
            "model": model,
            "downsample": downsample,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "dropout": dropout,
            "batch_norm": batch_norm,
            "rf_side": rf_side,
        }
    )
    if format != "json":
        return plan_response(make_plan(to_plan_request(body)), format)
    return plan_json(request, body, view, http_caching=True)


def plan_answer(item: dict[str, Any]) -> dict[str, Any]:
    """The answer of one /plan/batch item: the same as POST /plan with that body."""
    return plan_body(PlanRequestModel.model_validate(item))


def plan_summary_answer(item: dict[str, Any]) -> dict[str, Any]:
    """The answer of one /plan/batch item with ``view=summary``."""
    return plan_summary_body(PlanRequestModel.model_validate(item))


@router.post(
    "/plan/batch",
    response_model=PlanBatchResponse | PlanSummaryBatchResponse,
    response_class=FastJSONResponse,
    responses=problem_responses(401, 413, 422),
    summary="Plan up to 1000 requests; each item gets its own result or problem",
)
def post_plan_batch(
    body: PlanBatchRequest, settings: AppSettings, view: View = Query("full", description=VIEW_DESCRIPTION)
) -> FastJSONResponse:
    """Results in request order; a bad item carries its problem and does not fail the batch. ``view=summary``
    answers a `PlanSummaryBatchResponse`."""
    check_batch_size(len(body.requests), settings)
    answer = plan_summary_answer if view == "summary" else plan_answer
    return FastJSONResponse({"results": answer_within_budget(body.requests, answer, settings.max_batch_layers)})
