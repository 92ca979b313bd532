"""make_plan: the concrete network (sections 6 and 7), its counts, and its fast analysis path."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnplan.solver import InfeasiblePlanError, PlanRequest, WidthRule, analyse, check_constraints, make_plan
from cnnplan.solver.layers import CLASSIFIER, FEATURE
from cnnplan.solver.network import classifier_pooling, feature_side


@settings(max_examples=120, deadline=None)
@given(
    side=st.integers(min_value=3, max_value=3000),
    other=st.one_of(st.none(), st.integers(min_value=3, max_value=3000)),
    k=st.sampled_from([3, 5, 7]),
    t=st.sampled_from(["1/4", "1/6", "1/8", "2/9"]),
    downsample=st.sampled_from(["maxpool", "avgpool", "conv"]),
    model=st.sampled_from(["exact", "simplified"]),
    batch_norm=st.booleans(),
    rf_side=st.sampled_from(["min", "max"]),
)
def test_fast_path_equals_the_checked_analysis(side, other, k, t, downsample, model, batch_norm, rf_side) -> None:
    """The plan's trusted analysis and arithmetic classifier side equal the general checked path, and
    the plan passes the exact constraints (the exact model always, with no headroom; the simplified
    model unless stride-2 convs downsample, see test_simplified_model_does_not_see_stride_two_convolutions)."""
    image = side if other is None else [side, other]
    request = PlanRequest(image, kernel_size=k, min_c_value=t, downsample=downsample, model=model,
                          batch_norm=batch_norm, rf_side=rf_side)  # fmt: skip
    try:
        plan = make_plan(request)
    except InfeasiblePlanError:  # the image is smaller than one kernel
        assert min(side, other or side) < k
        return
    checked = analyse(plan.layers, image)
    assert checked == plan.report.analysis
    assert check_constraints(checked, Fraction(t), rf_side=rf_side) == plan.report
    if model == "exact":
        assert plan.report.valid and plan.report.depth_headroom == 0
    elif downsample != "conv":
        assert plan.report.valid
    features = [layer for layer in checked.layers if layer.level == FEATURE]
    last = features[-1].output_size
    assert min(last) == min(feature_side(s, len(plan.stages), downsample) for s in checked.image_size)


@pytest.mark.parametrize("z", [8, 18, 36, 64, 224, 1000])
def test_classifier_level(z) -> None:
    """Pool to 6..8 (skipped when <= 8), two 5x5 convs, global max pool, dropout, linear to the classes."""
    plan = make_plan(PlanRequest(z, num_classes=10))
    head = [layer for layer in plan.layer_stats if layer.level == CLASSIFIER]
    kinds = [layer.kind for layer in head]
    tail = ["conv", "relu", "conv", "relu", "global_maxpool", "dropout", "linear"]
    last_feature = [layer for layer in plan.layer_stats if layer.level == FEATURE][-1]
    if max(last_feature.output_size) <= 8:
        assert kinds == tail
    else:
        assert kinds == ["maxpool"] + tail
        assert 6 <= head[0].output_size[0] <= 8
    assert [layer.kernel_size for layer in head if layer.kind == "conv"] == [(5, 5), (5, 5)]
    assert head[-1].out_channels == 10 and head[-1].output_size == (1, 1)


@pytest.mark.parametrize(("side", "expected"), [(8, None), (9, (2, 1)), (14, (2, 2)), (28, (4, 4)), (56, (7, 7))])
def test_classifier_pooling(side, expected) -> None:
    pooling = classifier_pooling(side)
    assert pooling == expected
    if pooling is not None:
        kernel, stride = pooling
        assert (side - kernel) // stride + 1 in (6, 7, 8)


def test_widths_follow_the_rule() -> None:
    plan = make_plan(PlanRequest(1024, widths=WidthRule(base=32, multiplier=2, max_width=128)))
    widths = {}
    for layer in plan.layer_stats:
        if layer.kind == "conv" and layer.level == FEATURE:
            widths.setdefault(layer.name.split(".")[0], set()).add(layer.out_channels)
    assert [widths[f"s{i}"] for i in range(1, len(plan.stages) + 1)] == [{32}, {64}] + [{128}] * (len(plan.stages) - 2)


def test_counts_by_hand_for_a_tiny_plan() -> None:
    """z = 8, k = 3: one stage of 3 convs (r = 7; a 4th would reach 9 > 8), widths 4, no BN."""
    plan = make_plan(PlanRequest(8, widths=WidthRule(base=4), batch_norm=False, num_classes=2, in_channels=1))
    assert plan.stages == (3,)
    convs = (9 * 1 * 4 + 4) + 2 * (9 * 4 * 4 + 4)
    head = 2 * (25 * 4 * 4 + 4) + (4 * 2 + 2)
    assert plan.params == convs + head
    macs = 64 * (9 * 1 * 4 + 2 * 9 * 4 * 4) + 64 * 2 * 25 * 4 * 4 + 4 * 2
    assert plan.flops == 2 * macs


def test_plans_are_deterministic() -> None:
    assert make_plan(PlanRequest(300, downsample="conv")) == make_plan(PlanRequest(300, downsample="conv"))


def test_counts_match_torch() -> None:
    """Parameters and FLOPs equal torch's count and torch.utils.flop_counter on the same network."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    plan = make_plan(PlanRequest(40, widths=WidthRule(base=8, max_width=16), num_classes=5))
    modules = []
    channels = 3
    for layer in plan.layer_stats:
        if layer.kind == "conv":
            modules.append(torch.nn.Conv2d(channels, layer.out_channels, layer.kernel_size, layer.stride,
                                           padding=layer.padding[0], bias=plan.layers[layer.index].bias))  # fmt: skip
        elif layer.kind == "bn":
            modules.append(torch.nn.BatchNorm2d(channels))
        elif layer.kind == "relu":
            modules.append(torch.nn.ReLU())
        elif layer.kind == "maxpool":
            modules.append(torch.nn.MaxPool2d(layer.kernel_size, layer.stride))
        elif layer.kind == "global_maxpool":
            modules += [torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten()]
        elif layer.kind == "dropout":
            modules.append(torch.nn.Dropout(0.5))
        elif layer.kind == "linear":
            modules.append(torch.nn.Linear(channels, layer.out_channels))
        channels = layer.out_channels
    network = torch.nn.Sequential(*modules).eval()
    assert sum(p.numel() for p in network.parameters()) == plan.params
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        output = network(torch.zeros(1, 3, 40, 40))
    assert output.shape == (1, 5)
    assert counter.get_total_flops() == plan.flops
