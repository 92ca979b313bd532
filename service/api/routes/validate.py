"""/validate: check an architecture (layers, graph or preset) against both constraints, singly or in batches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.batches import answer_within_budget, check_batch_size
from cnnplan.service.api.deps import AppSettings
from cnnplan.service.api.formats import REPORT_FORMAT_RESPONSES, ReportFormat, report_response, report_title
from cnnplan.service.api.routes.onnx_upload import ONNX_UPLOAD_OPENAPI
from cnnplan.service.convert import report_dict, validate_body
from cnnplan.service.problems import problem_responses
from cnnplan.service.schemas import ValidateBatchRequest, ValidateBatchResponse, ValidateRequestModel, ValidateResponse
from cnnplan.solver.presets import preset_params

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
    """200 with ``valid: false`` and the violations when a constraint is broken; 422 when the input is malformed.
    A ``multipart/form-data`` body with an ONNX ``model`` file is served by `onnx_upload`."""
    report = validate_body(body)
    if format == "svg":
        return report_response(report, report_title(report))
    return FastJSONResponse(with_module_params(report_dict(report), body.preset))


def with_module_params(answer: dict[str, Any], preset_name: str | None) -> dict[str, Any]:
    """A zoo preset's answer counts the module's parameters (``sum(p.numel())``, recorded with its graph)."""
    params = preset_params(preset_name) if preset_name is not None else None
    if params is not None:
        answer["params"] = params
    return answer


def validate_answer(item: dict[str, Any]) -> dict[str, Any]:
    """The answer of one /validate/batch item: the same as POST /validate with that body."""
    body = ValidateRequestModel.model_validate(item)
    return with_module_params(report_dict(validate_body(body)), body.preset)


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
