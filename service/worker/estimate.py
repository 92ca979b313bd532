"""How long a benchmark job will take, estimated before it runs.

duration ~= FLOPs of the whole job / the device's achieved FLOP/s + a fixed overhead, where

    FLOPs of the job = sum over batch sizes b of b x (warmup + iterations) x F x (3 when training)

(F: the solver's forward FLOPs of one image, 2 per multiply-add; the backward pass costs about twice
the forward) and the achieved rate is measured once per process and device by timing a
representative convolution (3x3, 64 -> 64 channels, 56x56 maps, batch 2: 0.46 GFLOP) with torch:
one untimed call, then the best of three. Where torch is not installed the rate is a nominal one and
the estimate says so (``basis: "nominal"``). The estimate is what a user needs to decide whether to
wait, not a promise: a network of tiny or 1x1 convolutions runs below the calibrated rate, and a
loaded machine (or a worker on another device than the API's) differs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

NOMINAL_FLOPS_PER_SECOND = {"cpu": 2e10, "cuda": 2e13}
"""Used where torch is missing: about a 2-core laptop CPU's float32 convolution rate, a mid-range GPU's."""

OVERHEAD_SECONDS = 2.0
"""Building the module, the memory check and the result document: about this much on a CPU worker."""

_CALIBRATION = (2, 64, 56, 3)  # batch, channels, side, kernel


def job_flops(forward_flops_per_image: int, request: Mapping[str, Any]) -> int:
    """FLOPs of every step of the job: sum_b b x (warmup + iterations) x F x (3 when training, else 1)."""
    steps = int(request.get("warmup", 2)) + int(request.get("iterations", 10))
    factor = 3 if request.get("mode", "inference") == "training" else 1
    return sum(int(b) for b in request.get("batch_sizes", (1,))) * steps * forward_flops_per_image * factor


def _device(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=4)
def device_rate(device: str) -> tuple[float, str]:
    """(achieved FLOP/s, "measured" or "nominal") of `device`: the best of three timed calibration convs."""
    try:
        import torch
    except ImportError:
        return NOMINAL_FLOPS_PER_SECOND.get(device, NOMINAL_FLOPS_PER_SECOND["cpu"]), "nominal"
    if device == "cuda" and not torch.cuda.is_available():
        return NOMINAL_FLOPS_PER_SECOND["cuda"], "nominal"
    batch, channels, side, kernel = _CALIBRATION
    flops = 2 * kernel * kernel * channels * channels * side * side * batch
    with torch.inference_mode():
        images = torch.randn(batch, channels, side, side, device=device)
        weight = torch.randn(channels, channels, kernel, kernel, device=device)
        best = float("inf")
        for attempt in range(4):
            start = time.perf_counter()
            torch.nn.functional.conv2d(images, weight, padding=kernel // 2)
            if device == "cuda":
                torch.cuda.synchronize()
            if attempt:  # the first call is untimed (allocations, kernel selection)
                best = min(best, time.perf_counter() - start)
    return flops / best, "measured"


def estimate(forward_flops_per_image: int, request: Mapping[str, Any]) -> dict[str, Any]:
    """The estimate of a job request whose network has `forward_flops_per_image` (shape:
    `schemas.BenchmarkEstimate`); stored with the job, so every read of it gives the same one."""
    device = _device(str(request.get("device", "auto")))
    rate, basis = device_rate(device)
    total = job_flops(forward_flops_per_image, request)
    return {
        "seconds": round(total / rate + OVERHEAD_SECONDS, 1),
        "flops": total,
        "device": device,
        "device_flops_per_second": round(rate),
        "basis": basis,
    }


__all__ = ["device_rate", "estimate", "job_flops"]
