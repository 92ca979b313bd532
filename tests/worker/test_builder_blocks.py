"""Every block style and stem builds in PyTorch with torch's own parameter and FLOP counts equal to the
solver's, and runs as a benchmark: in process and as a real job through a real Celery worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_builder import measured
from test_jobs import api, check_result, job_in
from worker_procs import Processes, wait_for, worker_env

from cnnplan.service.worker.benchmark import BenchmarkOptions, run_benchmark
from cnnplan.service.worker.builder import build_model
from cnnplan.service.worker.spec import network_spec
from cnnplan.solver import PlanRequest, WidthRule, make_plan

SMALL = WidthRule(base=4, multiplier=2, max_width=16)
CASES = [
    PlanRequest(32, widths=SMALL, num_classes=10, block="basic"),
    PlanRequest((24, 40), widths=SMALL, num_classes=7, block="basic", stem="conv", downsample="conv"),
    PlanRequest(36, widths=SMALL, num_classes=5, block="bottleneck", stem="conv_pool", batch_norm=False),
    PlanRequest(40, kernel_size=5, widths=SMALL, num_classes=3, block="bottleneck", downsample="conv"),
    PlanRequest(32, widths=SMALL, num_classes=4, block="inverted_residual", downsample="avgpool"),
    PlanRequest((20, 33), widths=SMALL, num_classes=4, block="inverted_residual", stem="conv", expansion=1),
    PlanRequest(48, widths=SMALL, num_classes=6, block="inverted_residual", downsample="conv", in_channels=1),
    PlanRequest(48, widths=SMALL, num_classes=6, stem="conv_pool"),
]


@pytest.mark.parametrize(
    "request_",
    CASES,
    ids=[
        "basic",
        "basic-stem-conv-rect",
        "bottleneck-stem-pool-no-bn",
        "bottleneck-k5-conv",
        "inverted-avgpool",
        "inverted-expansion1-stem",
        "inverted-conv-1ch",
        "plain-stem-pool",
    ],
)
def test_styled_plan_module_matches_torch_counts(request_: PlanRequest) -> None:
    plan = make_plan(request_)
    model, analysis = build_model(plan.layers, plan.image_size, request_.in_channels)
    assert (analysis.params, analysis.flops) == (plan.params, plan.flops)
    params, flops, shape = measured(model, plan.image_size, request_.in_channels)
    assert (params, flops) == (plan.params, plan.flops)
    assert tuple(shape) == (2, request_.num_classes)


def test_styled_plan_is_benchmarked_in_process() -> None:
    body = {"image_size": 32, "block": "bottleneck", "stem": "conv", "widths": {"base": 4, "max_width": 16}}
    result = run_benchmark(network_spec({"plan": body}), BenchmarkOptions(batch_sizes=(2,), warmup=0, iterations=1))
    plan = make_plan(PlanRequest(32, block="bottleneck", stem="conv", widths=WidthRule(4, 2, 16)))
    assert (result["params"], result["flops"]) == (plan.params, plan.flops)


def test_styled_plan_runs_as_a_real_benchmark_job(tmp_path: Path, processes: Processes) -> None:
    plan = {"image_size": 32, "block": "inverted_residual", "stem": "conv", "widths": {"base": 4, "max_width": 16}}
    client = api(tmp_path)
    answer = client.post("/benchmarks", json={"plan": plan, "device": "cpu", "batch_sizes": [1, 2], "iterations": 2})
    assert answer.status_code == 202, answer.text
    processes.worker(worker_env(tmp_path))
    job = wait_for(lambda: job_in(client, answer.json()["id"], "succeeded", "failed"), "the styled plan's job")
    check_result(job, [1, 2])
    expected = make_plan(PlanRequest(32, block="inverted_residual", stem="conv", widths=WidthRule(4, 2, 16)))
    assert (job["result"]["params"], job["result"]["flops"]) == (expected.params, expected.flops)
