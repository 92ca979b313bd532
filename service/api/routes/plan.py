"""/plan: the deepest valid network for an image size (POST body, GET query string, batch)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.answer_cache import json_answer
from cnnplan.service.api.batches import answer_within_budget, check_batch_size
from cnnplan.service.api.deps import AppSettings
from cnnplan.service.api.formats import FORMAT_DESCRIPTION, PLAN_FORMAT_RESPONSES, PlanFormat, plan_response
from cnnplan.service.convert import plan_body, plan_body_json, plan_summary_body, to_plan_request
from cnnplan.service.problems import problem_responses
from cnnplan.service.schemas import (
    DEFAULT_MIN_C_VALUE_TEXT,
    IMAGE_SIZE_TEXT_MAX_LENGTH,
    IMAGE_SIZE_TEXT_PATTERN,
    MIN_C_VALUE_TEXT_PATTERN,
    VIEW_DESCRIPTION,
    PlanBatchRequest,
    PlanBatchResponse,
    PlanRequestModel,
    PlanResponse,
    PlanSummary,
    PlanSummaryBatchResponse,
    View,
    parse_image_size_text,
)
from cnnplan.solver import make_plan
from cnnplan.solver.limits import MAX_BUDGET, MAX_CHANNELS, MAX_EXPANSION, PLAN_KERNEL_SIZES, PLAN_MIN_C_VALUE_FLOOR

router = APIRouter(tags=["plan"])

PLAN_RULES = (
    "widths.max_width is at least widths.base",
    f"a 'p/q' min_c_value names a t in [{PLAN_MIN_C_VALUE_FLOOR}, 1] with a denominator of at most 10^6",
    "some network of the family fits the image (code infeasible: e.g. an image smaller than one kernel)",
)
"""The rules of a plan request that JSON Schema cannot state (the 422 of the operation lists them)."""


def plan_json(request: Request, body: PlanRequestModel, view: View, http_caching: bool) -> Response:
    """The JSON answer of a validated body in `view`, through the answer cache (keyed by the canonical body)."""
    if view == "summary":
        return json_answer(request, ("plan", view, body), lambda: plan_summary_body(body), http_caching)
    return json_answer(request, ("plan", view, body), lambda: plan_body_json(body), http_caching)


@router.post(
    "/plan",
    response_model=PlanResponse | PlanSummary,
    response_class=FastJSONResponse,
    responses={**PLAN_FORMAT_RESPONSES, **problem_responses(401, 413, 422, rules=PLAN_RULES)},
    summary="Plan the deepest network for an image size",
)
async def post_plan(
    request: Request,
    body: PlanRequestModel,
    format: PlanFormat = Query("json", description=FORMAT_DESCRIPTION),
    view: View = Query("full", description=VIEW_DESCRIPTION),
) -> Response:
    """Maximise the number of feature-level convolutions under both constraints (docs/theory.md#exact-model).
    ``view=summary`` answers a `PlanSummary` (no per-layer list)."""
    if format != "json":
        return plan_response(make_plan(to_plan_request(body)), format)
    return plan_json(request, body, view, http_caching=False)


@router.get(
    "/plan",
    response_model=PlanResponse | PlanSummary,
    response_class=FastJSONResponse,
    responses={
        **PLAN_FORMAT_RESPONSES,
        **problem_responses(401, 422, rules=("each side of image_size is 1..2^20 pixels", *PLAN_RULES[1:])),
    },
    summary="Plan from a query string (for curl); the width rule keeps its default",
)
async def get_plan(
    request: Request,
    image_size: str = Query(
        description="A side (224) or HEIGHTxWIDTH (224x160); sides 1..2^20.",
        min_length=1,
        max_length=IMAGE_SIZE_TEXT_MAX_LENGTH,
        json_schema_extra={"pattern": IMAGE_SIZE_TEXT_PATTERN},  # parse_image_size_text holds the server to it
    ),
    kernel_size: int = Query(
        3, ge=3, le=31, description="Odd, 3..31.", json_schema_extra={"enum": list(PLAN_KERNEL_SIZES)}
    ),
    min_c_value: str = Query(
        DEFAULT_MIN_C_VALUE_TEXT,
        min_length=1,
        max_length=64,
        json_schema_extra={"pattern": MIN_C_VALUE_TEXT_PATTERN},  # the model's validator holds the server to it
        description=f"A decimal or 'p/q', at least {PLAN_MIN_C_VALUE_FLOOR} and at most 1.",
    ),
    model: Literal["exact", "simplified"] = "exact",
    downsample: Literal["maxpool", "avgpool", "conv"] = "maxpool",
    in_channels: int = Query(3, ge=1, le=MAX_CHANNELS),
    num_classes: int = Query(1000, ge=1, le=MAX_CHANNELS),
    dropout: float = Query(0.5, ge=0, lt=1),
    batch_norm: bool = True,
    rf_side: Literal["min", "max"] = "min",
    block: Literal["plain", "basic", "bottleneck", "inverted_residual"] = "plain",
    stem: Literal["none", "conv", "conv_pool"] = "none",
    expansion: int | None = Query(None, ge=1, le=MAX_EXPANSION),
    max_flops: int | None = Query(None, ge=1, le=MAX_BUDGET),
    max_params: int | None = Query(None, ge=1, le=MAX_BUDGET),
    format: PlanFormat = Query("json", description=FORMAT_DESCRIPTION),
    view: View = Query("full", description=VIEW_DESCRIPTION),
) -> Response:
    """Same answer as POST /plan with the same inputs, with a strong ETag and Cache-Control; a request whose
    If-None-Match names the answer's ETag gets 304 Not Modified."""
    body = PlanRequestModel.model_validate(
        {
            "image_size": parse_image_size_text(image_size),
            "kernel_size": kernel_size,
            "min_c_value": min_c_value,
            "model": model,
            "downsample": downsample,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "dropout": dropout,
            "batch_norm": batch_norm,
            "rf_side": rf_side,
            "block": block,
            "stem": stem,
            "expansion": expansion,
            "max_flops": max_flops,
            "max_params": max_params,
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
