"""pytest-benchmark versions of benchmarks/solver_bench.py's headline figures.

Disabled by default (the project's ``--benchmark-disable`` addopt runs each body once, as a smoke
test); time them with ``.venv/bin/pytest tests/solver/test_solver_benchmarks.py --benchmark-enable``.
No timed assertions: the figures are printed by pytest-benchmark, the assertions check the results.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cnnplan.solver import PlanRequest, make_plan, plan_stages, validate

_BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "solver_bench.py"
_spec = importlib.util.spec_from_file_location("solver_bench", _BENCH)
solver_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(solver_bench)


@pytest.mark.parametrize("exponent", [5, 10, 20])
def test_plan_stages(benchmark, exponent) -> None:
    plan = benchmark(plan_stages, 2**exponent)
    assert plan.top_receptive_field <= 2**exponent


@pytest.mark.parametrize("z", [32, 224, 1024])
def test_make_plan(benchmark, z) -> None:
    plan = benchmark(make_plan, PlanRequest(z))
    assert plan.report.valid


@pytest.mark.parametrize("builder", ["sequential_chain", "residual_graph"])
def test_validate_1000_layers(benchmark, builder) -> None:
    layers = getattr(solver_bench, builder)(1000)
    report = benchmark(validate, layers, 64)
    assert len(report.analysis.layers) == 1000
