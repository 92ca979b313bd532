"""Block styles, the stem and width budgets (issue 15): the planner equals exhaustive search within every
style, the planned graphs validate through the full graph analysis, and budgets pick the widest rule.

The brute force (`styled_optimum` in solver_oracles.py) walks every block layer by layer (its 1x1
convs, its shortcut and the ``add`` merge by the union of docs/theory.md#layer-arithmetic) with
`cnnplan.solver.arithmetic`, never with the planner's closed forms. CI runs every z <= 64 and every
fourth z above; ``CNNPLAN_FULL_GRID=1`` runs every z <= 300 (3 min 11 s on the shared 2-core machine).
"""

from __future__ import annotations

import os
from fractions import Fraction

import pytest
from solver_oracles import styled_optimum

from cnnplan.solver import (
    InfeasiblePlanError,
    InvalidLayerError,
    LimitExceededError,
    PlanRequest,
    VanishingFeatureMapError,
    WidthRule,
    make_plan,
    plan_stages,
    validate,
)
from cnnplan.solver.budget import network_counts
from cnnplan.solver.layers import as_graph
from cnnplan.solver.plan import network_for_stages

BLOCKS = ["plain", "basic", "bottleneck", "inverted_residual"]
STEMS = ["none", "conv", "conv_pool"]
KERNELS = [3, 5]
MIN_C_VALUES = [Fraction(1, 4), Fraction(1, 6), Fraction(1, 8)]
MAX_Z = 300
FULL_GRID = os.environ.get("CNNPLAN_FULL_GRID") == "1"
SMALL = WidthRule(base=4, multiplier=2, max_width=16)


def _grid() -> list[int]:
    return list(range(1, MAX_Z + 1)) if FULL_GRID else [*range(1, 65), *range(65, MAX_Z + 1, 4)]


def _planned(z, k, t, downsample, block, stem):
    try:
        plan = plan_stages(z, k, t, downsample=downsample, block=block, stem=stem)
    except InfeasiblePlanError as error:
        assert error.field == "image_size"
        return None
    assert plan.depth == sum(plan.stages)
    return plan.stages, plan.top_receptive_field


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("block", BLOCKS)
def test_styled_planner_equals_exhaustive_search(block, stem) -> None:
    """k in {3, 5}, t in {1/4, 1/6, 1/8}, all three downsampling variants (the two pools share one
    arithmetic: one search serves both), with the tie-break depth, top r, fewer stages, lexicographic."""
    for k in KERNELS:
        for t in MIN_C_VALUES:
            for z in _grid():
                pooled = styled_optimum(z, k, t, "maxpool", block, stem)
                assert _planned(z, k, t, "maxpool", block, stem) == pooled, (k, t, z)
                assert _planned(z, k, t, "avgpool", block, stem) == pooled, (k, t, z)
                assert _planned(z, k, t, "conv", block, stem) == styled_optimum(z, k, t, "conv", block, stem), (k, t, z)


def test_basic_stages_come_in_pairs_and_the_worked_example_changes() -> None:
    """z = 36 (k = 3, t = 1/6): plain (7, 5); basic blocks hold two convs, so the best even split is (6, 4)
    ... or deeper with more stages; whichever it is, every stage is even and it is no deeper than plain."""
    plain = plan_stages(36)
    basic = plan_stages(36, block="basic")
    assert plain.stages == (7, 5)
    assert all(a % 2 == 0 for a in basic.stages) and basic.depth <= plain.depth
    assert (basic.stages, basic.top_receptive_field) == styled_optimum(
        36, 3, Fraction(1, 6), "maxpool", "basic", "none"
    )


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("downsample", ["maxpool", "conv"])
def test_bottleneck_and_inverted_residual_keep_the_plain_stages(stem, downsample) -> None:
    """1x1 convs compose nothing and a shortcut's union is its longest path: the same spatial stages and
    top receptive field as the plain plan, on the full network's report too."""
    for k in KERNELS:
        for t in MIN_C_VALUES:
            for z in range(k, MAX_Z + 1, 11):
                try:
                    plain = make_plan(PlanRequest(z, k, t, downsample=downsample, stem=stem, widths=SMALL))
                except InfeasiblePlanError:
                    with pytest.raises(InfeasiblePlanError):
                        plan_stages(z, k, t, downsample=downsample, stem=stem, block="bottleneck")
                    continue
                for block in ("bottleneck", "inverted_residual"):
                    plan = make_plan(PlanRequest(z, k, t, downsample=downsample, stem=stem, block=block, widths=SMALL))
                    assert plan.stages == plain.stages and plan.depth == plain.depth, (block, z)
                    assert plan.top_receptive_field == plain.top_receptive_field, (block, z)


def _spatial_valid(request: PlanRequest, stages: tuple[int, ...]) -> bool:
    """Whether the full network for `stages` passes `validate` (the graph path, from plain dicts)."""
    layers = network_for_stages(request, stages)
    nodes = [{**layer.__dict__, "inputs": list(layer.inputs) if layer.inputs else None} for layer in layers]
    try:
        return validate(nodes, request.image_size, request.min_c_value).valid
    except VanishingFeatureMapError:
        return False


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("downsample", ["maxpool", "conv"])
def test_every_styled_plan_validates_without_headroom_and_nothing_deeper_passes(block, stem, downsample) -> None:
    """make_plan's network validates through `validate` with the same report; depth headroom 0 in whole
    blocks (a basic plan may have room for one single conv, never for a pair); one more block in any
    stage, or a new one-block stage, fails when rebuilt as plain dict graph nodes."""
    per_block = 2 if block == "basic" else 1
    for k in KERNELS:
        for z in range(3 * k, 200, 23):
            request = PlanRequest(z, k, Fraction(1, 6), downsample=downsample, block=block, stem=stem, widths=SMALL)
            try:
                plan = make_plan(request)
            except InfeasiblePlanError:
                continue
            report = plan.report
            assert report.valid and plan.depth_headroom == 0 and report.depth_headroom < per_block, z
            again = validate(as_graph(plan.layers), plan.image_size, plan.min_c_value)
            assert (again.valid, again.top_receptive_field, again.depth) == (
                True,
                report.top_receptive_field,
                report.depth,
            )
            assert again.analysis.params == plan.params and again.analysis.flops == plan.flops
            if block != "plain":
                assert any(layer.kind == "add" for layer in plan.layers) or block == "inverted_residual"
            stages = plan.stages
            deeper = [stages[:i] + (a + per_block,) + stages[i + 1 :] for i, a in enumerate(stages)]
            deeper.append(stages + (per_block,))
            assert not any(_spatial_valid(request, candidate) for candidate in deeper), (z, stages)


def test_residual_graphs_have_real_merges() -> None:
    """Every basic and bottleneck block ends in an add of two branches; inverted residuals add only where
    the stride is 1 and the widths match (never in a striding block)."""
    for block in ("basic", "bottleneck", "inverted_residual"):
        plan = make_plan(PlanRequest(96, block=block, downsample="conv", widths=WidthRule(8, 2, 16)))
        stats = {layer.name: layer for layer in plan.layer_stats}
        adds = [layer for layer in plan.layer_stats if layer.kind == "add"]
        blocks = {layer.name.rsplit(".", 1)[0] for layer in plan.layer_stats if ".b" in layer.name}
        if block == "inverted_residual":
            assert adds and len(adds) < len(blocks)
        else:
            assert len(adds) == len(blocks)
        for add in adds:
            assert (
                len(add.inputs) == 2 and len({stats.get(name, None) and stats[name].jump for name in add.inputs}) == 1
            )


def test_stem_changes_the_real_filter_sizes_and_reports_its_effect() -> None:
    """A stride-2 stem doubles every later jump: stage 1's convs have real filter size 2k (4k after the
    pool), and the answer states the depth and FLOPs of the same request without it."""
    for stem, jump in (("conv", 2), ("conv_pool", 4)):
        plan = make_plan(PlanRequest(224, stem=stem))
        first = plan.report.analysis.by_name("s1.conv1")
        assert first.jump_in == (jump, jump) and first.real_filter_size == (3 * jump, 3 * jump)
        assert plan.depth == sum(plan.stages) + 1 == plan.report.depth
        effect = plan.stem_effect
        assert effect is not None
        bare = make_plan(PlanRequest(224))
        assert (effect.depth_without_stem, effect.flops_without_stem) == (bare.depth, bare.flops)
        assert plan.flops < bare.flops
    assert make_plan(PlanRequest(224)).stem_effect is None


def test_stem_errors_name_their_field() -> None:
    with pytest.raises(InfeasiblePlanError) as error:
        make_plan(PlanRequest(2, stem="conv_pool"))  # the stem conv leaves 1x1: the pool would empty it
    assert error.value.field == "image_size"
    with pytest.raises(InvalidLayerError) as error:
        make_plan(PlanRequest(64, stem="conv", model="simplified"))
    assert error.value.field == "stem"
    with pytest.raises(InvalidLayerError) as error:
        make_plan(PlanRequest(64, block="resnext"))  # type: ignore[arg-type]
    assert error.value.field == "block"
    with pytest.raises(InvalidLayerError) as error:
        make_plan(PlanRequest(64, expansion=4))
    assert error.value.field == "expansion"
    with pytest.raises(LimitExceededError) as error:  # 512 000 x 4 channels in the last 1x1 expand
        make_plan(PlanRequest(64, block="bottleneck", widths=WidthRule(64, 2, 512_000)))
    assert error.value.field == "expansion"


@pytest.mark.parametrize("block", BLOCKS)
def test_the_width_search_counts_equal_the_analysis(block) -> None:
    """`network_counts` (the budget search's counter) equals the full analysis on every style, stem and
    downsampling, with and without BN, on square and rectangular images."""
    for stem in STEMS:
        for downsample in ("maxpool", "avgpool", "conv"):
            for size, batch_norm in (((40, 40), True), ((33, 70), False), ((96, 96), True)):
                request = PlanRequest(size, block=block, stem=stem, downsample=downsample, batch_norm=batch_norm,
                                      widths=WidthRule(5, 3, 40), in_channels=2)  # fmt: skip
                plan = make_plan(request)
                assert network_counts(plan.layers, plan.image_size, 2) == (plan.flops, plan.params)


BUDGET_CASES = [
    ("bottleneck", "conv_pool", 224),
    ("inverted_residual", "conv", 224),
    ("basic", "none", 64),
    ("plain", "conv", 96),
]


@pytest.mark.parametrize(("block", "stem", "z"), BUDGET_CASES)
def test_budget_grid_picks_the_widest_rule_that_fits(block, stem, z) -> None:
    """Over a grid of budgets: the answer keeps the optimal stages, fits its budget, and the next wider
    rule (base + 1) breaks it; the narrowest rule's count is the smallest budget that fits."""
    free = make_plan(PlanRequest(z, block=block, stem=stem))
    narrowest = make_plan(PlanRequest(z, block=block, stem=stem, widths=WidthRule(1, 2, 8)))
    for field, full, least in (
        ("max_flops", free.flops, narrowest.flops),
        ("max_params", free.params, narrowest.params),
    ):
        for fraction in (Fraction(1, 1), Fraction(1, 2), Fraction(1, 7), Fraction(1, 40), Fraction(1, 400)):
            budget = max(least, int(full * fraction))
            plan = make_plan(PlanRequest(z, block=block, stem=stem, **{field: budget}))
            assert plan.stages == free.stages and plan.report.valid
            count = plan.flops if field == "max_flops" else plan.params
            assert count <= budget
            choice = plan.budget
            assert choice is not None and choice.widths == plan.widths
            if choice.next_wider is None:
                assert plan.widths == WidthRule() and budget >= full
            else:
                assert choice.next_wider.base == plan.widths.base + 1
                wider = make_plan(PlanRequest(z, block=block, stem=stem, widths=choice.next_wider))
                assert (wider.flops, wider.params) == (choice.next_wider_flops, choice.next_wider_params)
                assert (wider.flops if field == "max_flops" else wider.params) > budget
        with pytest.raises(InfeasiblePlanError) as error:
            make_plan(PlanRequest(z, block=block, stem=stem, **{field: least - 1}))
        assert error.value.field == field and str(least) in error.value.reason


def test_both_budgets_bind_together() -> None:
    plan = make_plan(PlanRequest(128, block="bottleneck", stem="conv_pool", max_flops=10**9, max_params=2 * 10**6))
    assert plan.flops <= 10**9 and plan.params <= 2 * 10**6
    assert plan.budget is not None and plan.budget.next_wider is not None
    assert plan.budget.next_wider_flops > 10**9 or plan.budget.next_wider_params > 2 * 10**6  # type: ignore[operator]
