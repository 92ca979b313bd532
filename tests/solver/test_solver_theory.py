"""The worked examples of docs/theory.md#exact-model, exact c-value comparison and the closed form of #simplified-model."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_oracles import simplified_optimum

from cnnplan.solver import Layer, PlanRequest, check_constraints, make_plan, plan_stages, relaxed_optimum, validate
from cnnplan.solver.network import WidthRule, feature_layers


def test_worked_example_z18() -> None:
    """k=3, t=1/6, 2x2 max pool: z=18 gives (8), D=8, top r=17."""
    plan = plan_stages(18)
    assert (plan.stages, plan.depth, plan.top_receptive_field) == ((8,), 8, 17)


def test_worked_example_z36_and_its_tie_break() -> None:
    """z=36 gives (7, 5), D=12, top r=36; (8, 4) also has D=12 but top r=34."""
    plan = plan_stages(36)
    assert (plan.stages, plan.depth, plan.top_receptive_field) == ((7, 5), 12, 36)
    rival = validate(feature_layers((8, 4), 3, "maxpool", WidthRule(), True), 36)
    chosen = validate(feature_layers((7, 5), 3, "maxpool", WidthRule(), True), 36)
    assert rival.valid and chosen.valid
    assert (rival.depth, rival.top_receptive_field) == (12, (34, 34))  # the same on both axes
    assert (chosen.depth, chosen.top_receptive_field) == (12, (36, 36))
    full = make_plan(PlanRequest(36))
    assert full.stages == (7, 5) and full.top_receptive_field == 36 and full.report.valid


def test_c_value_is_compared_exactly() -> None:
    """c = 6/36 passes with t = 1/6 (a float comparison could go either way); 6/37 does not."""
    # Seven 3x3 convs (r = 15), a 2x2 pool (r = 16, j = 2), five 3x3 convs at jump 2 (r = 20 ... 36):
    # the last has real filter size 3 * 2 = 6 and c = 6/36 exactly.
    layers = [Layer(kind="conv", kernel_size=3, padding=1) for _ in range(7)]
    layers += [Layer(kind="maxpool", kernel_size=2)]
    layers += [Layer(kind="conv", kernel_size=3, padding=1) for _ in range(5)]
    report = validate(layers, 64, min_c_value="1/6")
    c_values = [layer.c_value for layer in report.analysis.layers if layer.kind == "conv"]
    assert c_values[-1] == (Fraction(6, 36), Fraction(6, 36)) and report.valid
    assert not validate(layers, 64, min_c_value=Fraction(6, 35)).valid
    assert validate(layers, 64, min_c_value=0.1).min_c_value == Fraction(1, 10)
    assert check_constraints(report.analysis, "1/6") == check_constraints(report.analysis, Fraction(1, 6)) == report


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("t", [Fraction(1, 4), Fraction(1, 6), Fraction(1, 8)])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 10])
def test_relaxed_closed_form_at_its_design_size(n: int, k: int, t: Fraction) -> None:
    """At z = 2^(n-1) k / t the relaxed optimum is a_1 = 1/t, a_i = 1/(2t) (6, 3, 3, ... for t = 1/6)."""
    z = int(2 ** (n - 1) * k / t)
    relaxed = relaxed_optimum(z, k, t)
    assert relaxed.stages == (1 / t,) + (1 / (2 * t),) * (n - 1)
    assert relaxed.depth == 1 / t + (n - 1) / (2 * t)


@settings(max_examples=200, deadline=None)
@given(
    z=st.integers(min_value=7, max_value=2**20),
    k=st.sampled_from([3, 5, 7, 9]),
    t=st.sampled_from([Fraction(1, 4), Fraction(1, 6), Fraction(1, 8), Fraction(2, 9), Fraction(1, 3)]),
)
def test_relaxed_fill_rule(z: int, k: int, t: Fraction) -> None:
    """Otherwise the relaxed optimum fills each stage's bound T_l = 2^(l-1)/t in turn and the last stage
    takes what k T_n <= z leaves; it is the first n with 2^(n-1)/t >= z/k. All a_i are positive."""
    relaxed = relaxed_optimum(z, k, t)
    stages = relaxed.stages
    n = len(stages)
    totals = [sum(a * 2**i for i, a in enumerate(stages[: level + 1])) for level in range(n)]
    assert all(a > 0 for a in stages)
    assert all(totals[level] == Fraction(2**level) / t for level in range(n - 1))
    assert k * totals[-1] == z
    assert Fraction(2 ** (n - 1)) / t >= Fraction(z, k)
    assert n == 1 or Fraction(2 ** (n - 2)) / t < Fraction(z, k)
    assert relaxed.depth == sum(stages)


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("t", [Fraction(1, 4), Fraction(1, 6), Fraction(1, 8)])
def test_relaxed_depth_bounds_the_integer_simplified_optimum(k: int, t: Fraction) -> None:
    """The relaxation can only gain: for every z <= 300 its depth is >= the brute-force integer optimum."""
    for z in range(k, 301):
        integer = simplified_optimum(z, k, t)
        assert integer is not None
        assert relaxed_optimum(z, k, t).depth >= sum(integer[0]), z


def test_pointwise_convolutions_are_exempt_unless_requested() -> None:
    """docs/theory.md#c-value: a 1x1 conv composes no pattern; with the opt-in it is constrained, and its
    diagnosis (it adds no receptive field) points at the stage before it."""
    layers = [Layer(kind="conv", kernel_size=3, padding=1) for _ in range(5)] + [Layer(kind="conv", kernel_size=1)]
    assert validate(layers, 64).valid
    report = validate(layers, 64, include_pointwise=True)
    (violation,) = report.violations
    assert (violation.constraint, violation.layer, violation.value, violation.limit) == (
        "c_value",
        "conv5",
        Fraction(1, 11),
        Fraction(1, 6),
    )
    # it adds no receptive field: the stage before it is too long. Its r = 11 must come down to 1 / t = 6:
    # each earlier 3x3 conv adds 2, so 3 of them go (r 5; 2 would leave r 7 > 6), the nearest first
    nodes = ["conv2", "conv3", "conv4"]
    assert violation.fix == {"action": "remove_layers", "stage_end": "conv5", "convolutions": 3, "nodes": nodes}
    assert "remove 3 convolutions from the stage that ends at 'conv5'" in violation.message
    # a 2x2 stride-2 pool before it gives c = 2 / 12 = 1/6 (r 11 + 1 = 12, real filter size 1 * 2): it restores c
    insert = {"action": "insert_downsampling", "before": "conv5",
              "insert": {"type": "maxpool", "kernel_size": 2, "stride": 2, "name": "conv5.pool"}}  # fmt: skip
    assert insert in violation.alternatives
