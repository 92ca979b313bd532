"""Hypothesis properties of the exact analysis on random chains and random graphs with merges."""

from __future__ import annotations

from fractions import Fraction
from functools import cache

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from cnnplan.solver import (
    Layer,
    PlanRequest,
    SolverError,
    VanishingFeatureMapError,
    WidthRule,
    analyse,
    make_plan,
    plan_stages,
    relaxed_optimum,
    validate,
)
from cnnplan.solver.analysis import analyse_chain
from cnnplan.solver.arithmetic import effective_kernel, padding_pair
from cnnplan.solver.layers import INPUT, as_graph

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MERGE_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def windowed_layers(draw, same_padding: bool = False, stride: int | None = None) -> Layer:
    """A conv or pool with stride <= effective kernel (so that no input pixel is skipped)."""
    kind = draw(st.sampled_from(["conv", "conv", "maxpool", "avgpool"]))
    kernel = draw(st.integers(min_value=1, max_value=7))
    dilation = draw(st.integers(min_value=1, max_value=3)) if kind == "conv" else 1
    kernel_effective = effective_kernel(kernel, dilation)
    if stride is None:
        stride = draw(st.integers(min_value=1, max_value=min(3, kernel_effective)))
    padding = "same" if same_padding else draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 3)))
    out_channels = 4 if kind == "conv" else None
    return Layer(
        kind=kind, kernel_size=kernel, stride=stride, dilation=dilation, padding=padding, out_channels=out_channels
    )


elementwise_layers = st.sampled_from([Layer(kind="relu"), Layer(kind="bn"), Layer(kind="dropout", rate=0.5)])
chains = st.lists(st.one_of(windowed_layers(), windowed_layers(), elementwise_layers), min_size=1, max_size=12)


def _analyse_or_reject(layers, image_size):
    try:
        return analyse(layers, image_size, in_channels=4)
    except VanishingFeatureMapError:
        reject()


@PROPERTY_SETTINGS
@given(layers=chains, side=st.integers(min_value=1, max_value=300))
def test_chain_invariants(layers, side) -> None:
    """r >= jump, 0 < c <= 1, and r, jump and P never decrease along a chain."""
    analysis = _analyse_or_reject(layers, side)
    for include_pointwise in (False, True):  # diagnostics of every violation can be built
        report = validate(layers, side, "1/4", in_channels=4, include_pointwise=include_pointwise)
        assert all(v.message and v.value < v.limit if v.constraint == "c_value" else v.value > v.limit
                   for v in report.violations)  # fmt: skip
    previous = (1, 1, 0)
    for layer in analysis.layers:
        # square layers: both axes agree, and each obeys the scalar invariants
        for field in ("receptive_field", "jump", "effective_padding", "jump_in", "kernel_size", "dilation"):
            assert getattr(layer, field)[0] == getattr(layer, field)[1]
        r, j, p = layer.receptive_field[0], layer.jump[0], layer.effective_padding[0]
        assert r >= j >= 1
        if layer.kind == "conv":
            assert 0 < layer.c_value[0] <= 1 and layer.c_value[0] == layer.c_value[1]
            real_filter_size = effective_kernel(layer.kernel_size[0], layer.dilation[0]) * layer.jump_in[0]
            assert layer.c_value[0] == Fraction(real_filter_size, r)
        current = (r, j, p)
        assert all(now >= before for now, before in zip(current, previous))
        previous = current


def test_a_pointwise_stride_two_conv_is_the_reason_for_stride_at_most_kernel() -> None:
    """With stride > effective kernel pixels are skipped and r < jump is real (r=1, j=2 for 1x1/2)."""
    layer = analyse([Layer(kind="conv", kernel_size=1, stride=2)], 8).layers[0]
    assert (layer.receptive_field, layer.jump) == ((1, 1), (2, 2))


@PROPERTY_SETTINGS
@given(layers=chains, height=st.integers(min_value=1, max_value=300), width=st.integers(min_value=1, max_value=300))
def test_rectangular_images_have_the_square_receptive_fields(layers, height, width) -> None:
    """r, jump and P do not depend on the image; each output side is that of the square of that side."""
    rectangular = _analyse_or_reject(layers, [height, width])
    tall, wide = analyse(layers, height, in_channels=4), analyse(layers, width, in_channels=4)
    for rect, by_height, by_width in zip(rectangular.layers, tall.layers, wide.layers):

        def fields(s):
            return (s.receptive_field, s.jump, s.effective_padding, s.c_value)

        assert fields(rect) == fields(by_height) == fields(by_width)
        assert rect.output_size == (by_height.output_size[0], by_width.output_size[1])


@PROPERTY_SETTINGS
@given(layers=chains, side=st.integers(min_value=1, max_value=300))
def test_analyse_chain_is_analyse_without_the_checks(layers, side) -> None:
    analysis = _analyse_or_reject(layers, side)
    chain = analyse_chain(layers, side, in_channels=4)
    assert (chain.layers, chain.image_size, chain.in_channels) == (analysis.layers, analysis.image_size, 4)
    assert as_graph(chain.nodes) == analysis.nodes  # the layers as given, named the same way


@st.composite
def graphs_with_merges(draw) -> list[Layer]:
    """A trunk of random layers with merge blocks: 2-3 branches from one node, each a 'same'-padded
    sequence whose strides multiply to a common S in {1, 2} (so jumps and sizes align), joined by
    add or concat; at most one branch is the identity shortcut."""
    layers: list[Layer] = []
    current = INPUT
    counter = 0

    def add(layer: Layer, inputs: tuple[str, ...]) -> str:
        nonlocal counter
        counter += 1
        name = f"n{counter}"
        layers.append(Layer(**{**layer.__dict__, "name": name, "inputs": inputs}))
        return name

    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        for layer in draw(st.lists(windowed_layers(same_padding=True, stride=1), max_size=2)):
            current = add(layer, (current,))
        stride = draw(st.sampled_from([1, 2]))
        branch_count = draw(st.integers(min_value=2, max_value=3))
        ends = []
        for branch in range(branch_count):
            length = draw(st.integers(min_value=0 if branch == 0 and stride == 1 else 1, max_value=3))
            strided = draw(st.integers(min_value=0, max_value=max(0, length - 1)))
            end = current
            for position in range(length):
                layer = draw(windowed_layers(same_padding=True, stride=stride if position == strided else 1))
                if layer.kind != "conv" and stride == 2 and position == strided and layer.kernel_size < 2:
                    layer = Layer(**{**layer.__dict__, "kernel_size": 2})
                end = add(layer, (end,))
            ends.append(end)
        kind = draw(st.sampled_from(["add", "concat"])) if all(e != INPUT for e in ends) else "concat"
        current = add(Layer(kind=kind), tuple(ends))
        if kind == "concat":  # bring the channels back to 4 so later adds stay aligned
            current = add(Layer(kind="conv", kernel_size=1, out_channels=4), (current,))
    return layers


def _pixel_span(nodes: tuple[Layer, ...], name: str, unit: int) -> tuple[int, int]:
    """(first, last) input pixel that output `unit` of node `name` depends on, by brute force over the
    infinitely extended image (padding positions count as pixels, as in the receptive-field tables)."""
    by_name = {node.name: node for node in nodes}

    @cache
    def pixels(node_name: str, position: int) -> frozenset[int]:
        if node_name == INPUT:
            return frozenset({position})
        node = by_name[node_name]
        if node.kind in ("add", "concat"):
            return frozenset().union(*(pixels(source, position) for source in node.inputs))
        (source,) = node.inputs
        if node.kind in ("conv", "maxpool", "avgpool"):
            kernel_effective = effective_kernel(node.kernel_size, node.dilation)
            left, _ = padding_pair(node.padding, kernel_effective)
            start = position * node.effective_stride - left
            taps = range(start, start + kernel_effective, node.dilation)
            return frozenset().union(*(pixels(source, tap) for tap in taps))
        return pixels(source, position)

    covered = pixels(name, unit)
    return min(covered), max(covered)


@MERGE_SETTINGS
@given(layers=graphs_with_merges(), side=st.integers(min_value=16, max_value=64))
def test_merge_rule_is_the_union_of_pixel_ranges(layers, side) -> None:
    """At every node: P = -first pixel of unit 0, r = its span, jump = shift from unit 0 to unit 1;
    at merges this checks r = max(r_i - P_i) + max P_i and P = max P_i against the real union."""
    analysis = _analyse_or_reject(layers, side)
    nodes = as_graph(layers)
    for stats in analysis.layers:
        first, last = _pixel_span(nodes, stats.name, 0)
        assert ((-first,) * 2, (last - first + 1,) * 2) == (stats.effective_padding, stats.receptive_field), stats.name
        assert (_pixel_span(nodes, stats.name, 1)[0] - first,) * 2 == stats.jump, stats.name


# ---- bad input never escapes as anything but SolverError --------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["conv", "maxpool", "add", "concat", "same", "valid", "input", "1/6", "feature", "classifier"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
layer_keys = st.sampled_from(
    ["type", "kind", "kernel_size", "stride", "dilation", "padding", "groups", "out_channels", "name", "level",
     "inputs", "bias", "rate", "bogus"]
)  # fmt: skip
layer_dicts = st.dictionaries(layer_keys, json_values, max_size=6).map(lambda d: {"type": "conv", **d})
architectures = st.one_of(st.lists(st.one_of(layer_dicts, json_values), max_size=5), json_values)


@settings(max_examples=400, deadline=None)
@given(
    architecture=architectures,
    image_size=json_values,
    min_c_value=json_values,
    in_channels=json_values,
    include_pointwise=st.booleans(),
)
def test_bad_input_raises_only_solver_errors(
    architecture, image_size, min_c_value, in_channels, include_pointwise
) -> None:
    try:
        validate(architecture, image_size, min_c_value, in_channels=in_channels, include_pointwise=include_pointwise)
    except SolverError as error:
        assert isinstance(error.field, str) and error.field and error.reason
    if isinstance(architecture, list):  # the same fields given as Layer objects, bypassing the dict parser
        layers = [_as_layer(item) for item in architecture]
        try:
            validate(layers, 32, include_pointwise=include_pointwise)
        except SolverError as error:
            assert isinstance(error.field, str) and error.field and error.reason


def _as_layer(item):
    """A dict of Layer fields (``type`` read as ``kind``) as a `Layer` built without the dict parser."""
    if not isinstance(item, dict) or "type" not in item:
        return item
    fields = {("kind" if key == "type" else key): value for key, value in item.items() if key != "kind"}
    if not set(fields) <= set(Layer.__dataclass_fields__):
        return item
    return Layer(**fields)


@settings(max_examples=300, deadline=None)
@given(
    corrupt=st.lists(
        st.tuples(st.sampled_from(["conv", "pool", "relu", "add"]), layer_keys, json_values), min_size=1, max_size=2
    )
)
def test_one_bad_field_in_a_valid_graph_raises_only_solver_errors(corrupt) -> None:
    """A valid residual graph with one or two fields replaced by arbitrary JSON values."""
    layers = [
        {"type": "conv", "name": "conv", "kernel_size": 3, "padding": 1, "out_channels": 3},
        {"type": "maxpool", "name": "pool", "kernel_size": 2, "inputs": ["conv"]},
        {"type": "relu", "name": "relu", "inputs": ["input"]},
        {"type": "add", "name": "add", "inputs": ["conv", "relu"]},
    ]
    index = {"conv": 0, "pool": 1, "relu": 2, "add": 3}
    for target, key, value in corrupt:
        layers[index[target]][key] = value
    try:
        validate(layers, 32)
    except SolverError as error:
        assert error.field.startswith("layers") and error.reason


PLAN_FIELDS = ["image_size", "kernel_size", "min_c_value", "model", "downsample", "in_channels", "num_classes",
               "dropout", "widths", "batch_norm", "rf_side"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(PLAN_FIELDS), value=json_values, widths=st.tuples(json_values, json_values, json_values))
def test_one_bad_plan_field_raises_only_solver_errors(field, value, widths) -> None:
    """A valid plan request with one field replaced by an arbitrary JSON value (or a bad width rule)."""
    request = {"image_size": 64, field: value}
    try:
        make_plan(PlanRequest(**request))
    except SolverError as error:
        assert error.field and error.reason
    try:
        WidthRule(*widths)
    except SolverError as error:
        assert error.field.startswith("widths.")
    if field in ("image_size", "kernel_size", "min_c_value", "model", "downsample", "rf_side"):
        try:
            plan_stages(**{"image_size": 64, field: value})
        except SolverError as error:
            assert error.field and error.reason
    if field in ("image_size", "kernel_size", "min_c_value", "rf_side"):
        try:
            relaxed_optimum(**{"image_size": 64, field: value})
        except SolverError as error:
            assert error.field and error.reason
