"""POST /validate with a multipart ONNX upload: the model's graph checked against both constraints.

The route only matches ``multipart/form-data`` requests, so JSON bodies still reach the JSON route of
`validate.py`; its OpenAPI operation documents both bodies (`ONNX_UPLOAD_OPENAPI`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.formats import ReportFormat, report_response, report_title
from cnnplan.service.convert import repair_dict, report_dict
from cnnplan.service.problems import ProblemError
from cnnplan.service.schemas import (
    DEFAULT_MIN_C_VALUE_TEXT,
    IMAGE_SIZE_TEXT_MAX_LENGTH,
    IMAGE_SIZE_TEXT_PATTERN,
    MIN_C_VALUE_TEXT_PATTERN,
    parse_image_size_text,
    parse_min_c_value_text,
)
from cnnplan.solver.limits import MAX_NAME_LENGTH
from cnnplan.solver.repair import repair as repair_architecture


class MultipartOnlyRoute(APIRoute):
    """An APIRoute that matches only ``multipart/form-data`` requests (others fall through to later routes)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE:
            return match, child
        for key, value in scope.get("headers", ()):
            if key == b"content-type" and value.lower().startswith(b"multipart/form-data"):
                return match, child
        return Match.NONE, {}


router = APIRouter(tags=["validate"], route_class=MultipartOnlyRoute)  # guarded like /validate by create_app

ONNX_UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["model"],
                    "properties": {
                        "model": {
                            "type": "string",
                            "format": "binary",
                            "description": "An .onnx file (parsed, never run).",
                        },
                        "image_size": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": IMAGE_SIZE_TEXT_MAX_LENGTH,
                            "pattern": IMAGE_SIZE_TEXT_PATTERN,
                            "description": "224 or 224x160 (sides 1..2^20); default: the model's input size.",
                        },
                        "min_c_value": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 64,
                            "pattern": MIN_C_VALUE_TEXT_PATTERN,
                            "default": DEFAULT_MIN_C_VALUE_TEXT,
                            "description": "A decimal or 'p/q' in (0, 1], denominator at most 10^6.",
                        },
                        "include_pointwise": {"type": "boolean", "default": False},
                        "rf_side": {"type": "string", "enum": ["axis", "min", "max"], "default": "axis"},
                        "repair": {"type": "boolean", "default": False},
                        "classifier_from": {
                            "type": "string",
                            "maxLength": MAX_NAME_LENGTH * 4,
                            "description": "ONNX node name where the (unconstrained) classifier level starts; default: "
                            "the first global pool, Flatten, Reshape, Gemm or MatMul.",
                        },
                    },
                }
            }
        }
    }
}
"""Merged into POST /validate's OpenAPI operation (FastAPI's ``openapi_extra``)."""


@router.post("/validate", include_in_schema=False)
async def post_validate_onnx(
    model: Annotated[UploadFile, File(description="An .onnx file.")],
    image_size: str | None = Form(None, min_length=1, max_length=IMAGE_SIZE_TEXT_MAX_LENGTH),
    min_c_value: str = Form(DEFAULT_MIN_C_VALUE_TEXT, min_length=1, max_length=64),
    include_pointwise: bool = Form(False),
    rf_side: Literal["axis", "min", "max"] = Form("axis"),
    repair: bool = Form(False),
    classifier_from: str | None = Form(None, max_length=MAX_NAME_LENGTH * 4),
    format: Annotated[ReportFormat, Query(description="json or svg.")] = "json",
):
    """The report of POST /validate for an uploaded ONNX model, plus ``onnx.passed_through`` (dropped operators)."""
    try:
        from cnnplan.service.interop.onnx_import import validate_onnx  # the optional 'onnx' extra
    except ImportError:
        detail = "ONNX import needs the onnx package: pip install 'cnnplan[onnx]'"
        raise ProblemError(501, "Not Implemented", detail, field="model", code="onnx_unavailable") from None
    size = parse_image_size_text(image_size) if image_size is not None else None
    t = parse_min_c_value_text(min_c_value)
    data = await model.read()
    report, imported = await run_in_threadpool(
        validate_onnx, data, size, t, include_pointwise, rf_side, classifier_from
    )
    if format == "svg":
        return report_response(report, report_title(report, "ONNX model"))
    body = report_dict(report)
    if repair:
        body["repair"] = repair_dict(repair_architecture(report), graph_format=True)
    body["onnx"] = {
        "layers": len(imported.layers),
        "passed_through": list(imported.passed_through),
        "stored_params": imported.stored_params,
        "notes": list(imported.notes),
    }
    return FastJSONResponse(body)


__all__ = ["ONNX_UPLOAD_OPENAPI", "MultipartOnlyRoute", "router"]
