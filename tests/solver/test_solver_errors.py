"""Every error path of issue 2 item 5: one typed error naming the field or node and the reason."""

from __future__ import annotations

import pytest

from cnnplan.solver import (
    GraphStructureError,
    InfeasiblePlanError,
    InvalidLayerError,
    Layer,
    LimitExceededError,
    MisalignedMergeError,
    PlanRequest,
    SolverError,
    VanishingFeatureMapError,
    WidthRule,
    analyse,
    make_plan,
    parse_min_c_value,
    plan_stages,
    validate,
)
from cnnplan.solver.limits import MAX_FAN_IN, MAX_IMAGE_SIDE, MAX_LAYERS


def _raises(error_type, field, call, *args, **kwargs):
    with pytest.raises(error_type) as caught:
        call(*args, **kwargs)
    error = caught.value
    assert type(error) is error_type
    assert error.field == field, error
    assert error.reason and error.code
    assert str(error) == f"{field}: {error.reason}"
    return error


CONV = {"type": "conv", "kernel_size": 3, "padding": 1, "out_channels": 4}


def test_unknown_layer_kind() -> None:
    error = _raises(InvalidLayerError, "layers[1].type", validate, [CONV, {"type": "conv3d"}], 32)
    assert "conv3d" in error.reason and "maxpool" in error.reason
    _raises(InvalidLayerError, "layers[0].type", validate, [{"kernel_size": 3}], 32)
    _raises(InvalidLayerError, "layers[0].type", analyse, [Layer(kind="Conv")], 32)


def test_unknown_layer_field_and_non_object_layers() -> None:
    _raises(InvalidLayerError, "layers[0].kernel", validate, [{"type": "conv", "kernel": 3}], 32)
    _raises(InvalidLayerError, "layers[0]", validate, ["conv"], 32)
    _raises(InvalidLayerError, "layers", validate, [], 32)
    _raises(InvalidLayerError, "layers", validate, "conv", 32)
    _raises(InvalidLayerError, "layers", validate, {"type": "conv"}, 32)


def test_cycle_names_a_node_on_it() -> None:
    graph = [
        {**CONV, "name": "a", "inputs": ["c"]},
        {**CONV, "name": "b", "inputs": ["a"]},
        {**CONV, "name": "c", "inputs": ["b"]},
    ]
    error = _raises(GraphStructureError, "layers[0].inputs", validate, graph, 32)
    assert "cycle" in error.reason and "'a'" in error.reason


def test_self_loop() -> None:
    _raises(GraphStructureError, "layers[0].inputs[0]", validate, [{**CONV, "name": "a", "inputs": ["a"]}], 32)


def test_dangling_input() -> None:
    graph = [{**CONV, "name": "a"}, {"type": "add", "name": "b", "inputs": ["a", "ghost"]}]
    error = _raises(GraphStructureError, "layers[1].inputs[1]", validate, graph, 32)
    assert "ghost" in error.reason


def test_duplicate_names() -> None:
    error = _raises(GraphStructureError, "layers[1].name", validate, [{**CONV, "name": "a"}, {**CONV, "name": "a"}], 32)
    assert "duplicate" in error.reason
    _raises(GraphStructureError, "layers[0].name", validate, [{**CONV, "name": "input"}], 32)


def test_wrong_input_counts() -> None:
    _raises(GraphStructureError, "layers[1].inputs", validate, [CONV, {"type": "add", "inputs": ["conv0"]}], 32)
    _raises(GraphStructureError, "layers[0].inputs", validate, [{**CONV, "inputs": ["input", "input"]}], 32)
    _raises(
        GraphStructureError, "layers[1].inputs", validate, [CONV, {"type": "add", "inputs": ["conv0", "conv0"]}], 32
    )
    _raises(InvalidLayerError, "layers[0].inputs", validate, [{**CONV, "inputs": "input"}], 32)
    _raises(InvalidLayerError, "layers[0].inputs", validate, [Layer(kind="relu", inputs=5)], 32)
    _raises(GraphStructureError, "layers[0].inputs[0]", validate, [{**CONV, "inputs": [""]}], 32)
    many = [{**CONV, "name": f"c{i}", "inputs": ["input"]} for i in range(MAX_FAN_IN + 1)]
    merge = {"type": "concat", "inputs": [layer["name"] for layer in many]}
    _raises(LimitExceededError, f"layers[{MAX_FAN_IN + 1}].inputs", validate, many + [merge], 32)


def test_misaligned_merges() -> None:
    strided = [
        {**CONV, "name": "a"},
        {**CONV, "name": "b", "stride": 2, "inputs": ["input"]},
        {"type": "add", "name": "m", "inputs": ["a", "b"]},
    ]
    error = _raises(MisalignedMergeError, "layers[2].inputs", validate, strided, 32)
    assert "jumps [1, 2]" in error.reason
    sizes = [
        {**CONV, "name": "a"},
        {"type": "conv", "kernel_size": 3, "out_channels": 4, "name": "b", "inputs": ["input"]},
        {"type": "concat", "name": "m", "inputs": ["a", "b"]},
    ]
    error = _raises(MisalignedMergeError, "layers[2].inputs", validate, sizes, 32)
    assert "30x30" in error.reason and "32x32" in error.reason
    channels = [{**CONV, "name": "a"}, {**CONV, "name": "b", "out_channels": 8, "inputs": ["input"]},
                {"type": "add", "name": "m", "inputs": ["a", "b"]}]  # fmt: skip
    _raises(MisalignedMergeError, "layers[2].inputs", validate, channels, 32)


@pytest.mark.parametrize(
    ("key", "value", "error_type"),
    [
        ("kernel_size", 0, InvalidLayerError),
        ("kernel_size", -3, InvalidLayerError),
        ("kernel_size", 2.5, InvalidLayerError),
        ("kernel_size", True, InvalidLayerError),
        ("kernel_size", 5000, LimitExceededError),
        ("stride", 0, InvalidLayerError),
        ("dilation", 0, InvalidLayerError),
        ("padding", -1, InvalidLayerError),
        ("padding", "SAME", InvalidLayerError),
        ("out_channels", 0, InvalidLayerError),
        ("groups", 0, InvalidLayerError),
        ("groups", 3, InvalidLayerError),
        ("level", "head", InvalidLayerError),
        ("bias", "yes", InvalidLayerError),
        ("rate", 0.5, InvalidLayerError),
    ],
)
def test_non_positive_and_out_of_range_layer_parameters(key, value, error_type) -> None:
    _raises(error_type, f"layers[0].{key}", validate, [{**CONV, key: value}], 32)


@pytest.mark.parametrize(
    ("image_size", "field", "error_type"),
    [
        (0, "image_size", InvalidLayerError),
        (-5, "image_size", InvalidLayerError),
        ([32, 0], "image_size[1]", InvalidLayerError),
        ([32, 32, 3], "image_size", InvalidLayerError),
        ("224", "image_size", InvalidLayerError),
        (True, "image_size", InvalidLayerError),
        (MAX_IMAGE_SIDE + 1, "image_size", LimitExceededError),
        ([8, MAX_IMAGE_SIDE + 1], "image_size[1]", LimitExceededError),
    ],
)
def test_bad_image_sizes(image_size, field, error_type) -> None:
    _raises(error_type, field, validate, [CONV], image_size)


def test_largest_accepted_side() -> None:
    report = validate([{"type": "maxpool", "kernel_size": 2}], [2, MAX_IMAGE_SIDE])
    assert report.analysis.layers[0].output_size == (1, MAX_IMAGE_SIDE // 2)
    assert validate([CONV], MAX_IMAGE_SIDE).analysis.layers[0].output_size == (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE)


def test_vanishing_feature_map() -> None:
    error = _raises(VanishingFeatureMapError, "layers[1]", validate, [CONV, {"type": "conv", "kernel_size": 5}], 3)
    assert "3x3" in error.reason and "-1x-1" in error.reason
    _raises(VanishingFeatureMapError, "layers[0]", validate, [{"type": "maxpool", "kernel_size": 2}], [1, 64])


def test_layer_count_limit() -> None:
    relu = Layer(kind="relu")
    assert len(validate([relu] * MAX_LAYERS, 8).analysis.layers) == MAX_LAYERS
    error = _raises(LimitExceededError, "layers", validate, [relu] * (MAX_LAYERS + 1), 8)
    assert str(MAX_LAYERS) in error.reason


def test_bad_channels_and_min_c_value() -> None:
    _raises(InvalidLayerError, "in_channels", validate, [CONV], 32, in_channels=0)
    for bad in ("abc", "1/0", 0, -0.5, 2, "7/6", True, float("nan"), float("inf"), [1, 6], "1/1000001"):
        _raises(SolverError, "min_c_value", parse_min_c_value, bad)
        _raises(SolverError, "min_c_value", validate, [CONV], 32, min_c_value=bad)
    _raises(SolverError, "rf_side", validate, [CONV], 32, rf_side="mean")


def test_planner_errors() -> None:
    _raises(InvalidLayerError, "kernel_size", plan_stages, 224, 4)
    _raises(InvalidLayerError, "kernel_size", plan_stages, 224, 33)
    _raises(InvalidLayerError, "model", plan_stages, 224, model="greedy")
    _raises(InvalidLayerError, "downsample", plan_stages, 224, downsample="stride")
    _raises(InvalidLayerError, "min_c_value", plan_stages, 224, min_c_value="1/65")
    error = _raises(InfeasiblePlanError, "image_size", plan_stages, 2)
    assert "2x2" in error.reason
    _raises(InfeasiblePlanError, "image_size", plan_stages, [2, 500], 3)
    _raises(LimitExceededError, "image_size", plan_stages, MAX_IMAGE_SIDE + 1)
    _raises(InvalidLayerError, "widths.base", WidthRule, 0)
    _raises(InvalidLayerError, "widths.max_width", WidthRule, 64, 2, 32)
    _raises(InvalidLayerError, "num_classes", make_plan, PlanRequest(64, num_classes=0))
    _raises(InvalidLayerError, "dropout", make_plan, PlanRequest(64, dropout=1.0))
    _raises(InvalidLayerError, "widths", make_plan, PlanRequest(64, widths={"base": 8}))
    _raises(InvalidLayerError, "in_channels", make_plan, PlanRequest(64, in_channels=0))


def test_error_codes_are_distinct() -> None:
    classes = [InvalidLayerError, GraphStructureError, MisalignedMergeError, VanishingFeatureMapError,
               LimitExceededError, InfeasiblePlanError]  # fmt: skip
    assert len({cls.code for cls in classes}) == len(classes)
    assert all(issubclass(cls, SolverError) and issubclass(cls, ValueError) for cls in classes)


def test_jump_limit_keeps_integers_small() -> None:
    """Padded stride chains never vanish, so the jump (product of strides) is capped at 2^64."""
    strided = [{"type": "conv", "kernel_size": 1, "stride": 1024}] * 7  # 1024^7 = 2^70
    error = _raises(LimitExceededError, "layers[6].stride", validate, strided, 1)
    assert "2^64" in error.reason
    assert validate(strided[:6], 1).analysis.layers[-1].jump == (2**60, 2**60)
