"""Measure a network on the device it lands on: warm-up, synchronised timed repetitions, percentiles.

Timing follows the usual practice of PyTorch benchmark scripts: `warmup` untimed steps first, then
`iterations` steps each timed on its own (CUDA events recorded on the stream and read after a
synchronisation on GPU; `time.perf_counter` around each synchronous step on CPU). A step is one
forward pass (``inference``, under `torch.inference_mode`) or forward + cross-entropy + backward +
SGD update (``training``). Achieved FLOP/s counts 1x (inference) or 3x (training) the solver's
forward FLOPs, the usual convention.
"""

from __future__ import annotations

import gc
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from cnnplan.service.worker.builder import GraphNet, analyse_architecture
from cnnplan.service.worker.memory import BenchmarkError, check_fits
from cnnplan.service.worker.spec import NetworkSpec

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class JobCancelled(Exception):
    """Raised between steps when the job was cancelled."""


@dataclass(frozen=True)
class BenchmarkOptions:
    """What to measure; the API checks the ranges (see `cnnplan.service.worker.jobs.check_limits`)."""

    device: str = "auto"
    dtype: str = "float32"
    channels_last: bool = False
    compile: bool = False
    mode: str = "inference"
    batch_sizes: tuple[int, ...] = (1,)
    warmup: int = 2
    iterations: int = 10
    seed: int = field(default=0)


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without one is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("device 'cuda' was requested but this worker has no CUDA device", field="device")
    return name


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _driver_version() -> str | None:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        out = subprocess.run(
            [executable, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def environment(device: str) -> dict[str, Any]:
    """Device name, torch, CUDA, cuDNN and driver versions, threads, Python."""
    cuda = device.startswith("cuda")
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name(torch.device(device)) if cuda else _cpu_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "driver": _driver_version() if cuda else None,
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), q in [0, 100]."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text
                                                or "not enough memory" in text)  # fmt: skip


def _peak_memory(device: str) -> int:
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated(torch.device(device)))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


class Runner:
    """One model on one device; `measure` times one batch size."""

    def __init__(
        self, model: nn.Module, options: BenchmarkOptions, device: str, in_shape: tuple[int, int, int], classes: int
    ) -> None:
        self.options, self.device, self.in_shape, self.classes = options, device, in_shape, classes
        self.memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
        model = model.to(device=device, memory_format=self.memory_format)  # type: ignore[call-overload]  # torch's stubs omit memory_format
        model.train(options.mode == "training")
        self.model = model
        self.step_model = torch.compile(model) if options.compile else model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=1e-3) if options.mode == "training" else None
        self.device_type = "cuda" if device.startswith("cuda") else "cpu"

    def _autocast(self):
        dtype = self.options.dtype
        return nullcontext() if dtype == "float32" else torch.autocast(self.device_type, dtype=DTYPES[dtype])

    def _sync(self) -> None:
        if self.device_type == "cuda":
            torch.cuda.synchronize(torch.device(self.device))

    def step(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        """One inference forward pass, or one training step."""
        if self.optimizer is None:
            with torch.inference_mode(), self._autocast():
                self.step_model(images)
            return
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = nn.functional.cross_entropy(self.step_model(images).float(), targets)
        loss.backward()
        self.optimizer.step()

    def measure(self, batch_size: int, tick: Callable[[], None]) -> list[float]:
        """Latencies in seconds of `iterations` timed steps after `warmup` untimed ones."""
        generator = torch.Generator().manual_seed(self.options.seed)
        images = torch.randn(batch_size, *self.in_shape, generator=generator)
        images = images.to(device=self.device).contiguous(memory_format=self.memory_format)
        targets = torch.randint(0, self.classes, (batch_size,), generator=generator).to(self.device)
        if self.device_type == "cuda":
            torch.cuda.reset_peak_memory_stats(torch.device(self.device))
        for _ in range(self.options.warmup):
            self.step(images, targets)
            tick()
        self._sync()
        latencies: list[float] = []
        for _ in range(self.options.iterations):
            if self.device_type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                self.step(images, targets)
                end.record()
                end.synchronize()
                latencies.append(start.elapsed_time(end) / 1000)
            else:
                began = time.perf_counter()
                self.step(images, targets)
                latencies.append(time.perf_counter() - began)
            tick()
        return latencies


def run_benchmark(
    spec: NetworkSpec,
    options: BenchmarkOptions,
    progress: Callable[[float], None] = lambda fraction: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Refuse what cannot fit, build, measure every batch size; the result document of a job.

    Raises `BenchmarkError` (with the option at fault) for a refused or out-of-memory job and
    `JobCancelled` when `cancelled()` turns true between steps.
    """
    device = resolve_device(options.device)
    if options.dtype not in DTYPES:
        raise BenchmarkError(f"unknown dtype {options.dtype!r}", field="dtype")
    nodes, analysis = analyse_architecture(spec.layers, spec.image_size, spec.in_channels)
    estimates = check_fits(analysis, list(options.batch_sizes), options.dtype, options.mode, device)
    torch.manual_seed(options.seed)
    total = len(options.batch_sizes) * (options.warmup + options.iterations)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        progress(done / total)
        if cancelled():
            raise JobCancelled()

    flops_per_image = analysis.flops * (3 if options.mode == "training" else 1)
    rows: list[dict[str, Any]] = []
    runner: Runner | None = None
    batch_size = 0
    try:
        model = GraphNet(nodes, analysis)
        out = analysis.layers[model.output]
        classes = out.out_channels * out.output_size[0] * out.output_size[1]
        runner = Runner(model, options, device, (spec.in_channels, *analysis.image_size), classes)
        for batch_size in options.batch_sizes:
            latencies = runner.measure(batch_size, tick)
            mean = sum(latencies) / len(latencies)
            rows.append(
                {
                    "batch_size": batch_size,
                    "latency_ms_p50": percentile(latencies, 50) * 1000,
                    "latency_ms_p90": percentile(latencies, 90) * 1000,
                    "images_per_second": batch_size / mean,
                    "tflops_per_second": flops_per_image * batch_size / mean / 1e12,
                    "peak_memory_bytes": _peak_memory(device),
                    "memory_estimate_bytes": estimates[batch_size],
                }
            )
    except (RuntimeError, MemoryError) as error:
        if not _is_out_of_memory(error):
            raise
        del runner, error
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        raise BenchmarkError(
            f"out of memory on {device} at batch size {batch_size}; the worker freed the memory and is healthy, "
            "retry with a smaller batch size",
            field="batch_sizes",
        ) from None
    finally:
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return {
        "params": analysis.params,
        "flops": analysis.flops,
        "image_size": list(analysis.image_size),
        "in_channels": spec.in_channels,
        "options": {**asdict(options), "batch_sizes": list(options.batch_sizes), "device": device},
        "environment": environment(device),
        "results": rows,
    }


__all__ = ["BenchmarkOptions", "JobCancelled", "environment", "percentile", "resolve_device", "run_benchmark"]
