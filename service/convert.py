"""Translation between API bodies and solver objects: request models in, plain JSON-ready dicts out.

Responses are built as dicts directly (no response-model round trip) to keep the hot path lean;
their shapes are the `PlanResponse` and `ValidateResponse` models of `cnnplan.service.schemas`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from cnnplan.service.problems import ProblemError
from cnnplan.service.schemas import LayerModel, PlanRequestModel, ValidateRequestModel
from cnnplan.solver import Layer, Plan, PlanRequest, ValidationReport, WidthRule, check_constraints, make_plan
from cnnplan.solver.analysis import LayerStats, analyse
from cnnplan.solver.constraints import AXIS_NAMES, constrained_axes
from cnnplan.solver.layers import INPUT
from cnnplan.solver.presets import preset, preset_info
from cnnplan.solver.rational import format_fraction
from cnnplan.solver.repair import Repair, attach_fixes, repair

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


def _tuples(value: Any) -> Any:
    """JSON arrays (lists, nested) as the tuples a Layer holds."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def to_layer(model: LayerModel) -> Layer:
    """A solver Layer for one layer or graph node body (the fields an answer computes are ignored)."""
    inputs = model.inputs
    return Layer(
        kind=model.type,
        kernel_size=_tuples(model.kernel_size),
        stride=_tuples(model.stride),
        dilation=_tuples(model.dilation),
        padding=_tuples(model.padding),
        ceil_mode=model.ceil_mode,
        groups=model.groups,
        out_channels=model.out_channels,
        name=model.name,
        level=model.level,
        inputs=tuple(inputs) if inputs is not None else None,
        bias=model.bias,
        rate=model.rate,
    )


def architecture_of(body: ValidateRequestModel) -> tuple[tuple[Layer, ...], tuple[int, int] | int, str]:
    """(layers, image size, field prefix) of a validate body; exactly one of layers, graph, preset."""
    given = [name for name in ("layers", "graph", "preset") if getattr(body, name) is not None]
    if len(given) != 1:
        reason = "give exactly one of layers, graph or preset" + (f" (got {', '.join(given)})" if given else "")
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
    """Analyse and check the architecture of a validate body; every violation carries its fix."""
    layers, image_size, field = architecture_of(body)
    analysis = analyse(layers, image_size, body.in_channels, field)
    return attach_fixes(check_constraints(analysis, body.min_c_value, body.include_pointwise, body.rf_side))


def plan_body(body: PlanRequestModel) -> dict[str, Any]:
    """Plan and serialize in one step (the /plan route and the CLI share it)."""
    return plan_dict(make_plan(to_plan_request(body)))


def _number(value: Fraction) -> float:
    return round(value.numerator / value.denominator, C_VALUE_DIGITS)


def _c_axis(layer: LayerStats, include_pointwise: bool) -> str | None:
    """'height', 'width' or 'both': the constrained axes with the smallest c-value; None when exempt."""
    axes = constrained_axes(layer, include_pointwise)
    if not axes or layer.c_value is None:
        return None
    lowest = min(layer.c_value[axis] for axis in axes)
    binding = [axis for axis in axes if layer.c_value[axis] == lowest]
    return "both" if len(binding) == 2 else AXIS_NAMES[binding[0]]


def layer_dict(layer: LayerStats, include_pointwise: bool = False) -> dict[str, Any]:
    """One layer's statistics as JSON-ready values (shape: `schemas.LayerResult`; tuples render as arrays).
    Per-axis values are [height, width]; every input field is stated, so the entry posts back as a layer.
    A dict literal: the cheapest way CPython builds it, and this runs for every layer of every plan."""
    c = layer.c_value
    if c is None:
        c_number = c_exact = c_axis = None
    elif c[0] is c[1] and layer.kernel_size[0] == layer.kernel_size[1]:  # square: one Fraction (analysis._single)
        number, exact = _number(c[0]), str(c[0])
        c_number, c_exact = (number, number), (exact, exact)
        c_axis = "both" if include_pointwise or layer.kernel_size[0] > 1 else None
    else:
        c_number, c_exact = (_number(c[0]), _number(c[1])), (str(c[0]), str(c[1]))
        c_axis = _c_axis(layer, include_pointwise)
    return {
        "name": layer.name,
        "type": layer.kind,
        "level": layer.level,
        "inputs": layer.inputs,
        "kernel_size": layer.kernel_size,
        "stride": layer.stride,
        "dilation": layer.dilation,
        "padding": layer.padding,
        "ceil_mode": layer.ceil_mode,
        "groups": layer.groups,
        "out_channels": layer.out_channels,
        "bias": layer.bias,
        "rate": layer.rate,
        "in_channels": layer.in_channels,
        "output_size": layer.output_size,
        "receptive_field": layer.receptive_field,
        "jump": layer.jump,
        "effective_padding": layer.effective_padding,
        "real_filter_size": layer.real_filter_size,
        "c_value": c_number,
        "c_value_exact": c_exact,
        "c_axis": c_axis,
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
        "top_receptive_field": list(plan.report.top_receptive_field or (0, 0)),
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
    analysis = report.analysis
    pointwise = report.include_pointwise
    return {
        "valid": report.valid,
        "violations": [
            {
                "constraint": v.constraint,
                "layer": v.layer,
                "axis": v.axis,
                "value": _number(Fraction(v.value)),
                "value_exact": format_fraction(Fraction(v.value)),
                "limit": _number(Fraction(v.limit)),
                "limit_exact": format_fraction(Fraction(v.limit)),
                "message": v.message,
                "fix": v.fix,
                "alternatives": list(v.alternatives),
            }
            for v in report.violations
        ],
        "top_layer": report.top_layer,
        "top_receptive_field": report.top_receptive_field,
        "top_axis": report.top_axis,
        "receptive_field_limit": report.receptive_field_limit,
        "rf_side": report.rf_side,
        "depth": report.depth,
        "depth_headroom": report.depth_headroom,
        "min_c_value": _number(report.min_c_value),
        "min_c_value_exact": format_fraction(report.min_c_value),
        "image_size": list(analysis.image_size),
        "params": analysis.params,
        "flops": analysis.flops,
        "layers": [layer_dict(layer, pointwise) for layer in analysis.layers],
        "repair": None,
    }


def validate_answer_dict(body: ValidateRequestModel, report: ValidationReport) -> dict[str, Any]:
    """The JSON answer of POST /validate: the report, and with ``repair: true`` the repaired architecture
    in the body's own format (a graph or preset answers ``graph.nodes``)."""
    answer = report_dict(report)
    if body.repair:
        answer["repair"] = repair_dict(repair(report), graph_format=body.layers is None)
    return answer


_REQUEST_DEFAULTS = {"stride": None, "dilation": 1, "padding": 0, "ceil_mode": False, "groups": 1}
_REQUEST_DEFAULTS.update(out_channels=None, level="feature", bias=True, rate=None, kernel_size=1)


def _json_value(value: Any) -> Any:
    return [_json_value(item) for item in value] if isinstance(value, tuple) else value


def layer_request(layer: Layer, with_inputs: bool) -> dict[str, Any]:
    """A layer in the request format of POST /validate (defaults left out; ``inputs`` when `with_inputs`)."""
    entry: dict[str, Any] = {"type": layer.kind, "name": layer.name}
    for field, default in _REQUEST_DEFAULTS.items():
        value = getattr(layer, field)
        if value != default:
            entry[field] = _json_value(value)
    if with_inputs:
        entry["inputs"] = list(layer.inputs or ())
    return entry


def _is_chain(nodes: tuple[Layer, ...]) -> bool:
    previous = INPUT
    for node in nodes:
        if tuple(node.inputs or ()) != (previous,):
            return False
        previous = node.name
    return True


def repair_dict(repaired: Repair, graph_format: bool) -> dict[str, Any]:
    """A repair as JSON-ready values (shape: `schemas.RepairResult`): the repaired architecture as ``layers``
    (inputs only where it is not a plain chain) or as ``graph.nodes``, the edits, what is left."""
    nodes = repaired.nodes
    answer: dict[str, Any] = {
        "valid": repaired.report.valid,
        "edits": list(repaired.edits),
        "unresolved": [
            {"constraint": violation.constraint, "layer": violation.layer, "reason": reason}
            for violation, reason in repaired.unresolved
        ],
    }
    if graph_format:
        answer["graph"] = {"nodes": [layer_request(node, True) for node in nodes]}
    else:
        chain = _is_chain(nodes)
        answer["layers"] = [layer_request(node, not chain) for node in nodes]
    answer["result"] = report_dict(repaired.report)
    return answer


__all__ = [
    "architecture_of",
    "layer_dict",
    "plan_body",
    "layer_request",
    "plan_dict",
    "repair_dict",
    "report_dict",
    "to_layer",
    "to_plan_request",
    "validate_answer_dict",
    "validate_body",
]
