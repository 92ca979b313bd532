"""Translation between API bodies and solver objects: request models in, plain JSON-ready dicts out.

Responses are built as dicts directly (no response-model round trip) to keep the hot path lean;
their shapes are the `PlanResponse` and `ValidateResponse` models of `cnnplan.service.schemas`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from cnnplan.service.plan_answer import chain_summary, plan_answer, plan_answer_json, plan_summary
from cnnplan.service.problems import ProblemError
from cnnplan.service.schemas import ChainModel, LayerModel, PlanRequestModel, ValidateRequestModel
from cnnplan.solver import Layer, Plan, PlanRequest, ValidationReport, WidthRule, check_constraints
from cnnplan.solver.analysis import LayerStats, analyse, analyse_chain, analyse_checked
from cnnplan.solver.constraints import Violation
from cnnplan.solver.limits import MAX_LAYERS
from cnnplan.solver.network import feature_layers
from cnnplan.solver.presets import checked_preset, preset, preset_info
from cnnplan.solver.rational import format_fraction

C_VALUE_DIGITS = 6
"""Decimal places of the rounded ``c_value`` numbers (the exact value is in ``c_value_exact``)."""


def to_plan_request(body: PlanRequestModel) -> PlanRequest:
    """The solver's PlanRequest for a validated body."""
    return PlanRequest(
        image_size=body.image_size,
        kernel_size=body.kernel_size,
        min_c_value=body.min_c_value,
        model=body.model,
        downsample=body.downsample,
        in_channels=body.in_channels,
        num_classes=body.num_classes,
        dropout=body.dropout,
        widths=WidthRule(body.widths.base, body.widths.multiplier, body.widths.max_width),
        batch_norm=body.batch_norm,
        rf_side=body.rf_side,
    )


def to_layer(model: LayerModel) -> Layer:
    """A solver Layer for one layer or graph node body."""
    inputs = getattr(model, "inputs", None)
    return Layer(
        kind=model.type,
        kernel_size=model.kernel_size,
        stride=model.stride,
        dilation=model.dilation,
        padding=model.padding,
        groups=model.groups,
        out_channels=model.out_channels,
        name=model.name,
        level=model.level,
        inputs=tuple(inputs) if inputs is not None else None,
        bias=model.bias,
        rate=model.rate,
    )


def chain_layers(chain: ChainModel) -> tuple[Layer, ...]:
    """The layers of a compact chain: the planner's feature level for its stages, at one width. The count
    (conv + ReLU (+ BN) per position, a pool between stages) is checked against `MAX_LAYERS` before any
    layer is built, so a small body cannot make the service build millions of them."""
    per_position = 3 if chain.batch_norm else 2
    pools = 0 if chain.downsample == "conv" else len(chain.stages) - 1
    count = per_position * sum(chain.stages) + pools
    if count > MAX_LAYERS:
        reason = f"expands to {count} layers; at most {MAX_LAYERS} are accepted"
        raise ProblemError(
            422,
            "Invalid request",
            f"chain.stages: {reason}",
            field="chain.stages",
            reason=reason,
            code="limit_exceeded",
        )
    layers = feature_layers(
        tuple(chain.stages),
        chain.kernel_size,
        chain.downsample,
        WidthRule(chain.width, 1, chain.width),
        chain.batch_norm,
    )
    return tuple(layers)


def architecture_of(body: ValidateRequestModel) -> tuple[tuple[Layer, ...], tuple[int, int] | int, str]:
    """(layers, image size, field prefix) of a validate body; exactly one of layers, graph, chain, preset."""
    given = [name for name in ("layers", "graph", "chain", "preset") if getattr(body, name) is not None]
    if len(given) != 1:
        reason = "give exactly one of layers, graph, chain or preset" + (f" (got {', '.join(given)})" if given else "")
        raise ProblemError(
            422, "Invalid request", f"layers: {reason}", field="layers", reason=reason, code="validation_error"
        )
    image_size = body.image_size
    if body.preset is not None:
        layers = preset(body.preset)
        if image_size is None:
            image_size = int(preset_info(body.preset)["default_image_size"])  # type: ignore[call-overload]
        field = "preset"
    elif body.graph is not None:
        layers = tuple(to_layer(node) for node in body.graph.nodes)
        field = "graph.nodes"
    elif body.chain is not None:
        layers = chain_layers(body.chain)
        field = "chain"
    else:
        assert body.layers is not None
        layers = tuple(to_layer(layer) for layer in body.layers)
        field = "layers"
    if image_size is None:
        reason = "is required (except with a preset)"
        raise ProblemError(
            422, "Invalid request", f"image_size: {reason}", field="image_size", reason=reason, code="validation_error"
        )
    return layers, image_size, field


def validate_body(body: ValidateRequestModel) -> ValidationReport:
    """Analyse and check the architecture of a validate body."""
    layers, image_size, field = architecture_of(body)
    if body.preset is not None:  # a constant graph, checked once per process
        nodes, order = checked_preset(body.preset)
        analysis = analyse_checked(nodes, order, image_size, body.in_channels, field)
    elif body.chain is not None:  # generated like the planner's layers: checked by construction
        analysis = analyse_chain(layers, image_size, body.in_channels, field)
    else:
        analysis = analyse(layers, image_size, body.in_channels, field)
    return check_constraints(analysis, body.min_c_value, body.include_pointwise, body.rf_side)


def plan_body(body: PlanRequestModel) -> dict[str, Any]:
    """Plan and serialize in one step (the /plan route and the CLI share it): the stage-wise closed form
    of `cnnplan.service.plan_answer`, equal to ``plan_dict(make_plan(...))`` value for value."""
    return plan_answer(to_plan_request(body))


def plan_body_json(body: PlanRequestModel) -> bytes:
    """`plan_body` rendered as JSON (the same bytes as rendering it; `plan_answer.plan_answer_json`)."""
    return plan_answer_json(to_plan_request(body))


def plan_summary_body(body: PlanRequestModel) -> dict[str, Any]:
    """The ``view=summary`` answer of /plan (`cnnplan.service.plan_answer.plan_summary`)."""
    return plan_summary(to_plan_request(body))


def _number(value: Fraction) -> float:
    return round(value.numerator / value.denominator, C_VALUE_DIGITS)


def layer_dict(layer: LayerStats) -> dict[str, Any]:
    """One layer's statistics as JSON-ready values (shape: `schemas.LayerResult`; tuples render as arrays).
    A dict literal: the cheapest way CPython builds it, and this runs for every layer of every plan."""
    c = layer.c_value
    return {
        "name": layer.name,
        "type": layer.kind,
        "level": layer.level,
        "inputs": layer.inputs,
        "kernel_size": layer.kernel_size,
        "stride": layer.stride,
        "dilation": layer.dilation,
        "padding": layer.padding,
        "groups": layer.groups,
        "in_channels": layer.in_channels,
        "out_channels": layer.out_channels,
        "output_size": layer.output_size,
        "receptive_field": layer.receptive_field,
        "jump": layer.jump,
        "effective_padding": layer.effective_padding,
        "real_filter_size": layer.real_filter_size,
        "c_value": None if c is None else round(c.numerator / c.denominator, C_VALUE_DIGITS),
        "c_value_exact": None if c is None else str(c),
        "params": layer.params,
        "flops": layer.flops,
    }


def plan_dict(plan: Plan) -> dict[str, Any]:
    """A plan as JSON-ready values (shape: `schemas.PlanResponse`)."""
    request = plan.request
    relaxed = plan.relaxed
    analysis = plan.report.analysis
    return {
        "depth": plan.depth,
        "stages": list(plan.stages),
        "top_receptive_field": plan.top_receptive_field,
        "depth_headroom": plan.report.depth_headroom,
        "relaxed": {
            "stages": [_number(a) for a in relaxed.stages],
            "stages_exact": [format_fraction(a) for a in relaxed.stages],
            "depth": _number(relaxed.depth),
            "depth_exact": format_fraction(relaxed.depth),
        },
        "params": analysis.params,
        "flops": analysis.flops,
        "inputs": {
            "image_size": list(plan.image_size),
            "kernel_size": request.kernel_size,
            "min_c_value": _number(plan.min_c_value),
            "min_c_value_exact": format_fraction(plan.min_c_value),
            "model": request.model,
            "downsample": request.downsample,
            "in_channels": request.in_channels,
            "num_classes": request.num_classes,
            "dropout": request.dropout,
            "widths": {
                "base": request.widths.base,
                "multiplier": request.widths.multiplier,
                "max_width": request.widths.max_width,
            },
            "batch_norm": request.batch_norm,
            "rf_side": request.rf_side,
        },
        "layers": [layer_dict(layer) for layer in analysis.layers],
    }


def report_dict(report: ValidationReport) -> dict[str, Any]:
    """A validation report as JSON-ready values (shape: `schemas.ValidateResponse`)."""
    answer = _report_fields(report)
    answer["violations"] = [
        {
            "constraint": v.constraint,
            "layer": v.layer,
            "value": _number(Fraction(v.value)),
            "value_exact": format_fraction(Fraction(v.value)),
            "limit": _number(Fraction(v.limit)),
            "limit_exact": format_fraction(Fraction(v.limit)),
            "message": v.message,
        }
        for v in report.violations
    ]
    answer["layers"] = [layer_dict(layer) for layer in report.analysis.layers]
    return answer


def report_summary_dict(report: ValidationReport) -> dict[str, Any]:
    """The ``view=summary`` of a validation report: `report_dict` without ``layers`` and without the
    violations' prose ``message`` (`schemas.ValidateSummary`)."""
    answer = _report_fields(report)
    answer["violations"] = [violation_summary(v) for v in report.violations]
    return answer


def violation_summary(violation: Violation) -> dict[str, Any]:
    """One violation's numbers (`schemas.ViolationSummary`): `report_dict`'s without the message."""
    value, limit = Fraction(violation.value), Fraction(violation.limit)
    return {
        "constraint": violation.constraint,
        "layer": violation.layer,
        "value": _number(value),
        "value_exact": format_fraction(value),
        "limit": _number(limit),
        "limit_exact": format_fraction(limit),
    }


def summary_of_validate_body(body: ValidateRequestModel) -> dict[str, Any]:
    """The ``view=summary`` answer of a validate body: a compact chain stage-wise in closed form
    (`cnnplan.service.plan_answer.chain_summary`), anything else through the generic analysis."""
    chain = body.chain
    only_chain = body.layers is None and body.graph is None and body.preset is None
    if chain is not None and only_chain and body.image_size is not None:
        answer = chain_summary(
            tuple(chain.stages), chain.kernel_size, chain.downsample, chain.width, chain.batch_norm,
            body.image_size, body.min_c_value, body.in_channels, body.rf_side,
        )  # fmt: skip
        if answer is not None:
            return answer
    return report_summary_dict(validate_body(body))


def _report_fields(report: ValidationReport) -> dict[str, Any]:
    analysis = report.analysis
    return {
        "valid": report.valid,
        "violations": [],
        "top_layer": report.top_layer,
        "top_receptive_field": report.top_receptive_field,
        "receptive_field_limit": report.receptive_field_limit,
        "depth": report.depth,
        "depth_headroom": report.depth_headroom,
        "min_c_value": _number(report.min_c_value),
        "min_c_value_exact": format_fraction(report.min_c_value),
        "image_size": list(analysis.image_size),
        "params": analysis.params,
        "flops": analysis.flops,
    }


__all__ = [
    "architecture_of",
    "layer_dict",
    "plan_body",
    "plan_dict",
    "plan_body_json",
    "plan_summary_body",
    "report_dict",
    "report_summary_dict",
    "summary_of_validate_body",
    "violation_summary",
    "chain_layers",
    "to_layer",
    "to_plan_request",
    "validate_body",
]
