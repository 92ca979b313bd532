"""Estimate the memory one benchmark step needs and refuse a job that cannot fit the device.

The estimate is deliberately conservative and analytic (from the solver's per-layer sizes, before
anything is allocated): fp32 master weights (+ a half-precision copy under autocast, + gradients
when training), activations (inference: twice the largest input+output pair, for branches and
padding copies; training: every layer output is kept for the backward pass, plus that pair), and a
fixed 64 MiB of workspace.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnplan.solver.analysis import Analysis

WORKSPACE_BYTES = 64 * 1024 * 1024
ACTIVATION_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


class BenchmarkError(Exception):
    """A benchmark that cannot run; `field` names the request option at fault (or None)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DoesNotFitError(BenchmarkError):
    """The memory estimate of a batch exceeds what the device has available."""


def _elements(size: tuple[int, int], channels: int) -> int:
    return size[0] * size[1] * channels


def estimate_bytes(analysis: Analysis, batch_size: int, dtype: str, mode: str) -> int:
    """Bytes one step of `batch_size` images needs (see the module docstring for the model)."""
    params = analysis.params
    weights = 4 * params + (2 * params if dtype != "float32" else 0)
    largest_pair = max(
        (_elements(layer.input_size, layer.in_channels) + _elements(layer.output_size, layer.out_channels))
        for layer in analysis.layers
    )
    per_image = 2 * largest_pair
    if mode == "training":
        weights += 4 * params  # gradients (plain SGD keeps no optimiser state)
        per_image = largest_pair + sum(_elements(layer.output_size, layer.out_channels) for layer in analysis.layers)
    return weights + batch_size * per_image * ACTIVATION_BYTES[dtype] + WORKSPACE_BYTES


def available_bytes(device: str) -> int:
    """Free memory of `device`: the CUDA allocator's free bytes, or the host's MemAvailable."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(analysis: Analysis, batch_sizes: list[int], dtype: str, mode: str, device: str) -> dict[int, int]:
    """Estimates per batch size; raises `DoesNotFitError` (field ``batch_sizes[i]``) for the first that does not fit."""
    free = available_bytes(device)
    estimates: dict[int, int] = {}
    for index, batch_size in enumerate(batch_sizes):
        need = estimate_bytes(analysis, batch_size, dtype, mode)
        if need > free:
            raise DoesNotFitError(
                f"batch size {batch_size} needs an estimated {need / 2**30:.2f} GiB for {mode} in {dtype}, "
                f"but {device} has {free / 2**30:.2f} GiB available; use a smaller batch size or image",
                field=f"batch_sizes[{index}]",
            )
        estimates[batch_size] = need
    return estimates


__all__ = ["BenchmarkError", "DoesNotFitError", "available_bytes", "check_fits", "estimate_bytes"]
