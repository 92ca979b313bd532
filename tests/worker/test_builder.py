"""The builder's modules match the solver's analytic parameter and FLOP counts exactly."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnplan.service.worker.builder import build_model
from cnnplan.solver import PlanRequest, WidthRule, make_plan
from cnnplan.solver.layers import Layer

SMALL = WidthRule(base=4, multiplier=2, max_width=16)


def measured(model: torch.nn.Module, image_size: tuple[int, int], in_channels: int = 3) -> tuple[int, int, torch.Size]:
    """(parameters, FLOPs of one image, output shape of a batch of 2) measured by torch itself."""
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, in_channels, *image_size))
    with torch.no_grad():
        shape = model(torch.zeros(2, in_channels, *image_size)).shape
    return params, counter.get_total_flops(), shape


@pytest.mark.parametrize(
    "request_",
    [
        PlanRequest(image_size=32, widths=SMALL, num_classes=10),
        PlanRequest(image_size=(24, 40), widths=SMALL, num_classes=7, downsample="avgpool"),
        PlanRequest(image_size=36, widths=SMALL, num_classes=5, downsample="conv", batch_norm=False),
        PlanRequest(image_size=50, kernel_size=5, widths=SMALL, num_classes=3),
        PlanRequest(image_size=(9, 20), widths=SMALL, num_classes=4, in_channels=1),
    ],
    ids=["square", "rectangular-avgpool", "conv-downsample-no-bn", "kernel5", "small-rectangular-1ch"],
)
def test_plan_module_matches_solver_counts(request_: PlanRequest) -> None:
    plan = make_plan(request_)
    model, analysis = build_model(plan.layers, plan.image_size, request_.in_channels)
    assert analysis.params == plan.params and analysis.flops == plan.flops
    params, flops, shape = measured(model, plan.image_size, request_.in_channels)
    assert params == plan.params
    assert flops == plan.flops
    assert tuple(shape) == (2, request_.num_classes)


def test_graph_with_merges_even_kernels_and_dilation() -> None:
    """Residual add, concat, an even 'same' kernel, dilated and padded pools, a global avg pool."""
    graph = [
        Layer(kind="conv", kernel_size=3, padding="same", out_channels=6, name="stem"),
        Layer(kind="conv", kernel_size=2, padding="same", out_channels=6, name="even", inputs=("stem",)),
        Layer(kind="bn", name="even_bn"),
        Layer(kind="add", name="sum", inputs=("stem", "even_bn")),
        Layer(
            kind="conv",
            kernel_size=3,
            dilation=2,
            padding="same",
            out_channels=4,
            groups=2,
            name="dil",
            inputs=("sum",),
        ),
        Layer(kind="concat", name="cat", inputs=("sum", "dil")),
        Layer(kind="maxpool", kernel_size=3, stride=2, padding=1, name="mp"),
        Layer(kind="avgpool", kernel_size=2, stride=1, dilation=2, padding="same", name="ap"),
        Layer(kind="relu", name="r"),
        Layer(kind="global_avgpool", name="gap"),
        Layer(kind="dropout", rate=0.1, name="drop"),
        Layer(kind="linear", out_channels=5, name="fc"),
    ]
    model, analysis = build_model(graph, (15, 22))
    params, flops, shape = measured(model, (15, 22))
    assert (params, flops) == (analysis.params, analysis.flops)
    assert analysis.flops > 0 and tuple(shape) == (2, 5)


def test_linear_on_a_spatial_map_flattens_it() -> None:
    graph = [
        Layer(kind="conv", kernel_size=3, stride=2, padding="valid", out_channels=3),
        Layer(kind="linear", out_channels=11, bias=False),
    ]
    model, analysis = build_model(graph, (9, 13), in_channels=2)
    params, flops, shape = measured(model, (9, 13), in_channels=2)
    assert (params, flops) == (analysis.params, analysis.flops) and tuple(shape) == (2, 11)


def test_presets_match_solver_counts() -> None:
    from cnnplan.solver.presets import preset, preset_info

    for name in ("alexnet", "resnet18", "mobilenet_v1"):
        size = preset_info(name)["default_image_size"]
        model, analysis = build_model(preset(name), size)  # full-size networks: counted, not timed
        params, flops, shape = measured(model, (size, size))
        assert (params, flops) == (analysis.params, analysis.flops), name
        assert shape[0] == 2


def test_every_accepted_plan_gives_batch_by_classes_and_exact_counts() -> None:
    """Hypothesis: random (rectangular) image sizes and plan options the planner accepts."""
    from hypothesis import assume, given, settings
    from hypothesis import strategies as st

    from cnnplan.solver.errors import SolverError

    @settings(max_examples=15, deadline=None)
    @given(
        height=st.integers(1, 80), width=st.integers(1, 80), kernel=st.sampled_from([3, 5]),
        downsample=st.sampled_from(["maxpool", "avgpool", "conv"]), classes=st.integers(1, 12),
        batch_norm=st.booleans(), model=st.sampled_from(["exact", "simplified"]),
    )  # fmt: skip
    def check(
        height: int, width: int, kernel: int, downsample: str, classes: int, batch_norm: bool, model: str
    ) -> None:
        request = PlanRequest(
            image_size=(height, width), kernel_size=kernel, downsample=downsample, num_classes=classes,
            batch_norm=batch_norm, model=model, widths=WidthRule(base=2, multiplier=2, max_width=4),
        )  # fmt: skip
        try:
            plan = make_plan(request)
        except SolverError:
            assume(False)
        model_, _ = build_model(plan.layers, plan.image_size)
        params, flops, shape = measured(model_, plan.image_size)
        assert (params, flops, tuple(shape)) == (plan.params, plan.flops, (2, classes))

    check()


def test_per_axis_layers_build_with_the_analysed_sizes_and_counts() -> None:
    """1x7 / 7x1 kernels, per-axis strides and dilations, asymmetric and TF SAME pads, ceil_mode pools (with
    and without native padding): every module's output has the analysed size; parameters and FLOPs match."""
    graph = [
        {"type": "conv", "kernel_size": [1, 7], "stride": [1, 2], "padding": [[0, 1], [2, 3]], "out_channels": 4},
        {"type": "conv", "kernel_size": [7, 1], "padding": "same_upper", "stride": 2, "out_channels": 4},
        {"type": "maxpool", "kernel_size": [3, 2], "stride": 2, "ceil_mode": True},
        {"type": "avgpool", "kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True},
        {"type": "maxpool", "kernel_size": 3, "stride": 2, "padding": [[0, 1], [1, 0]]},
        {"type": "conv", "kernel_size": 3, "dilation": [1, 2], "padding": [1, 2], "out_channels": 5},
    ]
    module, analysis = build_model(graph, [61, 50])
    x = torch.zeros(2, 3, 61, 50)
    for stats, layer in zip(analysis.layers, module.nodes):
        x = layer(x)
        assert tuple(x.shape[-2:]) == stats.output_size, stats.name
    assert sum(p.numel() for p in module.parameters()) == analysis.params
    with FlopCounterMode(display=False) as counter:
        module(torch.zeros(1, 3, 61, 50))
    assert counter.get_total_flops() == analysis.flops
