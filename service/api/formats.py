"""Non-JSON representations of plans and reports (``format=pytorch|svg``) as HTTP responses."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Response

from cnnplan.service.interop.pytorch_export import plan_source
from cnnplan.solver import Plan, ValidationReport

PlanFormat = Literal["json", "pytorch", "svg"]
ReportFormat = Literal["json", "svg"]
PYTHON_MEDIA_TYPE = "text/x-python; charset=utf-8"
SVG_MEDIA_TYPE = "image/svg+xml"

FORMAT_DESCRIPTION = "json (default), pytorch (a standalone torch module source) or svg (the plan diagram)."
PLAN_FORMAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The plan: JSON, PyTorch module source (format=pytorch) or an SVG diagram (format=svg).",
        "content": {
            PYTHON_MEDIA_TYPE.split(";")[0]: {"schema": {"type": "string"}},
            SVG_MEDIA_TYPE: {"schema": {"type": "string"}},
        },
    }
}
REPORT_FORMAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report: JSON, or an SVG diagram (format=svg).",
        "content": {SVG_MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}


def plan_response(plan: Plan, image_format: str) -> Response:
    """The plan as PyTorch source (``planned_net.py``) or as an SVG diagram."""
    from cnnplan.service.interop.diagrams import (  # matplotlib loads on first use, not at startup
        plan_title,
        report_image,
    )

    if image_format == "pytorch":
        return Response(
            plan_source(plan),
            media_type=PYTHON_MEDIA_TYPE,
            headers={"Content-Disposition": 'inline; filename="planned_net.py"'},
        )
    spatial_only = plan.request.block != "plain"  # residual blocks: leave their 1x1 convs out of the diagram
    return Response(report_image(plan.report, plan_title(plan), spatial_only=spatial_only), media_type=SVG_MEDIA_TYPE)


def report_response(report: ValidationReport, title: str) -> Response:
    """A validation report's SVG diagram."""
    from cnnplan.service.interop.diagrams import report_image

    return Response(report_image(report, title), media_type=SVG_MEDIA_TYPE)


def report_title(report: ValidationReport, what: str = "Architecture") -> str:
    """Title of a report diagram: numbers only (no request strings)."""
    height, width = report.analysis.image_size
    return f"{what} at {height}x{width}: depth {report.depth}, t = {report.min_c_value}"


__all__ = [
    "FORMAT_DESCRIPTION",
    "PLAN_FORMAT_RESPONSES",
    "REPORT_FORMAT_RESPONSES",
    "PlanFormat",
    "ReportFormat",
    "plan_response",
    "report_response",
    "report_title",
]
