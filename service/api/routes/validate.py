"""/validate: check an architecture (layers, graph or preset) against both constraints, singly or in batches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.batches import answer_within_budget, check_batch_size
from cnnplan.service.api.deps import AppSettings
from cnnplan.service.api.formats import REPORT_FORMAT_RESPONSES, ReportFormat, report_response, report_title
from cnnplan.service.api.routes.onnx_upload import ONNX_UPLOAD_OPENAPI
from cnnplan.service.convert import summary_of_validate_body, validate_answer_dict, validate_body
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
from cnnplan.solver.presets import preset_params, preset_params_notes

router = APIRouter(tags=["validate"])

VALIDATE_RULES = (
    "the layers make a network: each layer leaves a feature map of at least 1x1, merges join maps of one size, "
    "jump and channel count, graph inputs name earlier nodes, no cycles (codes vanishing_feature_map, "
    "misaligned_merge, invalid_graph, invalid_layer)",
    "a 'p/q' min_c_value names a t in (0, 1] with a denominator of at most 10^6",
    "an ONNX upload is a readable ONNX model with a 4-d image input (code invalid_onnx)",
)
"""The rules of a validate request that JSON Schema cannot state (the 422 of the operation lists them)."""


@router.post(
    "/validate",
    response_model=ValidateResponse | ValidateSummary,
    response_class=FastJSONResponse,
    responses={
        **REPORT_FORMAT_RESPONSES,
        **problem_responses(
            401,
            413,
            422,
            501,
            rules=VALIDATE_RULES,
            notes={501: "an ONNX upload (multipart) to a server installed without the onnx extra"},
        ),
    },
    summary="Validate an architecture against the c-value and receptive-field constraints",
    openapi_extra=ONNX_UPLOAD_OPENAPI,
)
def post_validate(
    body: ValidateRequestModel,
    format: ReportFormat = Query("json", description="json or svg (the diagram)."),
    view: View = Query("full", description=VIEW_DESCRIPTION),
) -> Response:
    """200 with ``valid: false`` and the violations when a constraint is broken; 422 when the input is malformed.
    A ``multipart/form-data`` body with an ONNX ``model`` file is served by `onnx_upload`. ``view=summary``
    answers a `ValidateSummary` (no per-layer list)."""
    if view == "summary" and format == "json":
        return FastJSONResponse(with_module_params(summary_of_validate_body(body), body.preset))
    report = validate_body(body)
    if format == "svg":
        return report_response(report, report_title(report))
    return FastJSONResponse(with_module_params(validate_answer_dict(body, report), body.preset))


def with_module_params(answer: dict[str, Any], preset_name: str | None) -> dict[str, Any]:
    """A zoo preset's answer (both views) counts the module's parameters (``sum(p.numel())``, recorded with its
    graph), with a note when some of them are in modules the graph does not hold."""
    params = preset_params(preset_name) if preset_name is not None else None
    if params is not None:
        answer["params"] = params
        notes = preset_params_notes(preset_name)  # type: ignore[arg-type]  # not None here
        if notes:
            answer["notes"] = list(notes)
    return answer


def validate_answer(item: dict[str, Any]) -> dict[str, Any]:
    """The answer of one /validate/batch item: the same as POST /validate with that body."""
    body = ValidateRequestModel.model_validate(item)
    return with_module_params(validate_answer_dict(body, validate_body(body)), body.preset)


def validate_summary_answer(item: dict[str, Any]) -> dict[str, Any]:
    """The answer of one /validate/batch item with ``view=summary``."""
    body = ValidateRequestModel.model_validate(item)
    return with_module_params(summary_of_validate_body(body), body.preset)


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
