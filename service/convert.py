"""Translation between API bodies and solver objects: request models in, plain JSON-ready dicts out.

Responses are built as dicts directly (no response-model round trip) to keep the hot path lean;
their shapes are the `PlanResponse` and `ValidateResponse` models of `cnnplan.service.schemas`.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

from cnnplan.service.api._responses import render_json
from cnnplan.service.plan_answer import chain_summary, plan_answer, plan_answer_json, plan_summary
from cnnplan.service.problems import ProblemError
from cnnplan.service.schemas import ChainModel, LayerModel, PlanRequestModel, ValidateRequestModel
from cnnplan.solver import Layer, Plan, PlanRequest, ValidationReport, WidthRule, check_constraints, make_plan
from cnnplan.solver.analysis import LayerStats, analyse, analyse_chain, analyse_checked, normalize_image_size
from cnnplan.solver.constraints import AXIS_NAMES, Violation, constrained_axes
from cnnplan.solver.layers import INPUT
from cnnplan.solver.limits import MAX_LAYERS
from cnnplan.solver.network import feature_layers
from cnnplan.solver.presets import checked_preset, preset, preset_info
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
        block=body.block,
        stem=body.stem,
        expansion=body.expansion,
        max_flops=body.max_flops,
        max_params=body.max_params,
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
    """(layers, image size, field prefix) of a validate body (the model saw to exactly one of layers, graph,
    preset, and to an image size unless it is a preset)."""
    image_size = image_size_of(body)
    if body.preset is not None:
        layers = preset(body.preset)
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
    return layers, image_size, field


def image_size_of(body: ValidateRequestModel) -> tuple[int, int] | int:
    """The body's image size; a preset's default when the body names a preset and no size."""
    if body.image_size is not None:
        return body.image_size
    assert body.preset is not None  # the model requires an image size unless a preset is named
    return int(preset_info(body.preset)["default_image_size"])  # type: ignore[call-overload]


def validate_body(body: ValidateRequestModel, fixes: bool = True) -> ValidationReport:
    """Analyse and check the architecture of a validate body; every violation carries its fix (unless `fixes`
    is False: the summary view, which shows none, skips their search and the re-analyses that check them)."""
    if body.preset is not None:  # a constant graph, checked and ordered once per process
        nodes, order = checked_preset(body.preset)
        analysis = analyse_checked(nodes, normalize_image_size(image_size_of(body)), body.in_channels, "preset", order)
    else:
        layers, image_size, field = architecture_of(body)
        if body.chain is not None:  # generated like the planner's layers: checked by construction
            analysis = analyse_chain(layers, image_size, body.in_channels, field)
        else:
            analysis = analyse(layers, image_size, body.in_channels, field)
    report = check_constraints(analysis, body.min_c_value, body.include_pointwise, body.rf_side)
    return attach_fixes(report) if fixes else report


def has_closed_form(request: PlanRequest) -> bool:
    """Whether `cnnplan.service.plan_answer` answers `request` stage-wise: a plain chain without a stem or a
    budget (the other styles, the stems and the budget search go through `make_plan`)."""
    return (
        request.block == "plain"
        and request.stem == "none"
        and request.expansion is None
        and request.max_flops is None
        and request.max_params is None
    )


def plan_body(body: PlanRequestModel) -> dict[str, Any]:
    """Plan and serialize in one step (the /plan route and the CLI share it): the stage-wise closed form
    of `cnnplan.service.plan_answer` where it applies, equal to ``plan_dict(make_plan(...))`` value for value."""
    request = to_plan_request(body)
    return plan_answer(request) if has_closed_form(request) else plan_dict(make_plan(request))


def plan_body_json(body: PlanRequestModel) -> bytes:
    """`plan_body` rendered as JSON (the same bytes as rendering it; `plan_answer.plan_answer_json`)."""
    request = to_plan_request(body)
    return plan_answer_json(request) if has_closed_form(request) else render_json(plan_dict(make_plan(request)))


def plan_summary_body(body: PlanRequestModel) -> dict[str, Any]:
    """The ``view=summary`` answer of /plan (`cnnplan.service.plan_answer.plan_summary`, or from `make_plan`)."""
    request = to_plan_request(body)
    if has_closed_form(request):
        return plan_summary(request)
    plan = make_plan(request)
    return {
        "depth": plan.depth,
        "stages": list(plan.stages),
        "top_receptive_field": list(plan.report.top_receptive_field or (0, 0)),
        "depth_headroom": plan.depth_headroom,
        "valid": plan.report.valid,
        "violations": [violation_summary(v) for v in plan.report.violations],
        "params": plan.report.analysis.params,
        "flops": plan.report.analysis.flops,
    }


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


_NODE_DEFAULTS = tuple(
    (f.name, f.default)
    for f in dataclasses.fields(Layer)
    if f.name
    in ("kernel_size", "stride", "dilation", "padding", "ceil_mode", "groups", "out_channels", "level", "bias", "rate")
)
"""(field, default) of the layer fields a graph node carries when they differ from the default."""


def node_dict(layer: Layer, inputs: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A node in the request format of POST /validate (`graph.nodes`), defaults left out; `inputs`
    (default: the layer's own) names its sources. Runs for every layer of every plan: one pass over the
    layer's instance dict."""
    fields = layer.__dict__
    node: dict[str, Any] = {"name": fields["name"], "type": fields["kind"]}
    for name, default in _NODE_DEFAULTS:
        value = fields[name]
        if value != default:
            node[name] = value
    node["inputs"] = list((fields["inputs"] or ()) if inputs is None else inputs)
    return node


def _widths_dict(widths: WidthRule) -> dict[str, int]:
    return {"base": widths.base, "multiplier": widths.multiplier, "max_width": widths.max_width}


def plan_dict(plan: Plan) -> dict[str, Any]:
    """A plan as JSON-ready values (shape: `schemas.PlanResponse`)."""
    request = plan.request
    relaxed = plan.relaxed
    analysis = plan.report.analysis
    return {
        "depth": plan.depth,
        "stages": list(plan.stages),
        "top_receptive_field": list(plan.report.top_receptive_field or (0, 0)),
        "depth_headroom": plan.depth_headroom,
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
            "widths": _widths_dict(plan.widths),
            "batch_norm": request.batch_norm,
            "rf_side": request.rf_side,
            "block": request.block,
            "stem": request.stem,
            "expansion": request.expansion,
            "max_flops": request.max_flops,
            "max_params": request.max_params,
        },
        "stem": None if plan.stem_effect is None else dataclasses.asdict(plan.stem_effect),
        "budget": _budget_dict(plan),
        "graph": None
        if request.block == "plain"
        else {"nodes": [node_dict(layer, stats.inputs) for layer, stats in zip(plan.layers, analysis.layers)]},
        "layers": [layer_dict(layer) for layer in analysis.layers],
    }


def _budget_dict(plan: Plan) -> dict[str, Any] | None:
    budget = plan.budget
    if budget is None:
        return None
    return {
        "requested_widths": _widths_dict(plan.request.widths),
        "widths": _widths_dict(budget.widths),
        "next_wider": None if budget.next_wider is None else _widths_dict(budget.next_wider),
        "next_wider_flops": budget.next_wider_flops,
        "next_wider_params": budget.next_wider_params,
    }


def report_dict(report: ValidationReport) -> dict[str, Any]:
    """A validation report as JSON-ready values (shape: `schemas.ValidateResponse`): `_report_fields`, the
    violations with their message and fixes, the layers, and ``repair`` None (`validate_answer_dict` fills it)."""
    answer = _report_fields(report)
    answer["violations"] = [
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
    ]
    answer["layers"] = [layer_dict(layer, report.include_pointwise) for layer in report.analysis.layers]
    answer["repair"] = None
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
        "axis": violation.axis,
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
    return report_summary_dict(validate_body(body, fixes=False))


def _report_fields(report: ValidationReport) -> dict[str, Any]:
    """The fields the full report and its ``view=summary`` share (violations left empty)."""
    analysis = report.analysis
    return {
        "valid": report.valid,
        "violations": [],
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
    }


def validate_answer_dict(body: ValidateRequestModel, report: ValidationReport) -> dict[str, Any]:
    """The JSON answer of POST /validate: the report, and with ``repair: true`` the repaired architecture
    in the body's own format (a graph or preset answers ``graph.nodes``)."""
    answer = report_dict(report)
    if body.repair:
        answer["repair"] = repair_dict(repair(report), graph_format=body.layers is None)
    return answer


_REQUEST_DEFAULTS: dict[str, Any] = {"stride": None, "dilation": 1, "padding": 0, "ceil_mode": False, "groups": 1}
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
    previous: str | None = INPUT
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
    "node_dict",
    "plan_body",
    "layer_request",
    "plan_dict",
    "plan_body_json",
    "plan_summary_body",
    "repair_dict",
    "report_dict",
    "report_summary_dict",
    "summary_of_validate_body",
    "violation_summary",
    "chain_layers",
    "to_layer",
    "to_plan_request",
    "validate_answer_dict",
    "validate_body",
]
