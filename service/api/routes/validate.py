"""/validate: check an architecture (layers, graph or preset) against both constraints, singly or in batches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.batches import answer_within_budget, check_batch_size
from cnnplan.service.api.deps import AppSettings
from cnnplan.service.api.formats import REPORT_FORMAT_RESPONSES, ReportFormat, report_response, report_title
from cnnplan.service.api.routes.onnx_upload import ONNX_UPLOAD_OPENAPI
from cnnplan.service.convert import validate_answer_dict, validate_body
from cnnplan.service.problems import problem_responses
from cnnplan.service.schemas import ValidateBatchRequest, ValidateBatchResponse, ValidateRequestModel, ValidateResponse

router = APIRouter(tags=["validate"])


@router.post(
    "/validate",
    response_model=ValidateResponse,
    response_class=FastJSONResponse,
    responses={**REPORT_FORMAT_RESPONSES, **problem_responses(401, 413, 422)},
    summary="Validate an architecture against the c-value and receptive-field constraints",
    openapi_extra=ONNX_UPLOAD_OPENAPI,
)
def post_validate(
    body: ValidateRequestModel, format: ReportFormat = Query("json", description="json or svg (the diagram).")
) -> FastJSONResponse:
    """200 with ``valid: false`` and the violations (each with its fix) when a constraint is broken; 422 when the
    input is malformed. With ``repair: true`` the answer also holds the repaired architecture.
    A ``multipart/form-data`` body with an ONNX ``model`` file is served by `onnx_upload`."""
    report = validate_body(body)
    if format == "svg":
        return report_response(report, report_title(report))
    return FastJSONResponse(validate_answer_dict(body, report))


def validate_answer(item: dict[str, Any]) -> dict[str, Any]:
    """The answer of one /validate/batch item: the same as POST /validate with that body."""
    body = ValidateRequestModel.model_validate(item)
    return validate_answer_dict(body, validate_body(body))


@router.post(
    "/validate/batch",
    response_model=ValidateBatchResponse,
    response_class=FastJSONResponse,
    responses=problem_responses(401, 413, 422),
    summary="Validate up to 1000 architectures; each item gets its own result or problem",
)
def post_validate_batch(body: ValidateBatchRequest, settings: AppSettings) -> FastJSONResponse:
    """Results in request order."""
    check_batch_size(len(body.requests), settings)
    return FastJSONResponse(
        {"results": answer_within_budget(body.requests, validate_answer, settings.max_batch_layers)}
    )
