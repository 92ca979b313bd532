"""Cost of the width search under a compute budget, against the same plan without one (docs/blocks.md).

Run: ``.venv/bin/python benchmarks/budget_search.py``. The cases are the largest the API accepts for the
search (image side 2^20, t = 1/64: 681 spatial convolutions, about 6000 graph nodes; a base width that
makes the binary search take about 20 steps). Prints seconds and the ratio budget / no budget.
"""

from __future__ import annotations

import time

from cnnplan.solver import Plan, PlanRequest, WidthRule, make_plan

CASES = (
    ("bottleneck", WidthRule(250_000, 2, 250_000), {"max_flops": 10**17}),
    ("inverted_residual", WidthRule(60_000, 2, 60_000), {"max_params": 10**12}),
)


def seconds(request: PlanRequest) -> tuple[float, Plan]:
    started = time.perf_counter()
    plan = make_plan(request)
    return time.perf_counter() - started, plan


def main() -> None:
    for block, widths, budget in CASES:
        spent, plan = seconds(PlanRequest(2**20, min_c_value="1/64", block=block, widths=widths, **budget))
        bare, _ = seconds(PlanRequest(2**20, min_c_value="1/64", block=block, widths=plan.widths))
        print(
            f"{block:18} base {widths.base:>7} {budget}: {len(plan.layers)} nodes, chosen base "
            f"{plan.widths.base}; {spent:.2f} s with the budget, {bare:.2f} s without: ratio {spent / bare:.1f}"
        )


if __name__ == "__main__":
    main()
