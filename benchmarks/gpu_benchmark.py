#!/usr/bin/env python3
"""Benchmark planned networks end to end on one GPU (a few minutes), or on CPU with a clear note.

Runs the same code path as a benchmark job (`cnnplan.service.worker.benchmark.run_benchmark`, no queue):
several plans (default widths 64 -> 512), batch sizes, float32 / bfloat16, channels-last and
torch.compile on and off, inference and one training row, and prints a table naming the device.

    python benchmarks/gpu_benchmark.py                 # GPU: the full matrix; CPU: a tiny one
    python benchmarks/gpu_benchmark.py --quick         # the tiny matrix (what CI and this repo ran on CPU)
    python benchmarks/gpu_benchmark.py --json out.json --markdown
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnplan.service.worker.benchmark import BenchmarkOptions, environment, resolve_device, run_benchmark  # noqa: E402
from cnnplan.service.worker.memory import BenchmarkError  # noqa: E402
from cnnplan.service.worker.spec import network_spec  # noqa: E402

FULL = {
    "plans": [{"image_size": 64}, {"image_size": 128}, {"image_size": 224}],
    "batch_sizes": (32, 128),
    "warmup": 5,
    "iterations": 20,
    # (mode, dtype, channels_last, compile, only on the largest plan)
    "variants": [
        ("inference", "float32", False, False, False),
        ("inference", "float32", True, False, False),
        ("inference", "bfloat16", True, False, False),
        ("inference", "bfloat16", True, True, True),
        ("training", "bfloat16", True, False, True),
    ],
}
QUICK = {
    "plans": [{"image_size": 32, "widths": {"base": 8, "multiplier": 2, "max_width": 32}, "num_classes": 10},
              {"image_size": 64, "widths": {"base": 8, "multiplier": 2, "max_width": 32}, "num_classes": 10}],
    "batch_sizes": (1, 8),
    "warmup": 2,
    "iterations": 5,
    "variants": [
        ("inference", "float32", False, False, False),
        ("inference", "float32", True, False, False),
        ("inference", "bfloat16", True, False, False),
        ("training", "float32", False, False, True),
    ],
}  # fmt: skip


def rows_for(matrix: dict, device: str, compile_allowed: bool) -> list[dict]:
    """Run every (plan, variant) of `matrix`; one row per batch size (errors become rows too)."""
    rows = []
    largest = matrix["plans"][-1]
    for plan in matrix["plans"]:
        spec = network_spec({"plan": plan})
        for mode, dtype, channels_last, compile_, largest_only in matrix["variants"]:
            if (largest_only and plan is not largest) or (compile_ and not compile_allowed):
                continue
            options = BenchmarkOptions(
                device=device, dtype=dtype, channels_last=channels_last, compile=compile_, mode=mode,
                batch_sizes=tuple(matrix["batch_sizes"]), warmup=matrix["warmup"], iterations=matrix["iterations"],
            )  # fmt: skip
            began = time.perf_counter()
            base = {"image": plan["image_size"], "mode": mode, "dtype": dtype, "channels_last": channels_last,
                    "compile": compile_}  # fmt: skip
            try:
                result = run_benchmark(spec, options)
            except BenchmarkError as error:
                rows.append({**base, "error": str(error)})
                continue
            for row in result["results"]:
                rows.append({**base, "params": result["params"], "gflops_per_image": result["flops"] / 1e9, **row})
            print(f"  done {base} in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return rows


COLUMNS = [("image", "{}"), ("mode", "{}"), ("dtype", "{}"), ("channels_last", "{}"), ("compile", "{}"),
           ("batch_size", "{}"), ("latency_ms_p50", "{:.2f}"), ("latency_ms_p90", "{:.2f}"),
           ("images_per_second", "{:.1f}"), ("tflops_per_second", "{:.3g}"), ("peak_memory_bytes", "{}")]  # fmt: skip


def cell(row: dict, name: str, fmt: str) -> str:
    if name not in row:
        return row.get("error", "-")[:60] if name == "latency_ms_p50" else "-"
    value = row[name]
    return f"{value / 2**20:.0f} MiB" if name == "peak_memory_bytes" else fmt.format(value)


def table(rows: list[dict], markdown: bool) -> str:
    headers = [name for name, _ in COLUMNS]
    cells = [[cell(row, name, fmt) for name, fmt in COLUMNS] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="The tiny matrix (default on CPU).")
    parser.add_argument("--no-compile", action="store_true", help="Skip the torch.compile rows.")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown (for docs/benchmarks.md).")
    parser.add_argument("--json", type=Path, help="Also write the rows and the environment as JSON.")
    args = parser.parse_args()
    device = resolve_device(args.device)
    env = environment(device)
    on_gpu = device.startswith("cuda")
    matrix = QUICK if args.quick or not on_gpu else FULL
    if not on_gpu:
        print("NOTE: no CUDA device: CPU fallback with the tiny matrix; these are CPU figures, not GPU figures.")
    print(f"device: {env['device']} ({env['device_name']}); torch {env['torch']}, CUDA {env['cuda'] or '-'}, "
          f"cuDNN {env['cudnn'] or '-'}, driver {env['driver'] or '-'}, {env['cpu_threads']} CPU threads")  # fmt: skip
    began = time.perf_counter()
    rows = rows_for(matrix, device, compile_allowed=on_gpu and not args.no_compile)
    print(table(rows, args.markdown))
    print(f"total {time.perf_counter() - began:.0f} s; peak memory: CUDA allocator on GPU, process peak RSS on CPU")
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "rows": rows}, indent=2))
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
