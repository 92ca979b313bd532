"""The planner is the true integer optimum: equal to exhaustive search for every z <= 300.

The oracles (solver_oracles.py) evaluate candidates layer by layer with `cnnplan.solver.arithmetic`, never
with the planner's closed forms; `test_simulator_agrees_with_analyse` ties that simulator to the full
`analyse` + `check_constraints` path on random members of the family.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_oracles import exact_optimum, simplified_optimum, simulate_family

from cnnplan.solver import InfeasiblePlanError, PlanRequest, VanishingFeatureMapError, make_plan, plan_stages, validate
from cnnplan.solver.network import WidthRule, feature_layers

KERNELS = [3, 5, 7]
MIN_C_VALUES = [Fraction(1, 4), Fraction(1, 6), Fraction(1, 8)]
DOWNSAMPLES = ["maxpool", "avgpool", "conv"]
MAX_Z = 300


def _planned(z: int, k: int, t: Fraction, downsample: str, model: str = "exact"):
    try:
        plan = plan_stages(z, k, t, model=model, downsample=downsample)
    except InfeasiblePlanError as error:
        assert error.field == "image_size"
        return None
    assert plan.depth == sum(plan.stages)
    return plan.stages, plan.top_receptive_field


@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("t", MIN_C_VALUES, ids=str)
def test_exact_planner_equals_exhaustive_search(k: int, t: Fraction) -> None:
    """All z <= 300 and all three downsampling variants (the two pools share one arithmetic, so one
    search serves both), with the tie-break depth, top r, fewer stages, lexicographically larger."""
    for z in range(1, MAX_Z + 1):
        pooled = exact_optimum(z, k, t, "maxpool")
        assert _planned(z, k, t, "maxpool") == pooled, z
        assert _planned(z, k, t, "avgpool") == pooled, z
        assert _planned(z, k, t, "conv") == exact_optimum(z, k, t, "conv"), z


@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("t", MIN_C_VALUES, ids=str)
def test_simplified_planner_equals_exhaustive_search(k: int, t: Fraction) -> None:
    for z in range(1, MAX_Z + 1):
        assert _planned(z, k, t, "maxpool", model="simplified") == simplified_optimum(z, k, t), z


@settings(max_examples=300, deadline=None)
@given(
    stages=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=6).map(tuple),
    z=st.integers(min_value=1, max_value=400),
    k=st.sampled_from(KERNELS),
    t=st.sampled_from(MIN_C_VALUES),
    downsample=st.sampled_from(DOWNSAMPLES),
)
def test_simulator_agrees_with_analyse(stages, z, k, t, downsample) -> None:
    """The oracle's layer walk gives the same verdict and top receptive field as `validate` on the
    concrete network (or the network's map vanishes in both)."""
    valid, top, vanished = simulate_family(stages, z, k, t, downsample)
    layers = feature_layers(stages, k, downsample, WidthRule(base=4, max_width=8), batch_norm=False)
    if vanished:
        with pytest.raises(VanishingFeatureMapError):
            validate(layers, z, t)
        return
    report = validate(layers, z, t)
    assert (report.valid, report.top_receptive_field, report.depth) == (valid, (top, top), sum(stages))


def _validate_stages(stages, z, k, t, downsample):
    layers = feature_layers(stages, k, downsample, WidthRule(base=4, max_width=8), batch_norm=False)
    try:
        return validate(layers, z, t).valid
    except VanishingFeatureMapError:
        return False


@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("t", MIN_C_VALUES, ids=str)
@pytest.mark.parametrize("downsample", DOWNSAMPLES)
def test_every_plan_validates_without_headroom_and_nothing_deeper_passes(k, t, downsample) -> None:
    """make_plan's full network (feature + classifier level) passes validation with depth headroom 0,
    and adding one conv to any stage, or a new one-conv stage, gives a network that fails."""
    for z in range(k, MAX_Z + 1, 7):
        plan = make_plan(PlanRequest(z, kernel_size=k, min_c_value=t, downsample=downsample))
        assert plan.report.valid and plan.report.depth_headroom == 0, z
        assert plan.report.depth == plan.depth == sum(plan.stages)
        stages = plan.stages
        assert _validate_stages(stages, z, k, t, downsample)
        deeper = [stages[:i] + (a + 1,) + stages[i + 1 :] for i, a in enumerate(stages)] + [stages + (1,)]
        assert not any(_validate_stages(candidate, z, k, t, downsample) for candidate in deeper), z


@pytest.mark.parametrize("k", KERNELS)
def test_simplified_plans_pass_the_exact_constraints(k) -> None:
    """The simplified model over-estimates every receptive field, so its plans are valid (if shallower)."""
    for z in range(k, MAX_Z + 1, 5):
        plan = make_plan(PlanRequest(z, kernel_size=k, model="simplified"))
        exact = plan_stages(z, k)
        assert plan.report.valid and plan.depth <= exact.depth, z
        assert plan.relaxed.depth >= plan.depth


@pytest.mark.parametrize("z", [2**10, 2**15, 2**20])
def test_large_images_plan_quickly_and_validly(z) -> None:
    plan = make_plan(PlanRequest(z))
    assert plan.report.valid and plan.report.depth_headroom == 0
    assert plan.top_receptive_field <= z


@pytest.mark.parametrize(
    ("k", "t"), [(3, Fraction(1, 64)), (3, Fraction(2, 9)), (9, Fraction(1, 32)), (11, Fraction(1, 2))]
)
def test_exact_planner_equals_exhaustive_search_beyond_the_grid(k: int, t: Fraction) -> None:
    """Other kernels and t (down to the planner's floor 1/64, many layers per stage), every third z."""
    for z in range(1, MAX_Z + 1, 3):
        pooled = exact_optimum(z, k, t, "maxpool")
        assert _planned(z, k, t, "maxpool") == pooled, z
        assert _planned(z, k, t, "conv") == exact_optimum(z, k, t, "conv"), z
        assert _planned(z, k, t, "maxpool", model="simplified") == simplified_optimum(z, k, t), z


@pytest.mark.parametrize("downsample", DOWNSAMPLES)
def test_rectangular_images_with_the_larger_side_as_limit(downsample) -> None:
    """rf_side='max' bounds the top receptive field by the larger side while the maps shrink from the
    smaller one: the pools must still find a map of side >= 2 (both models)."""
    k, t = 3, Fraction(1, 6)
    for height in range(3, 70, 2):
        for width in (height + 1, 3 * height + 2, 40 * height + 7, 300):
            expected = exact_optimum(width, k, t, downsample, side=height)
            plan = plan_stages([height, width], k, t, downsample=downsample, rf_side="max")
            assert (plan.stages, plan.top_receptive_field) == expected, (height, width)
            pooled = None if downsample == "conv" else height
            simplified = plan_stages([height, width], k, t, model="simplified", downsample=downsample, rf_side="max")
            assert (simplified.stages, simplified.top_receptive_field) == simplified_optimum(width, k, t, pooled)
            if downsample != "conv":  # (the simplified model does not see a stride-2 conv's real filter size)
                assert make_plan(PlanRequest([height, width], downsample=downsample, rf_side="max",
                                             model="simplified")).report.valid  # fmt: skip


def test_simplified_model_does_not_see_stride_two_convolutions() -> None:
    """The seed's simplified model gives stage l the real filter size k 2^(l-1); a stride-2 conv opening
    a stage has only k 2^(l-2). Its plans with downsample='conv' can therefore break constraint 1 at
    those convs, and the exact report says so (the exact model never does)."""
    request = PlanRequest(224, kernel_size=7, downsample="conv", model="simplified")
    plan = make_plan(request)
    assert not plan.report.valid
    assert {v.layer for v in plan.report.violations} <= {f"s{i}.conv1" for i in range(2, len(plan.stages) + 1)}
    assert make_plan(PlanRequest(224, kernel_size=7, downsample="conv")).report.valid
