"""How much of a naive CNN search space the theory removes: count the feasible stage tuples exactly.

The naive space: 1..MAX_STAGES stages of 1..MAX_LAYERS k x k 'same' convolutions (k in KERNELS), a 2x2
stride-2 max pool between stages. A tuple is feasible when every convolution has c >= t, the top
receptive field is <= z and no feature map vanishes (docs/theory.md, sections 1-3). Both constraints only get
worse as layers are appended, so a depth-first walk over prefixes that stops at the first violation
counts the feasible tuples exactly without enumerating the (hundreds of millions of) others.

    .venv/bin/python examples/search_space.py --image-size 224 [--plot docs/search_space.svg]
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnplan.solver import arithmetic as ar
from cnnplan.solver import parse_min_c_value

KERNELS = (3, 5, 7)
MAX_STAGES = 8
MAX_LAYERS = 10


def feasible_tuples(
    image_size: int, kernel: int, t: Fraction, max_stages: int = MAX_STAGES, max_layers: int = MAX_LAYERS
):
    """Yield every feasible stage tuple (a_1, ..., a_n), n <= max_stages, 1 <= a_i <= max_layers."""

    def walk(prefix: tuple[int, ...], receptive_field: int, jump: int, side: int):
        # Start a new stage at (receptive_field, jump, side); try 1..max_layers convolutions in it.
        r = receptive_field
        for count in range(1, max_layers + 1):
            r = ar.next_receptive_field(r, kernel, jump)
            if ar.c_value(kernel, jump, r) < t or r > image_size:
                return  # this and every longer stage break a constraint
            stages = prefix + (count,)
            yield stages
            if len(stages) < max_stages and side // 2 >= 1:
                pooled_r = ar.next_receptive_field(r, 2, jump)
                yield from walk(stages, pooled_r, jump * 2, side // 2)

    yield from walk((), 1, 1, image_size)


def naive_total(max_stages: int = MAX_STAGES, max_layers: int = MAX_LAYERS) -> int:
    """Number of stage tuples with 1..max_stages stages of 1..max_layers layers."""
    return sum(max_layers**n for n in range(1, max_stages + 1))


def count_by_stages(image_size: int, t: Fraction) -> dict[int, dict[int, int]]:
    """{kernel: {stage count: feasible tuples}}."""
    counts: dict[int, dict[int, int]] = {}
    for kernel in KERNELS:
        per_n = dict.fromkeys(range(1, MAX_STAGES + 1), 0)
        for stages in feasible_tuples(image_size, kernel, t):
            per_n[len(stages)] += 1
        counts[kernel] = per_n
    return counts


def plot(counts: dict[int, dict[int, int]], image_size: int, path: str) -> None:
    """Log-scale bars: naive tuples vs feasible tuples per stage count and kernel."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.2), layout="constrained")
    axes = figure.subplots()
    stages = list(range(1, MAX_STAGES + 1))
    width = 0.2
    axes.bar([n - 1.5 * width for n in stages], [MAX_LAYERS**n for n in stages], width, color="#bbbbbb", label="naive")
    for offset, (kernel, colour) in enumerate(zip(KERNELS, ("#1f77b4", "#ff7f0e", "#2ca02c"))):
        values = [counts[kernel][n] or float("nan") for n in stages]  # none feasible: no bar
        axes.bar(
            [n + (offset - 0.5) * width for n in stages], values, width, color=colour, label=f"feasible, k={kernel}"
        )
    axes.set_yscale("log")
    axes.set_ylim(0.7, MAX_LAYERS ** (MAX_STAGES + 0.5))
    axes.set_xticks(stages)
    axes.set_xlabel("number of stages")
    axes.set_ylabel("stage tuples (log scale)")
    axes.set_title(f"Stage tuples with 1..{MAX_LAYERS} layers per stage at z={image_size}: naive vs theory-feasible")
    axes.legend(fontsize=8, frameon=False, ncols=4, loc="upper left")
    with matplotlib.rc_context({"svg.hashsalt": "cnnplan", "svg.fonttype": "path"}):
        figure.savefig(path, metadata={"Date": None} if path.endswith(".svg") else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--min-c-value", default="1/6")
    parser.add_argument("--plot", help="write the bar chart (SVG or PNG by suffix)")
    args = parser.parse_args(argv)
    t = parse_min_c_value(args.min_c_value)
    counts = count_by_stages(args.image_size, t)
    total_naive = naive_total() * len(KERNELS)
    total_feasible = sum(sum(per_n.values()) for per_n in counts.values())
    print(f"z={args.image_size}, t={t}, stages 1..{MAX_STAGES} of 1..{MAX_LAYERS} layers, k in {KERNELS}, 2x2 max pool")
    for kernel in KERNELS:
        feasible = sum(counts[kernel].values())
        print(f"  k={kernel}: {feasible} feasible of {naive_total()} ({feasible / naive_total():.6%})")
    print(
        f"total: {total_feasible} feasible of {total_naive} "
        f"({total_feasible / total_naive:.6%}); the theory removes {1 - total_feasible / total_naive:.6%}"
    )
    if args.plot:
        plot(counts, args.image_size, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
