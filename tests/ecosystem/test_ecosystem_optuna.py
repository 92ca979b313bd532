"""The Optuna example against a real server, and the exact count behind the pruning figure of docs/integrations.md."""

from __future__ import annotations

import itertools
import random
import sys
from fractions import Fraction
from pathlib import Path

import optuna
import pytest

from cnnplan.service.client import PlannerClient
from cnnplan.solver import SolverError, validate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import optuna_search
import search_space


def solver_verdict(candidate: dict, image_size: int) -> bool:
    """Feasible by the solver itself: valid, and no feature map vanishes."""
    try:
        return validate(optuna_search.candidate_layers(**candidate), image_size).valid
    except SolverError:
        return False


def test_study_screens_every_generation_through_the_service(live_server):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with PlannerClient(live_server) as client:
        study = optuna_search.run_study(client, image_size=64, trials=24, generation=8, seed=1)
    assert len(study.trials) == 24
    for trial in study.trials:
        candidate = trial.user_attrs["candidate"]
        feasible = trial.user_attrs["feasible"]
        assert feasible == solver_verdict(candidate, 64), candidate
        margins = [trial.system_attrs.get(f"constraints:{name}") for name in optuna_search.CONSTRAINTS]
        if optuna_search.NATIVE_CONSTRAINTS:
            assert margins == trial.user_attrs["constraints"]  # what the sampler reads
        assert feasible == all(value <= 0 for value in trial.user_attrs["constraints"])
    summary = optuna_search.summary(study)
    assert summary["feasible"] + summary["screened_out"] == 24
    assert 0 < summary["feasible"] < 24  # the theory both keeps and removes candidates here


def test_the_depth_first_count_agrees_with_the_solver_on_a_whole_small_space():
    t = Fraction(1, 6)
    for kernel in (3, 5):
        fast = set(search_space.feasible_tuples(40, kernel, t, max_stages=3, max_layers=6))
        slow = {
            stages
            for n in range(1, 4)
            for stages in itertools.product(range(1, 7), repeat=n)
            if solver_verdict({"stages": list(stages), "kernel_size": kernel, "downsample": "maxpool"}, 40)
        }
        assert fast == slow and fast


def test_the_count_for_224_matches_the_solver_on_samples():
    t = Fraction(1, 6)
    feasible = set(search_space.feasible_tuples(224, 3, t))
    rng = random.Random(7)
    samples = rng.sample(sorted(feasible), 40) + [
        tuple(rng.randint(1, 10) for _ in range(rng.randint(1, 8))) for _ in range(60)
    ]
    for stages in samples:
        verdict = solver_verdict({"stages": list(stages), "kernel_size": 3, "downsample": "maxpool"}, 224)
        assert verdict == (stages in feasible), stages


@pytest.mark.parametrize("kernel, expected", [(3, 6416), (5, 992), (7, 342)])
def test_published_counts(kernel, expected):
    """The figures quoted in docs/integrations.md (cross-checked against the solver above)."""
    assert sum(1 for _ in search_space.feasible_tuples(224, kernel, Fraction(1, 6))) == expected
