"""The /plan answer of a planned chain in closed form, stage by stage (docs/theory.md#layer-arithmetic, #classifier-level, #widths).

`plan_dict(make_plan(request))` builds the network as `Layer` objects, walks it layer by layer with
the generic analysis (`LayerStats` per layer), checks the constraints and then renders every layer.
A planned network is far more regular than an arbitrary architecture: stage l is a_l identical
k x k 'same' convolutions (each with its BN and ReLU) at one jump j_l and one map size, so within
a stage the state is affine in the position m:

    r(m) = r_0 + m (k - 1) j_l,   P(m) = P_0 + m ((k - 1) // 2) j_l,   c(m) = k j_l / r(m),

and the downsampling between stages maps (r, j, P, s) to (r + j, 2 j, P, floor(s / 2)) for a
2x2 stride-2 pool, or is the stage's first convolution with stride 2 (output ceil(s / 2)).
Every kernel, stride, jump and map walk is square, so both axes share r, j, P and c: the per-axis
answer (`convert.layer_dict`: [h, w] pairs, every input field) writes each value twice; only the output
size (a non-square image) and the global pool's receptive field, r + (s - 1) j per axis, differ.
`plan_answer` evaluates these formulas directly into the answer's dicts (one template per stage
and kind, copied per layer), with the same exact integers and fractions as the generic path, and
`plan_summary` the verdict alone (depth, stages, top receptive field, headroom, valid,
violations, params, FLOPs) without the per-layer list, with the per-stage sums in closed form.
`tests/service/test_service_plan_answer.py` checks both against the generic analysis on a grid.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd
from typing import Any

from cnnplan.service.api._responses import render_json
from cnnplan.solver.analysis import normalize_image_size
from cnnplan.solver.constraints import AXIS_NAMES, receptive_field_limit, receptive_field_limits
from cnnplan.solver.errors import InvalidLayerError
from cnnplan.solver.limits import MAX_CHANNELS
from cnnplan.solver.network import CLASSIFIER_KERNEL, WidthRule, classifier_pooling, feature_side
from cnnplan.solver.plan import PlanRequest
from cnnplan.solver.planner import check_plan_inputs, optimal_stages
from cnnplan.solver.rational import format_fraction

C_VALUE_DIGITS = 6
"""Decimal places of the rounded numbers (the same as `cnnplan.service.convert`)."""


def _number(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, C_VALUE_DIGITS)


def _check_request(request: PlanRequest) -> tuple[Fraction, tuple[int, int]]:
    """The checks of `make_plan` and `network_for_stages`, in their order; (t, (height, width))."""
    t = check_plan_inputs(request.kernel_size, request.min_c_value, request.model, request.downsample)
    size = normalize_image_size(request.image_size)
    if not isinstance(request.widths, WidthRule):
        raise InvalidLayerError("widths", f"must be a width rule (base, multiplier, max_width), got {request.widths!r}")
    if not isinstance(request.batch_norm, bool):
        raise InvalidLayerError("batch_norm", f"must be a boolean, got {request.batch_norm!r}")
    return t, size


def _check_network(num_classes: object, dropout: object, in_channels: object) -> None:
    """`classifier_layers`' checks of the classifier inputs, then `analyse_chain`'s of in_channels (raised
    after planning, as there)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= MAX_CHANNELS:
        raise InvalidLayerError("num_classes", f"must be an integer in [1, {MAX_CHANNELS}], got {num_classes!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise InvalidLayerError("dropout", f"must be a probability in [0, 1), got {dropout!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or not 1 <= in_channels <= MAX_CHANNELS:
        raise InvalidLayerError("in_channels", f"must be an integer in [1, {MAX_CHANNELS}]")


def _relaxed(size: tuple[int, int], kernel_size: int, t: Fraction, rf_side: str) -> dict[str, Any]:
    """`planner.relaxed_stages` rendered, in integers: with t = p/q, budget z/k and n stages (stage l is the
    last once 2^(l-1) q k >= z p), a_1 = q/p, a_l = q/(2p) for 1 < l < n and a_n = (z p - k W q) / (k p 2W)
    (W = 2^(n-2), the weight of stage n-1; a_1 = z/k when n = 1), depth = their sum."""
    p, q = t.numerator, t.denominator
    z = receptive_field_limit(size, rf_side)  # type: ignore[arg-type]
    count, weight = 0, 1
    while weight * q * kernel_size < z * p:
        count += 1
        weight *= 2
    filled = weight // 2 if count else 0  # T_(n-1) = W q / p
    spare = z * p - kernel_size * filled * q  # a_n = spare / (k p weight)
    first, middle, last = _ratio(q, p), _ratio(q, 2 * p), _ratio(spare, kernel_size * p * weight)
    stages = ([first] if count else []) + [middle] * max(0, count - 1) + [last]
    # depth over the common denominator 2 k p weight: a_1 = 2 k weight q, a_l = k weight q, a_n = 2 spare
    scale = kernel_size * weight * q
    depth = _ratio(2 * spare + (2 * scale + (count - 1) * scale if count else 0), 2 * kernel_size * p * weight)
    return {
        "stages": [a[0] for a in stages],
        "stages_exact": [a[1] for a in stages],
        "depth": depth[0],
        "depth_exact": depth[1],
    }


def _ratio(numerator: int, denominator: int) -> tuple[float, str]:
    """numerator / denominator (> 0) as the answer shows a Fraction: (rounded number, "p/q" or "p" reduced)."""
    common = gcd(numerator, denominator)
    numerator, denominator = numerator // common, denominator // common
    exact = str(numerator) if denominator == 1 else f"{numerator}/{denominator}"
    return round(numerator / denominator, C_VALUE_DIGITS), exact


def _inputs(request: PlanRequest, size: tuple[int, int], t: Fraction) -> dict[str, Any]:
    widths = request.widths
    return {
        "image_size": list(size),
        "kernel_size": request.kernel_size,
        "min_c_value": _number(t.numerator, t.denominator),
        "min_c_value_exact": format_fraction(t),
        "model": request.model,
        "downsample": request.downsample,
        "in_channels": request.in_channels,
        "num_classes": request.num_classes,
        "dropout": request.dropout,
        "widths": {"base": widths.base, "multiplier": widths.multiplier, "max_width": widths.max_width},
        "batch_norm": request.batch_norm,
        "rf_side": request.rf_side,
        "block": request.block,
        "stem": request.stem,
        "expansion": request.expansion,
        "max_flops": request.max_flops,
        "max_params": request.max_params,
    }


_PLAIN_CHAIN = {"stem": None, "budget": None, "graph": None}
"""What `convert.plan_dict` says of a plain chain without a stem or a budget (the closed form's domain)."""


def _headroom(kernel: int, jump: int, receptive_field: int, t: Fraction, limit: int) -> int:
    """`constraints.depth_headroom` of the top conv in integers: max m with k j / (r + m (k-1) j) >= t and
    r + m (k-1) j <= limit, i.e. min((k j q - r p) // (p g), (limit - r) // g) with g = (k-1) j, at least 0."""
    growth = (kernel - 1) * jump
    p, q = t.numerator, t.denominator
    return max(0, min((kernel * jump * q - receptive_field * p) // (p * growth), (limit - receptive_field) // growth))


_NO_PADDING = ((0, 0), (0, 0))
"""The padding of every layer but a conv, as `convert.layer_dict` states it: ((top, bottom), (left, right))."""


def _layer(
    name: str,
    kind: str,
    level: str,
    previous: str,
    kernel_size: int,
    stride: int,
    in_channels: int,
    out_channels: int,
    output_size: tuple[int, int],
    receptive_field: tuple[int, int],
    jump: int,
    effective_padding: int,
    params: int,
    flops: int,
    rate: float | None = None,
) -> dict[str, Any]:
    """A non-conv layer's answer dict, in the shape and key order of `convert.layer_dict`: per-axis pairs
    (square kernel, stride, jump and effective padding; the receptive field as given, a global pool's
    differs per axis), no padding, floor rounding, the default bias, no c-value."""
    return {
        "name": name,
        "type": kind,
        "level": level,
        "inputs": (previous,),
        "kernel_size": (kernel_size, kernel_size),
        "stride": (stride, stride),
        "dilation": (1, 1),
        "padding": _NO_PADDING,
        "ceil_mode": False,
        "groups": 1,
        "out_channels": out_channels,
        "bias": True,
        "rate": rate,
        "in_channels": in_channels,
        "output_size": output_size,
        "receptive_field": receptive_field,
        "jump": (jump, jump),
        "effective_padding": (effective_padding, effective_padding),
        "real_filter_size": None,
        "c_value": None,
        "c_value_exact": None,
        "c_axis": None,
        "params": params,
        "flops": flops,
    }


def _conv(
    name: str,
    level: str,
    previous: str,
    kernel_size: int,
    stride: int,
    padding: tuple[int, int],
    in_channels: int,
    out_channels: int,
    output_size: tuple[int, int],
    receptive_field: int,
    jump: int,
    effective_padding: int,
    real: int,
    params: int,
    flops: int,
    bias: bool,
) -> dict[str, Any]:
    """A square k x k conv's answer dict (`convert.layer_dict`): every geometric value the same on both axes,
    `padding` = (before, after) on each axis, c = real / r as the reduced Fraction renders, binding on both axes."""
    c, exact = _c_value(real, receptive_field)
    return {
        "name": name,
        "type": "conv",
        "level": level,
        "inputs": (previous,),
        "kernel_size": (kernel_size, kernel_size),
        "stride": (stride, stride),
        "dilation": (1, 1),
        "padding": (padding, padding),
        "ceil_mode": False,
        "groups": 1,
        "out_channels": out_channels,
        "bias": bias,
        "rate": None,
        "in_channels": in_channels,
        "output_size": output_size,
        "receptive_field": (receptive_field, receptive_field),
        "jump": (jump, jump),
        "effective_padding": (effective_padding, effective_padding),
        "real_filter_size": (real, real),
        "c_value": (c, c),
        "c_value_exact": (exact, exact),
        "c_axis": "both",
        "params": params,
        "flops": flops,
    }


def _c_value(real: int, receptive_field: int) -> tuple[float, str]:
    """c = real / r as `convert.layer_dict` renders the reduced Fraction: (rounded number, "p/q" or "p")."""
    common = gcd(real, receptive_field)
    numerator, denominator = real // common, receptive_field // common
    exact = str(numerator) if denominator == 1 else f"{numerator}/{denominator}"
    return round(numerator / denominator, C_VALUE_DIGITS), exact


def _walk(
    request: PlanRequest,
    size: tuple[int, int],
    stages: tuple[int, ...],
    t: Fraction,
    layers: list | None,
    text: bool = False,
    violating: list | None = None,
) -> dict[str, Any]:
    """The planned network: its feature level (`_features`) followed by the classifier level; returns the
    totals (params, FLOPs), the top feature conv's (receptive field, jump) and whether some feature conv
    has c < t. With `text` the layers are appended as JSON text (`_layer_json`, `_emit_stage_json`)."""
    features = _features(
        request.kernel_size, request.downsample, request.widths, request.batch_norm, request.in_channels, size,
        stages, t, layers, violating, text,
    )  # fmt: skip
    channels, height, width, receptive_field, jump, effective_padding, previous = features["state"]
    totals = _classifier(request, size, stages, channels, height, width, receptive_field, jump, effective_padding,
                         previous, layers.append if layers is not None else None, text)  # fmt: skip
    return {"params": features["params"] + totals[0], "flops": features["flops"] + totals[1],
            "top": (receptive_field, jump), "below_t": features["below_t"]}  # fmt: skip


def _features(
    kernel: int,
    downsample: str,
    widths: WidthRule,
    batch_norm: bool,
    in_channels: int,
    size: tuple[int, int],
    stages: tuple[int, ...],
    t: Fraction,
    layers: list | None,
    violating: list | None,
    text: bool = False,
) -> dict[str, Any]:
    """The stage-wise evaluation of a feature level (module docstring), shared by every closed-form answer.

    Stage l of a_l convolutions of w_l filters entering at jump j, receptive field r, effective padding P:
    its first conv has j_in = j (and stride 2 with downsample='conv', after which J = 2 j; else J = j), the
    others j_in = J; so r_1 = r + g j, r_m = r_1 + (m - 1) g J (g = k - 1), P likewise with (k - 1) // 2,
    params = k^2 c_in w + (a - 1) k^2 w^2 (+ w per conv without BN, + 2 w per BN), FLOPs = 2 s_h s_w x the
    weights. Within a stage c = k j_in / r falls with m, so c >= t holds for the stage iff it holds for its
    first and its last conv, and the convs m >= 2 below t are those from m_0 = max(2, D // (p g J) + 2) on,
    D = k J q - r_1 p (t = p / q). Appends every layer's dict to `layers` unless it is None (templates per
    stage, copied per layer; JSON text with `text`) and (name, k j_in, r) of every conv with c < t to `violating`
    unless it is None.
    Returns params, FLOPs, below_t, vanished (a pool met a map side < 2: the generic analysis raises there)
    and the state after the last layer (channels, height, width, r, j, P, its name).
    """
    left = (kernel - 1) // 2
    same = (left, kernel - 1 - left)
    growth = kernel - 1
    square = kernel * kernel
    p, q = t.numerator, t.denominator
    height, width = size
    channels = in_channels
    receptive_field, jump, effective_padding = 1, 1, 0
    params = flops = 0
    below_t = vanished = False
    previous = "input"
    layer, emit_stage = (_layer_json, _emit_stage_json) if text else (_layer, _emit_stage)
    for stage, count in enumerate(stages, start=1):
        out_channels = widths.width(stage)
        first_stride = 1
        if stage > 1:
            if downsample == "conv":  # the stage's first conv has stride 2 ('same': s -> ceil(s / 2))
                first_stride = 2
            else:  # a 2x2 stride-2 pool: r += j, j *= 2, P unchanged, s -> floor(s / 2)
                if height < 2 or width < 2:
                    vanished = True
                    break
                height, width = height // 2, width // 2
                receptive_field += jump
                jump *= 2
                if layers is not None:
                    name = f"s{stage - 1}.pool"
                    layers.append(
                        layer(name, downsample, "feature", previous, 2, 2, channels, channels, (height, width),
                               (receptive_field, receptive_field), jump, effective_padding, 0, 0)
                    )  # fmt: skip
                    previous = name
        if first_stride == 2:
            height, width = -(-height // 2), -(-width // 2)
        jump_in, stage_jump = jump, jump * first_stride
        bias = 0 if batch_norm else out_channels
        first_weights = square * channels * out_channels
        rest_weights = square * out_channels * out_channels
        first_rf = receptive_field + growth * jump_in
        last_rf = first_rf + (count - 1) * growth * stage_jump
        first_below = first_rf * p > kernel * jump_in * q  # c < t, exactly
        if first_below or last_rf * p > kernel * stage_jump * q:
            below_t = True
            if violating is not None:
                if first_below:
                    violating.append((f"s{stage}.conv1", kernel * jump_in, first_rf))
                step = growth * stage_jump
                start = max(2, (kernel * stage_jump * q - first_rf * p) // (p * step) + 2)
                for position in range(start, count + 1):
                    violating.append(
                        (f"s{stage}.conv{position}", kernel * stage_jump, first_rf + (position - 1) * step)
                    )
        area = height * width
        params += (
            first_weights + (count - 1) * rest_weights + count * bias + (2 * count * out_channels if batch_norm else 0)
        )
        flops += 2 * area * (first_weights + (count - 1) * rest_weights)
        first_padding = effective_padding + left * jump_in
        if layers is not None:
            previous = emit_stage(
                layers, stage, count, previous, kernel, same, channels, out_channels, (height, width), stage_jump,
                jump_in, first_stride, first_rf, growth * stage_jump, first_padding, left * stage_jump,
                (first_weights + bias, 2 * area * first_weights), (rest_weights + bias, 2 * area * rest_weights),
                batch_norm,
            )  # fmt: skip
        receptive_field, jump = last_rf, stage_jump
        effective_padding = first_padding + (count - 1) * left * stage_jump
        channels = out_channels
    return {"params": params, "flops": flops, "below_t": below_t, "vanished": vanished,
            "state": (channels, height, width, receptive_field, jump, effective_padding, previous)}  # fmt: skip


def _emit_stage(
    layers: list[dict[str, Any]],
    stage: int,
    count: int,
    previous: str,
    kernel: int,
    same: tuple[int, int],
    in_channels: int,
    channels: int,
    output: tuple[int, int],
    jump: int,
    first_jump_in: int,
    first_stride: int,
    receptive_field: int,
    rf_step: int,
    effective_padding: int,
    padding_step: int,
    first_counts: tuple[int, int],
    counts: tuple[int, int],
    batch_norm: bool,
) -> str:
    """Append one stage's conv (+ BN) + ReLU dicts: templates filled once, copied per layer with the
    position's name, input, receptive field, effective padding and c-value; returns the last layer's name."""
    bias = not batch_norm
    conv = _conv(
        "", "feature", "", kernel, 1, same, channels, channels, output, 1, jump, 0, kernel * jump, *counts, bias
    )
    bn = _layer("", "bn", "feature", "", 1, 1, channels, channels, output, (0, 0), jump, 0, 2 * channels, 0)
    relu = _layer("", "relu", "feature", "", 1, 1, channels, channels, output, (0, 0), jump, 0, 0, 0)
    append = layers.append
    real = kernel * jump
    prefix = f"s{stage}."
    for position in range(1, count + 1):
        layer = conv.copy()
        name = f"{prefix}conv{position}"
        rf_pair = (receptive_field, receptive_field)
        padding_pair = (effective_padding, effective_padding)
        layer["name"] = name
        layer["inputs"] = (previous,)
        layer["receptive_field"] = rf_pair
        layer["effective_padding"] = padding_pair
        if position == 1:
            first_real = kernel * first_jump_in
            layer["stride"] = (first_stride, first_stride)
            layer["in_channels"] = in_channels
            layer["real_filter_size"] = (first_real, first_real)
            layer["params"], layer["flops"] = first_counts
            c, exact = _c_value(first_real, receptive_field)
        else:
            c, exact = _c_value(real, receptive_field)
        layer["c_value"], layer["c_value_exact"] = (c, c), (exact, exact)
        append(layer)
        previous = name
        for template, kind in ((bn, "bn"), (relu, "relu")) if batch_norm else ((relu, "relu"),):
            layer = template.copy()
            name = f"{prefix}{kind}{position}"
            layer["name"] = name
            layer["inputs"] = (previous,)
            layer["receptive_field"] = rf_pair
            layer["effective_padding"] = padding_pair
            append(layer)
            previous = name
        receptive_field += rf_step
        effective_padding += padding_step
    return previous


def _classifier(
    request: PlanRequest,
    size: tuple[int, int],
    stages: tuple[int, ...],
    channels: int,
    height: int,
    width: int,
    receptive_field: int,
    jump: int,
    effective_padding: int,
    previous: str,
    append: Any,
    text: bool = False,
) -> tuple[int, int]:
    """`network.classifier_layers` evaluated: pool to 6..8, two 5x5 'same' convs + ReLU, global max pool,
    dropout, linear; appends the dicts (JSON text with `text`) when `append` is given; returns (params, FLOPs)."""
    level = "classifier"
    layer, conv = (_layer_json, _conv_json) if text else (_layer, _conv)
    last_side = min(feature_side(size[0], len(stages), request.downsample),
                    feature_side(size[1], len(stages), request.downsample))  # fmt: skip
    pooling = classifier_pooling(last_side)
    if pooling is not None:
        kernel, stride = pooling
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        receptive_field += (kernel - 1) * jump
        jump *= stride
        if append is not None:
            append(
                layer("cls.pool", "maxpool", level, previous, kernel, stride, channels, channels, (height, width),
                       (receptive_field, receptive_field), jump, effective_padding, 0, 0)
            )  # fmt: skip
            previous = "cls.pool"
    params = flops = 0
    out_channels = request.widths.width(len(stages))
    left = (CLASSIFIER_KERNEL - 1) // 2
    same = (left, CLASSIFIER_KERNEL - 1 - left)
    for position in (1, 2):
        jump_in, in_channels = jump, channels
        receptive_field += (CLASSIFIER_KERNEL - 1) * jump
        effective_padding += left * jump
        weights = CLASSIFIER_KERNEL * CLASSIFIER_KERNEL * channels * out_channels
        conv_params, conv_flops = weights + out_channels, 2 * weights * height * width
        params += conv_params
        flops += conv_flops
        channels = out_channels
        if text and append is not None:
            append(_classifier_conv_json(position, previous, in_channels, channels, height, width, receptive_field,
                                         jump, effective_padding, CLASSIFIER_KERNEL * jump_in, conv_params, conv_flops))  # fmt: skip
            previous = f"cls.relu{position}"
        elif append is not None:
            output = (height, width)
            name = f"cls.conv{position}"
            append(
                conv(name, level, previous, CLASSIFIER_KERNEL, 1, same, in_channels, channels, output,
                      receptive_field, jump, effective_padding, CLASSIFIER_KERNEL * jump_in, conv_params, conv_flops,
                      True)
            )  # fmt: skip
            relu = f"cls.relu{position}"
            append(
                layer(relu, "relu", level, name, 1, 1, channels, channels, output,
                       (receptive_field, receptive_field), jump, effective_padding, 0, 0)
            )  # fmt: skip
            previous = relu
    whole = (receptive_field + (height - 1) * jump, receptive_field + (width - 1) * jump)  # the global pool's
    linear_params = channels * request.num_classes + request.num_classes
    linear_flops = 2 * channels * request.num_classes
    if text and append is not None:
        append(_classifier_head_json(previous, channels, request.num_classes, whole, jump, effective_padding,
                                     float(request.dropout), linear_params, linear_flops))  # fmt: skip
    elif append is not None:
        one = (1, 1)
        append(
            layer("cls.global_maxpool", "global_maxpool", level, previous, 1, 1, channels, channels, one, whole,
                   jump, effective_padding, 0, 0)
        )  # fmt: skip
        append(
            layer("cls.dropout", "dropout", level, "cls.global_maxpool", 1, 1, channels, channels, one, whole,
                   jump, effective_padding, 0, 0, float(request.dropout))
        )  # fmt: skip
        append(
            layer("cls.fc", "linear", level, "cls.dropout", 1, 1, channels, request.num_classes, one, whole,
                   jump, effective_padding, linear_params, linear_flops)
        )  # fmt: skip
    return params + linear_params, flops + linear_flops


def _classifier_conv_json(
    position: int,
    previous: str,
    in_channels: int,
    channels: int,
    height: int,
    width: int,
    receptive_field: int,
    jump: int,
    effective_padding: int,
    real: int,
    params: int,
    flops: int,
) -> str:
    """The JSON text of `_conv_json` + `_layer_json` for the classifier's conv `position` (5x5 'same', stride 1,
    bias) and its ReLU, sharing their geometry text (output size, receptive field, jump, effective padding)."""
    common = gcd(real, receptive_field)
    numerator, denominator = real // common, receptive_field // common
    exact = str(numerator) if denominator == 1 else f"{numerator}/{denominator}"
    shown = _c_text(real / receptive_field)
    geometry = (
        f'"output_size":[{height},{width}],"receptive_field":[{receptive_field},{receptive_field}],'
        f'"jump":[{jump},{jump}],"effective_padding":[{effective_padding},{effective_padding}],'
    )
    return (
        f'{{"name":"cls.conv{position}","type":"conv","level":"classifier","inputs":["{previous}"],'
        f'"kernel_size":[5,5],"stride":[1,1],"dilation":[1,1],"padding":[[2,2],[2,2]],"ceil_mode":false,"groups":1,'
        f'"out_channels":{channels},"bias":true,"rate":null,"in_channels":{in_channels},{geometry}'
        f'"real_filter_size":[{real},{real}],"c_value":[{shown},{shown}],"c_value_exact":["{exact}","{exact}"],'
        f'"c_axis":"both","params":{params},"flops":{flops}}},{{"name":"cls.relu{position}","type":"relu",'
        f'"level":"classifier","inputs":["cls.conv{position}"]{_BN_MIDDLE[2:]}"out_channels":{channels},"bias":true,'
        f'"rate":null,"in_channels":{channels},{geometry}"real_filter_size":null,"c_value":null,'
        f'"c_value_exact":null,"c_axis":null,"params":0,"flops":0}}'
    )


def _classifier_head_json(
    previous: str,
    channels: int,
    num_classes: int,
    whole: tuple[int, int],
    jump: int,
    effective_padding: int,
    rate: float,
    params: int,
    flops: int,
) -> str:
    """The JSON text of `_layer_json` for the global max pool, the dropout and the linear layer, sharing their
    geometry text (1x1 output, the global pool's receptive field, jump, effective padding)."""
    geometry = (
        f'"output_size":[1,1],"receptive_field":[{whole[0]},{whole[1]}],"jump":[{jump},{jump}],'
        f'"effective_padding":[{effective_padding},{effective_padding}],"real_filter_size":null,"c_value":null,'
        f'"c_value_exact":null,"c_axis":null,"params":'
    )
    middle = f'{_BN_MIDDLE[2:]}"out_channels":'
    return (
        f'{{"name":"cls.global_maxpool","type":"global_maxpool","level":"classifier","inputs":["{previous}"]'
        f'{middle}{channels},"bias":true,"rate":null,"in_channels":{channels},{geometry}0,"flops":0}},'
        f'{{"name":"cls.dropout","type":"dropout","level":"classifier","inputs":["cls.global_maxpool"]'
        f'{middle}{channels},"bias":true,"rate":{_float_text(rate)},"in_channels":{channels},{geometry}0,"flops":0}},'
        f'{{"name":"cls.fc","type":"linear","level":"classifier","inputs":["cls.dropout"]'
        f'{middle}{num_classes},"bias":true,"rate":null,"in_channels":{channels},{geometry}{params},"flops":{flops}}}'
    )


def _verdict(request: PlanRequest, size: tuple[int, int], t: Fraction, walk: dict[str, Any]) -> tuple[bool, int]:
    """(valid, depth headroom) of the planned chain, as `check_constraints` decides them."""
    limit = receptive_field_limit(size, request.rf_side)
    top_rf, top_jump = walk["top"]
    valid = not walk["below_t"] and top_rf <= limit
    return valid, _headroom(request.kernel_size, top_jump, top_rf, t, limit) if valid else 0


def plan_answer(request: PlanRequest) -> dict[str, Any]:
    """`convert.plan_dict(make_plan(request))`, equal value for value, evaluated stage-wise; raises what
    `make_plan` raises (`InvalidLayerError`, `InfeasiblePlanError`) for the same inputs."""
    layers: list[dict[str, Any]] = []
    return {**_answer_fields(request, layers, text=False), "layers": layers}


def plan_answer_json(request: PlanRequest) -> bytes:
    """`plan_answer` rendered: the same bytes as ``render_json(plan_answer(request))``, with the stages'
    layers written straight from per-stage JSON templates (`_emit_stage_json`) instead of as dicts."""
    parts: list[Any] = []
    head = render_json(_answer_fields(request, parts, text=True))
    return b"".join((head[:-1], b',"layers":[', ",".join(parts).encode(), b"]}"))


def _answer_fields(request: PlanRequest, layers: list[Any], text: bool) -> dict[str, Any]:
    """Every field of `plan_answer` but ``layers``, which the walk appends to `layers` (as JSON text when
    `text`), in the answer's key order."""
    t, size = _check_request(request)
    stage_plan = optimal_stages(size, request.kernel_size, t, request.model, request.downsample, request.rf_side)
    relaxed = _relaxed(size, request.kernel_size, t, request.rf_side)
    _check_network(request.num_classes, request.dropout, request.in_channels)
    walk = _walk(request, size, stage_plan.stages, t, layers, text=text)
    _, headroom = _verdict(request, size, t, walk)
    return {
        "depth": stage_plan.depth,
        "stages": list(stage_plan.stages),
        "top_receptive_field": [walk["top"][0]] * 2,
        "depth_headroom": headroom,
        "relaxed": relaxed,
        "params": walk["params"],
        "flops": walk["flops"],
        "inputs": _inputs(request, size, t),
        **_PLAIN_CHAIN,
    }


def _float_text(value: float) -> str:
    """A float as orjson writes it: Python's shortest repr, except orjson's exponents below 1e-4 (1e-6)."""
    return repr(value) if value >= 1e-4 else render_json(value).decode()


def _layer_json(
    name: str,
    kind: str,
    level: str,
    previous: str,
    kernel_size: int,
    stride: int,
    in_channels: int,
    out_channels: int,
    output_size: tuple[int, int],
    receptive_field: tuple[int, int],
    jump: int,
    effective_padding: int,
    params: int,
    flops: int,
    rate: float | None = None,
) -> str:
    """`_layer` as the JSON text orjson writes for its dict (names and kinds are plain ASCII)."""
    shown = "null" if rate is None else _float_text(rate)
    return (
        f'{{"name":"{name}","type":"{kind}","level":"{level}","inputs":["{previous}"],'
        f'"kernel_size":[{kernel_size},{kernel_size}],"stride":[{stride},{stride}],"dilation":[1,1],'
        f'"padding":[[0,0],[0,0]],"ceil_mode":false,"groups":1,"out_channels":{out_channels},"bias":true,'
        f'"rate":{shown},"in_channels":{in_channels},"output_size":[{output_size[0]},{output_size[1]}],'
        f'"receptive_field":[{receptive_field[0]},{receptive_field[1]}],"jump":[{jump},{jump}],'
        f'"effective_padding":[{effective_padding},{effective_padding}],"real_filter_size":null,"c_value":null,'
        f'"c_value_exact":null,"c_axis":null,"params":{params},"flops":{flops}}}'
    )


def _conv_json(
    name: str,
    level: str,
    previous: str,
    kernel_size: int,
    stride: int,
    padding: tuple[int, int],
    in_channels: int,
    out_channels: int,
    output_size: tuple[int, int],
    receptive_field: int,
    jump: int,
    effective_padding: int,
    real: int,
    params: int,
    flops: int,
    bias: bool,
) -> str:
    """`_conv` as the JSON text orjson writes for its dict."""
    common = gcd(real, receptive_field)
    numerator, denominator = real // common, receptive_field // common
    exact = str(numerator) if denominator == 1 else f"{numerator}/{denominator}"
    shown = _c_text(real / receptive_field)
    pad = f"[{padding[0]},{padding[1]}]"
    return (
        f'{{"name":"{name}","type":"conv","level":"{level}","inputs":["{previous}"],'
        f'"kernel_size":[{kernel_size},{kernel_size}],"stride":[{stride},{stride}],"dilation":[1,1],'
        f'"padding":[{pad},{pad}],"ceil_mode":false,"groups":1,"out_channels":{out_channels},'
        f'"bias":{"true" if bias else "false"},"rate":null,"in_channels":{in_channels},'
        f'"output_size":[{output_size[0]},{output_size[1]}],"receptive_field":[{receptive_field},{receptive_field}],'
        f'"jump":[{jump},{jump}],"effective_padding":[{effective_padding},{effective_padding}],'
        f'"real_filter_size":[{real},{real}],"c_value":[{shown},{shown}],"c_value_exact":["{exact}","{exact}"],'
        f'"c_axis":"both","params":{params},"flops":{flops}}}'
    )


def _c_text(value: float) -> str:
    """round(value, 6) as orjson writes it (`_float_text`) for 0 < value < 10^15: '%.6f' rounds the double to
    6 decimals exactly as `round` does (both are dtoa's correctly rounded mode 3), and the double `round`
    returns has that decimal, trailing zeros stripped, as its shortest repr (a decimal of at most 15 significant
    digits is); below 1e-4, where orjson writes an exponent, the float path answers."""
    if value < 1e-4:
        return _float_text(round(value, C_VALUE_DIGITS))
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text[-1] == "." else text


_BN_MIDDLE = (
    '"],"kernel_size":[1,1],"stride":[1,1],"dilation":[1,1],"padding":[[0,0],[0,0]],"ceil_mode":false,"groups":1,'
)
"""The constant middle of a stage's BN and ReLU layers, from their inputs to their out_channels."""

_CONV_TYPE = '","type":"conv","level":"feature","inputs":["'


def _stage_names(stage: int, batch_norm: bool) -> tuple[str, str, str, str, str, str]:
    """The text pieces of stage `stage`'s layer names (they depend on the stage number and the BN flag only):
    the conv's head up to its position, the input of a conv m >= 2 up to m - 1, the end of a conv up to the
    next layer's position, the BN's type and input up to the position (empty without BN), the ReLU's likewise,
    and the ReLU's name up to its position."""
    p = f"s{stage}."
    if batch_norm:
        return (
            f'{{"name":"{p}conv',
            f"{_CONV_TYPE}{p}relu",
            f'}},{{"name":"{p}bn',
            f'","type":"bn","level":"feature","inputs":["{p}conv',
            f'","type":"relu","level":"feature","inputs":["{p}bn',
            f'{{"name":"{p}relu',
        )
    return (
        f'{{"name":"{p}conv',
        f"{_CONV_TYPE}{p}relu",
        f'}},{{"name":"{p}relu',
        "",
        f'","type":"relu","level":"feature","inputs":["{p}conv',
        f'{{"name":"{p}relu',
    )


_STAGE_NAMES = {flag: tuple(_stage_names(stage, flag) for stage in range(65)) for flag in (False, True)}
"""`_stage_names` of stages 0..64 (a table of constants: stage number and BN flag, nothing of a request)."""


def _emit_stage_json(
    layers: list[Any],
    stage: int,
    count: int,
    previous: str,
    kernel: int,
    same: tuple[int, int],
    in_channels: int,
    channels: int,
    output: tuple[int, int],
    jump: int,
    first_jump_in: int,
    first_stride: int,
    receptive_field: int,
    rf_step: int,
    effective_padding: int,
    padding_step: int,
    first_counts: tuple[int, int],
    counts: tuple[int, int],
    batch_norm: bool,
) -> str:
    """`_emit_stage` writing JSON text, in the key order and spelling orjson gives `_conv`'s and `_layer`'s dicts.

    The layers' name pieces come from a table by stage number (`_STAGE_NAMES`); the stage's other constants
    (kernel, channels, map size, jump, padding, bias, the BN's params) are turned into a few text pieces once
    per stage, the first conv's (stride, input channels, real filter size, counts) and then the others'; per
    position only its number, its receptive field and effective padding (one text, shared by its conv, BN and
    ReLU) and its c-value are written, into one f-string of under 30 parts (one BUILD_STRING, no list and
    join). Every pair is square: the same number twice. No template is parsed at run time: an f-string's
    literal parts are constants of the compiled code."""
    names = _STAGE_NAMES[batch_norm]
    conv_head, relu_input_head, conv_end, bn_input, relu_input, relu_head = (
        names[stage] if stage < len(names) else _stage_names(stage, batch_norm)
    )
    k, ch = kernel, channels
    size = f'"output_size":[{output[0]},{output[1]}],"receptive_field":['
    before = f'"],"kernel_size":[{k},{k}],"stride":['
    after_stride = (
        f'],"dilation":[1,1],"padding":[[{same[0]},{same[1]}],[{same[0]},{same[1]}]],"ceil_mode":false,"groups":1,'
        f'"out_channels":{ch},"bias":{"false" if batch_norm else "true"},"rate":null,"in_channels":'
    )
    geometry_middle = f'],"jump":[{jump},{jump}],"effective_padding":['
    rest = f'{_BN_MIDDLE}"out_channels":{ch},"bias":true,"rate":null,"in_channels":{ch},{size}'
    relu_end = ',"real_filter_size":null,"c_value":null,"c_value_exact":null,"c_axis":null,"params":0,"flops":0}'
    bn_end = (
        f',"real_filter_size":null,"c_value":null,"c_value_exact":null,"c_axis":null,"params":{2 * ch},"flops":0}},'
        f"{relu_head}"
    )
    # the first conv has its own input, stride, input channels, real filter size and counts; the others the stage's
    real = kernel * first_jump_in
    setup_head, source = _CONV_TYPE, previous
    setup = f"{before}{first_stride},{first_stride}{after_stride}{in_channels},{size}"
    real_text = f',"real_filter_size":[{real},{real}],"c_value":['
    counts_text = f'"],"c_axis":"both","params":{first_counts[0]},"flops":{first_counts[1]}{conv_end}'
    r, padding = receptive_field, effective_padding
    append = layers.append
    for position in range(1, count + 1):
        if position == 2:
            real = kernel * jump
            setup_head = relu_input_head
            setup = f"{before}1,1{after_stride}{ch},{size}"
            real_text = f',"real_filter_size":[{real},{real}],"c_value":['
            counts_text = f'"],"c_axis":"both","params":{counts[0]},"flops":{counts[1]}{conv_end}'
        common = gcd(real, r)
        numerator, denominator = real // common, r // common
        exact = str(numerator) if denominator == 1 else f"{numerator}/{denominator}"
        value = real / r  # c, rounded and written as `_c_text` does, inline
        if value >= 1e-4:
            shown = f"{value:.6f}".rstrip("0")
            if shown[-1] == ".":
                shown += "0"
        else:
            shown = _float_text(round(value, C_VALUE_DIGITS))
        m = str(position)
        rf, pd = str(r), str(padding)
        geometry = f"{rf},{rf}{geometry_middle}{pd},{pd}]"
        if batch_norm:
            append(
                f'{conv_head}{m}{setup_head}{source}{setup}{geometry}{real_text}{shown},{shown}],"c_value_exact":["'
                f'{exact}","{exact}{counts_text}{m}{bn_input}{m}{rest}{geometry}{bn_end}{m}{relu_input}{m}'
                f"{rest}{geometry}{relu_end}"
            )
        else:
            append(
                f'{conv_head}{m}{setup_head}{source}{setup}{geometry}{real_text}{shown},{shown}],"c_value_exact":["'
                f'{exact}","{exact}{counts_text}{m}{relu_input}{m}{rest}{geometry}{relu_end}'
            )
        source = m
        r += rf_step
        padding += padding_step
    return f"s{stage}.relu{count}" if count else previous


def plan_summary(request: PlanRequest) -> dict[str, Any]:
    """The summary view of /plan: the fields of `plan_answer` but ``relaxed``, ``inputs`` and ``layers``, plus
    ``valid`` and ``violations`` as /validate's summary reports them for the planned network (a planned chain is
    valid by construction; the flag is computed, not assumed)."""
    t, size = _check_request(request)
    stage_plan = optimal_stages(size, request.kernel_size, t, request.model, request.downsample, request.rf_side)
    _check_network(request.num_classes, request.dropout, request.in_channels)
    violating: list[tuple[str, int, int]] = []
    walk = _walk(request, size, stage_plan.stages, t, None, violating=violating)
    valid, headroom = _verdict(request, size, t, walk)
    violations = [] if valid else _feature_violations(violating, walk["top"][0], stage_plan.stages, size,
                                                      request.rf_side, t)[0]  # fmt: skip
    return {
        "depth": stage_plan.depth,
        "stages": list(stage_plan.stages),
        "top_receptive_field": [walk["top"][0]] * 2,
        "depth_headroom": headroom,
        "valid": valid,
        "violations": violations,
        "params": walk["params"],
        "flops": walk["flops"],
    }


def _violation(constraint: str, layer: str, axis: str, value: Fraction, limit: Fraction) -> dict[str, Any]:
    """A violation as the summary view renders it (`convert.violation_summary`: no prose message)."""
    return {
        "constraint": constraint,
        "layer": layer,
        "axis": axis,
        "value": _number(value.numerator, value.denominator),
        "value_exact": format_fraction(value),
        "limit": _number(limit.numerator, limit.denominator),
        "limit_exact": format_fraction(limit),
    }


def _feature_violations(
    violating: list[tuple[str, int, int]],
    receptive_field: int,
    stages: tuple[int, ...],
    size: tuple[int, int],
    rf_side: str,
    t: Fraction,
) -> tuple[list[dict[str, Any]], str, int, tuple[int, int]]:
    """The summary violations of a planned chain's feature level, whose convs with c < t `_features` listed and
    whose top conv has receptive field `receptive_field` (the constraints check feature-level convs only), and
    (top layer, top axis, per-axis limits).

    Square convs: r_h = r_w = r, growing with every conv (k >= 2), so the last conv is the top on both axes, the
    binding axis of constraint 2 is the one with the smaller limit (height on ties), and every c-value binds on
    both axes (height named, as `binding_axis` breaks ties)."""
    limits = receptive_field_limits(size, rf_side)  # type: ignore[arg-type]
    top_axis = 0 if limits[1] >= limits[0] else 1
    limit = limits[top_axis]
    top = f"s{len(stages)}.conv{stages[-1]}"
    violations = [_violation("c_value", name, "height", Fraction(real, r), t) for name, real, r in violating]
    if receptive_field > limit:
        violations.append(
            _violation("receptive_field", top, AXIS_NAMES[top_axis], Fraction(receptive_field), Fraction(limit))
        )
    return violations, top, top_axis, limits


def chain_summary(
    stages: tuple[int, ...],
    kernel: int,
    downsample: str,
    width: int,
    batch_norm: bool,
    image_size: int | tuple[int, int],
    t: Fraction,
    in_channels: int,
    rf_side: str,
) -> dict[str, Any] | None:
    """The ``view=summary`` /validate answer of a compact chain (`schemas.ChainModel`), evaluated stage-wise:
    equal to ``report_summary_dict(validate_body(...))``; None where the closed form does not apply (1x1
    kernels, which only `include_pointwise` constrains; a pool that would empty the map, where the generic
    analysis raises its own error; more than 60 stages): the caller then takes the generic path."""
    if kernel < 2 or len(stages) > 60:
        return None
    size = normalize_image_size(image_size)
    violating: list[tuple[str, int, int]] = []
    walked = _features(
        kernel, downsample, WidthRule(width, 1, width), batch_norm, in_channels, size, stages, t, None, violating
    )
    if walked["vanished"]:
        return None
    receptive_field, jump = walked["state"][3], walked["state"][4]
    violations, top, top_axis, limits = _feature_violations(violating, receptive_field, stages, size, rf_side, t)
    limit = limits[top_axis]
    return {
        "valid": not violations,
        "violations": violations,
        "top_layer": top,
        "top_receptive_field": (receptive_field, receptive_field),
        "top_axis": AXIS_NAMES[top_axis],
        "receptive_field_limit": limits,
        "rf_side": rf_side,
        "depth": sum(stages),
        "depth_headroom": 0 if violations else _headroom(kernel, jump, receptive_field, t, limit),
        "min_c_value": _number(t.numerator, t.denominator),
        "min_c_value_exact": format_fraction(t),
        "image_size": list(size),
        "params": walked["params"],
        "flops": walked["flops"],
    }


__all__ = ["chain_summary", "plan_answer", "plan_answer_json", "plan_summary"]
