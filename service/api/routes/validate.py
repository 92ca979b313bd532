"""/validate: check an architecture (layers, graph or preset) against both constraints, singly or in batches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.batches import answer_within_budget, check_batch_size
from cnnplan.service.api.deps import AppSettings
from cnnplan.service.api.formats import REPORT_FORMAT_RESPONSES, ReportFormat, report_response, report_title
from cnnplan.service.api.routes.onnx_upload import ONNX_UPLOAD_OPENAPI
from cnnplan.service.convert import report_dict, summary_of_validate_body, validate_body
from cnnplan.service.problems import problem_responses
from cnnplan.service.schemas import (
    VIEW_DESCRIPTION,
    ValidateBatchRequest,
    ValidateBatchResponse,
    ValidateRequestModel,
    ValidateResponse,
    ValidateSummary,
    ValidateSummaryBatchResponse,
    View,
)

router = APIRouter(tags=["validate"])


@router.post(
    "/validate",
    response_model=ValidateResponse | ValidateSummary,
    response_class=FastJSONResponse,
    responses={**REPORT_FORMAT_RESPONSES, **problem_responses(401, 413, 422)},
    summary="Validate an architecture against the c-value and receptive-field constraints",
    openapi_extra=ONNX_UPLOAD_OPENAPI,
)
def post_validate(
    body: ValidateRequestModel,
    format: ReportFormat = Query("json", description="json or svg (the diagram)."),
    view: View = Query("full", description=VIEW_DESCRIPTION),
) -> FastJSONResponse:
    """200 with ``valid: false`` and the violations when a constraint is broken; 422 when the input is malformed.
    A ``multipart/form-data`` body with an ONNX ``model`` file is served by `onnx_upload`. ``view=summary``
    answers a `ValidateSummary` (no per-layer list)."""
    if view == "summary" and format == "json":
        return FastJSONResponse(summary_of_validate_body(body))
    report = validate_body(body)
    if format == "svg":
        return report_response(report, report_title(report))
    return FastJSONResponse(report_dict(report))


def validate_answer(item: dict[str, Any]) -> dict[str, Any]:
    """The answer of one /validate/batch item: the same as POST /validate with that body."""
    return report_dict(validate_body(ValidateRequestModel.model_validate(item)))


def validate_summary_answer(item: dict[str, Any]) -> dict[str, Any]:
    """The answer of one /validate/batch item with ``view=summary``."""
    return summary_of_validate_body(ValidateRequestModel.model_validate(item))


@router.post(
    "/validate/batch",
    response_model=ValidateBatchResponse | ValidateSummaryBatchResponse,
    response_class=FastJSONResponse,
    responses=problem_responses(401, 413, 422),
    summary="Validate up to 1000 architectures; each item gets its own result or problem",
)
def post_validate_batch(
    body: ValidateBatchRequest, settings: AppSettings, view: View = Query("full", description=VIEW_DESCRIPTION)
) -> FastJSONResponse:
    """Results in request order; ``view=summary`` answers a `ValidateSummaryBatchResponse`."""
    check_batch_size(len(body.requests), settings)
    answer = validate_summary_answer if view == "summary" else validate_answer
    return FastJSONResponse({"results": answer_within_budget(body.requests, answer, settings.max_batch_layers)})
