"""Solver benchmark: planning time against the image size and validation time against the layer count.

Run: ``.venv/bin/python benchmarks/solver_bench.py`` (``--repeat N`` for more repetitions). Prints a
Markdown report: the environment, the median time per call of `plan_stages` and `make_plan` for
z = 2^5 .. 2^20, of `validate` for sequential chains and residual graphs of 10 .. 10,000 layers, and
the growth ratios (planning should grow about logarithmically in z, validation about linearly in the
number of layers). Figures, not assertions: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnnplan.solver import PlanRequest, make_plan, plan_stages, validate

LAYER_COUNTS = (10, 100, 1_000, 10_000)


def median_seconds(call: Callable[[], object], repeat: int, budget: float = 0.2) -> tuple[float, float, float]:
    """(CPU, wall, best CPU) seconds per call: the medians over `repeat` rounds of the mean time per
    call, each round about `budget` / repeat s, and the fastest round's CPU time. CPU time (this
    thread's) is the figure to read on a shared machine: wall time also counts the time other
    processes hold the cores; the fastest round is the closest to a quiet machine."""
    start = time.thread_time()
    call()
    once = max(time.thread_time() - start, 1e-7)
    number = max(1, int(budget / repeat / once))
    cpu, wall = [], []
    for _ in range(repeat):
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        for _ in range(number):
            call()
        cpu.append((time.thread_time() - start_cpu) / number)
        wall.append((time.perf_counter() - start_wall) / number)
    return statistics.median(cpu), statistics.median(wall), min(cpu)


def sequential_chain(layers: int) -> list[dict]:
    """conv 3x3 'same' + BN + ReLU repeated, cut to `layers` nodes, as JSON-like dicts (as a request sends)."""
    pattern = [
        {"type": "conv", "kernel_size": 3, "padding": "same", "out_channels": 16},
        {"type": "bn"},
        {"type": "relu"},
    ]
    return [dict(pattern[i % 3]) for i in range(layers)]


def residual_graph(layers: int) -> list[dict]:
    """A 16-channel stem conv, then residual blocks conv-bn-relu-conv-bn-add(shortcut)-relu (7 nodes
    each), cut to `layers` nodes."""
    nodes: list[dict] = [{"type": "conv", "kernel_size": 3, "padding": 1, "out_channels": 16, "name": "stem"}]
    previous = "stem"
    block = 0
    while len(nodes) < layers:
        name = f"b{block}"
        nodes += [
            {
                "type": "conv",
                "kernel_size": 3,
                "padding": 1,
                "out_channels": 16,
                "name": f"{name}.conv1",
                "inputs": [previous],
            },
            {"type": "bn", "name": f"{name}.bn1"},
            {"type": "relu", "name": f"{name}.relu1"},
            {"type": "conv", "kernel_size": 3, "padding": 1, "out_channels": 16, "name": f"{name}.conv2"},
            {"type": "bn", "name": f"{name}.bn2"},
            {"type": "add", "name": f"{name}.add", "inputs": [f"{name}.bn2", previous]},
            {"type": "relu", "name": f"{name}.relu"},
        ]
        previous = f"{name}.relu"
        block += 1
    return nodes[:layers]


def environment() -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores (load average at start: {load})",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.system()} {platform.release()}",
    ]


def microseconds(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds per figure (the median is reported)")
    args = parser.parse_args()
    print("## Solver benchmark\n")
    print("\n".join(environment()))
    print(f"- {args.repeat} rounds per figure, median of the per-call mean; CPU = this thread's CPU time\n")

    print(
        "| z | log2 z | stages n | plan_stages CPU (us) | make_plan CPU (us) | make_plan wall (us) | make_plan best CPU (us) | depth | layers |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    planning = {}
    for exponent in range(5, 21):
        z = 2**exponent
        stages_time, _, _ = median_seconds(lambda z=z: plan_stages(z), args.repeat)
        plan_time, plan_wall, plan_best = median_seconds(lambda z=z: make_plan(PlanRequest(z)), args.repeat)
        plan = make_plan(PlanRequest(z))
        planning[exponent] = (stages_time, plan_time)
        print(
            f"| {z:,} | {exponent} | {len(plan.stages)} | {microseconds(stages_time)} | {microseconds(plan_time)} | "
            f"{microseconds(plan_wall)} | {microseconds(plan_best)} | {plan.depth} | {len(plan.layers)} |"
        )
    low, high = planning[5], planning[20]
    print(
        f"\nGrowth from z = 2^5 to 2^20 (log2 z: 5 -> 20, stages: {len(plan_stages(2**5).stages)} -> "
        f"{len(plan_stages(2**20).stages)}): plan_stages x{high[0] / low[0]:.1f}, make_plan x{high[1] / low[1]:.1f}.\n"
    )

    print("Smallest accepted t (1/64: about 64 layers per stage, the planner's worst case):\n")
    print("| z | k | plan_stages CPU (ms) | depth | stages |")
    print("|---:|---:|---:|---:|---:|")
    for z, k in ((2**10, 3), (2**20, 3), (2**20, 31)):
        worst, _, _ = median_seconds(lambda z=z, k=k: plan_stages(z, k, "1/64"), 3, budget=0.5)
        plan = plan_stages(z, k, "1/64")
        print(f"| {z:,} | {k} | {worst * 1e3:.1f} | {plan.depth} | {len(plan.stages)} |")
    print()

    print(
        "| layers | chain validate CPU (ms) | per layer (us) | chain wall (ms) | residual graph CPU (ms) | per layer (us) | graph wall (ms) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    validation = {}
    for count in LAYER_COUNTS:
        chain, graph = sequential_chain(count), residual_graph(count)
        chain_time, chain_wall, _ = median_seconds(lambda chain=chain: validate(chain, 64), args.repeat, budget=0.5)
        graph_time, graph_wall, _ = median_seconds(lambda graph=graph: validate(graph, 64), args.repeat, budget=0.5)
        validation[count] = (chain_time, graph_time)
        print(
            f"| {count:,} | {chain_time * 1e3:.2f} | {chain_time / count * 1e6:.1f} | {chain_wall * 1e3:.2f} | "
            f"{graph_time * 1e3:.2f} | {graph_time / count * 1e6:.1f} | {graph_wall * 1e3:.2f} |"
        )
    ratios = [
        f"{small:,} -> {large:,}: chain x{validation[large][0] / validation[small][0]:.1f}, "
        f"graph x{validation[large][1] / validation[small][1]:.1f}"
        for small, large in pairwise(LAYER_COUNTS)
    ]
    print("\nGrowth of CPU time per 10x layers (linear = x10): " + "; ".join(ratios) + ".")
    print(f"\nLoad average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
