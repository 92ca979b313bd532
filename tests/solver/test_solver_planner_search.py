"""The planner's two exact optimisers agree: branch and bound (`planner._branch_and_bound`) and the dynamic
programme over stages (`planner._optimise_dp`), on thousands of planning problems well past the brute-force
range of test_solver_planner_bruteforce.py (images up to 2^20 pixels, t down to the floor 1/64, stems, blocks
of two convolutions, both models, all downsamplings, both rf sides), and `_optimise` gives the same whichever
of them answers (a node budget of 0 hands every problem to the programme)."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from cnnplan.solver import planner
from cnnplan.solver.constraints import receptive_field_limit
from cnnplan.solver.errors import InfeasiblePlanError


def _families(seed: int, count: int) -> list[planner._Family]:
    rng = random.Random(seed)
    families = []
    while len(families) < count:
        height = rng.choice([rng.randint(1, 64), rng.randint(1, 1100), rng.randint(1, 1 << 20)])
        width = height if rng.random() < 0.5 else rng.randint(1, 1 << rng.randint(1, 20))
        kernel = rng.choice([3, 5, 7, 9, 11])
        t = rng.choice(
            [Fraction(1, 4), Fraction(1, 6), Fraction(1, 8), Fraction(1, 64), Fraction(1, rng.randint(1, 64)),
             Fraction(rng.randint(1, 9), rng.randint(9, 300)), Fraction(1)]
        )  # fmt: skip
        t = max(t, Fraction(1, 64))
        model = rng.choice(planner.MODELS)
        stem = rng.choice(planner.STEMS) if model == "exact" else "none"
        try:
            start = planner.stem_state(stem, kernel, (height, width))
        except InfeasiblePlanError:
            continue
        family = planner._family(
            min(start.size),
            receptive_field_limit((height, width), rng.choice(["min", "max"])),
            kernel,
            t,
            model,
            rng.choice(planner.DOWNSAMPLES),
            start.receptive_field,
            start.jump,
        )
        families.append(planner._grouped(family, 2) if rng.random() < 0.3 else family)
    return families


@pytest.mark.parametrize("seed", range(4))
def test_branch_and_bound_equals_the_dynamic_programme(seed: int) -> None:
    for family in _families(seed, 500):
        assert planner._branch_and_bound(family, None) == planner._optimise_dp(family), family


def test_optimise_is_exact_within_and_past_the_node_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    families = _families(9, 300)
    expected = [planner._optimise_dp(family) for family in families]
    assert [planner._optimise(family) for family in families] == expected
    assert any(planner._branch_and_bound(family, planner.BRANCH_AND_BOUND_NODES) is planner._GAVE_UP
               for family in families)  # fmt: skip
    monkeypatch.setattr(planner, "BRANCH_AND_BOUND_NODES", 0)
    assert [planner._optimise(family) for family in families] == expected
