"""The benchmark runner on CPU: result fields, memory refusal, and a real out-of-memory survived."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnplan.service.worker.benchmark import BenchmarkOptions, JobCancelled, percentile, run_benchmark
from cnnplan.service.worker.memory import BenchmarkError, DoesNotFitError, available_bytes, estimate_bytes
from cnnplan.service.worker.spec import network_spec
from cnnplan.solver import PlanRequest, WidthRule, make_plan

ROOT = Path(__file__).resolve().parents[2]
TINY_PLAN = {"image_size": 32, "widths": {"base": 4, "multiplier": 2, "max_width": 8}, "num_classes": 10}


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90) == pytest.approx(9.1)
    assert percentile([7.0], 90) == 7.0


@pytest.mark.parametrize("mode,dtype,channels_last", [("inference", "float32", False), ("training", "bfloat16", True)])
def test_result_has_every_field(mode: str, dtype: str, channels_last: bool) -> None:
    spec = network_spec({"plan": TINY_PLAN})
    seen: list[float] = []
    options = BenchmarkOptions(
        mode=mode, dtype=dtype, channels_last=channels_last, batch_sizes=(1, 3), warmup=1, iterations=2
    )
    result = run_benchmark(spec, options, progress=seen.append)
    plan = make_plan(PlanRequest(image_size=32, widths=WidthRule(4, 2, 8), num_classes=10))
    assert (result["params"], result["flops"]) == (plan.params, plan.flops)
    assert result["environment"]["device"] == "cpu" and result["environment"]["torch"]
    assert [row["batch_size"] for row in result["results"]] == [1, 3]
    for row in result["results"]:
        assert 0 < row["latency_ms_p50"] <= row["latency_ms_p90"]
        assert row["images_per_second"] > 0 and row["tflops_per_second"] > 0 and row["peak_memory_bytes"] > 0
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 6
    json.dumps(result)  # a job result must be plain JSON


def test_architecture_graph_is_benchmarked() -> None:
    body = {"preset": "resnet18", "image_size": 32}
    result = run_benchmark(
        network_spec({"architecture": body}), BenchmarkOptions(batch_sizes=(2,), warmup=0, iterations=1)
    )
    assert result["results"][0]["batch_size"] == 2 and result["params"] > 11_000_000


def test_cancel_stops_between_steps() -> None:
    steps: list[float] = []
    with pytest.raises(JobCancelled):
        run_benchmark(
            network_spec({"plan": TINY_PLAN}),
            BenchmarkOptions(batch_sizes=(1,), warmup=1, iterations=50),
            progress=steps.append,
            cancelled=lambda: len(steps) >= 3,
        )
    assert len(steps) == 3


def test_batch_that_cannot_fit_is_refused_before_allocation() -> None:
    spec = network_spec({"plan": {"image_size": 4096, "num_classes": 10}})
    with pytest.raises(DoesNotFitError) as caught:
        run_benchmark(spec, BenchmarkOptions(batch_sizes=(1, 4096)))
    assert caught.value.field == "batch_sizes[1]"
    assert "GiB" in str(caught.value) and "available" in str(caught.value)


def test_estimate_grows_with_batch_and_training() -> None:
    analysis = make_plan(PlanRequest(image_size=64, widths=WidthRule(8, 2, 32))).report.analysis
    inference = [estimate_bytes(analysis, batch, "float32", "inference") for batch in (1, 2, 4)]
    assert inference == sorted(inference) and inference[0] < inference[2]
    assert estimate_bytes(analysis, 4, "float32", "training") > inference[2]
    assert estimate_bytes(analysis, 4, "bfloat16", "inference") < inference[2]
    assert available_bytes("cpu") > 0


def test_cuda_without_gpu_is_a_named_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(BenchmarkError) as caught:
        run_benchmark(network_spec({"plan": TINY_PLAN}), BenchmarkOptions(device="cuda"))
    assert caught.value.field == "device"


OOM_SCRIPT = textwrap.dedent(
    """
    import json, resource
    from cnnplan.service.worker.benchmark import BenchmarkOptions, run_benchmark
    from cnnplan.service.worker.memory import BenchmarkError
    from cnnplan.service.worker.spec import network_spec
    import torch
    torch.zeros(1)  # map torch's libraries before capping the address space
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    cap = size + 768 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    big = network_spec({"plan": {"image_size": 512, "widths": {"base": 64, "multiplier": 2, "max_width": 64},
                                 "num_classes": 10}})
    try:
        run_benchmark(big, BenchmarkOptions(batch_sizes=(64,), warmup=0, iterations=1))
        outcome = {"oom": False}
    except BenchmarkError as error:
        outcome = {"oom": True, "message": str(error), "field": error.field}
    small = network_spec({"plan": {"image_size": 16, "widths": {"base": 2, "multiplier": 2, "max_width": 4},
                                   "num_classes": 3}})
    after = run_benchmark(small, BenchmarkOptions(batch_sizes=(2,), warmup=0, iterations=1))
    outcome["after"] = after["results"][0]["batch_size"]
    print(json.dumps(outcome))
    """
)


def test_real_out_of_memory_fails_the_job_and_leaves_the_process_healthy() -> None:
    """A process whose address space is capped below what the run needs (the estimate sees host memory)."""
    done = subprocess.run([sys.executable, "-c", OOM_SCRIPT], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["oom"] is True, outcome
    assert "out of memory" in outcome["message"] and outcome["field"] == "batch_sizes"
    assert outcome["after"] == 2
