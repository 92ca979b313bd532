"""The experiment figure: test accuracy against depth (error bars over seeds), the plan marked, the
depths that break the constraints shaded, and the t-sweep (matplotlib, headless, as the plan diagrams).

Shading (the planner's family: 3x3 'same' convolutions, 2x2 pools between stages): past the plan's
depth D every network of the family breaks a constraint (the plan is the optimum); past
``(z - 1) // (k - 1)`` even a single stage has r > z, so constraint 2 is broken whatever the stages.
Each point's own verdict is its marker.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

_STYLE = {
    "valid": ("#1f77b4", "o", "valid (both constraints hold)"),
    "c_value": ("#ff7f0e", "^", "breaks constraint 1 (c < t)"),
    "receptive_field": ("#d62728", "s", "breaks constraint 2 (r > z)"),
    "both": ("#7b2d8e", "X", "breaks both"),
}


def _verdict(entry: dict[str, Any]) -> str:
    breaks = set(entry["breaks"])
    if not breaks:
        return "valid"
    return "both" if len(breaks) > 1 else next(iter(breaks))


def _measured(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in result["architectures"] if entry["test_accuracy"]["mean"] is not None]


def _seed_values(result: dict[str, Any], name: str) -> list[float]:
    """The test accuracy of every succeeded run of architecture `name`."""
    return [run["test_accuracy"] for run in result["runs"]
            if run["architecture"] == name and run["status"] == "succeeded"]  # fmt: skip


def _depth_panel(axes: Any, result: dict[str, Any], kernel_size: int = 3) -> None:
    entries = _measured(result)
    plan_depth, side = result["plan"]["depth"], result["image_size"]
    necessity_depth = (side - 1) // (kernel_size - 1)
    top = max([plan_depth + 2, necessity_depth + 2, *(e["depth"] + 1 for e in entries)])
    axes.axvspan(plan_depth + 0.5, top + 0.5, color="#fde2c8", zorder=0,
                 label=f"depth > {plan_depth}: no network of the family satisfies both")  # fmt: skip
    if necessity_depth + 0.5 < top + 0.5:
        axes.axvspan(necessity_depth + 0.5, top + 0.5, color="#f6b8b8", zorder=0,
                     label=f"depth > {necessity_depth}: r > z = {side} for every network (constraint 2)")  # fmt: skip
    axes.axvline(plan_depth, color="#2ca02c", linewidth=1.6, linestyle="--", zorder=1,
                 label=f"planner's depth D = {plan_depth}")  # fmt: skip
    axes.axhline(result["chance_accuracy"], color="#888888", linewidth=1, linestyle=":", label="chance")
    shown: set[str] = set()
    same_depth: dict[int, list[str]] = {}
    for entry in entries:
        same_depth.setdefault(entry["depth"], []).append(entry["name"])
    for entry in entries:
        peers = same_depth[entry["depth"]]
        x = entry["depth"] + 0.22 * (peers.index(entry["name"]) - (len(peers) - 1) / 2)  # side by side at one depth
        verdict = _verdict(entry)
        colour, marker, label = _STYLE[verdict]
        test = entry["test_accuracy"]
        is_plan = "planned" in entry["groups"]
        axes.errorbar(
            x, test["mean"], yerr=test["std"], fmt=marker, color=colour, ecolor=colour,
            markersize=11 if is_plan else 7, markeredgecolor="black" if is_plan else colour, capsize=3, zorder=3,
            label=None if verdict in shown else label,
        )  # fmt: skip
        shown.add(verdict)
        seeds = _seed_values(result, entry["name"])
        axes.scatter([x] * len(seeds), seeds, s=9, facecolors="none", edgecolors=colour, linewidths=0.7, zorder=2,
                     label=None if "seeds" in shown else "one seed")  # fmt: skip
        shown.add("seeds")
        text = entry["name"] + (" baseline" if "baseline" in entry["groups"] else "")
        axes.annotate(text, (x, test["mean"]), textcoords="offset points", xytext=(6, -3),
                      fontsize=7, color="#333333", zorder=4)  # fmt: skip
    axes.set_xlim(0.5, top + 0.5)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("depth (feature-level convolutions)")
    axes.set_ylabel("test accuracy (mean ± std over seeds; circles: each seed)")
    axes.grid(color="#e5e5e5", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=3, frameon=False)


def _t_panel(axes: Any, result: dict[str, Any]) -> None:
    points = []
    for entry in _measured(result):
        for t in entry.get("t_values", []):
            points.append((Fraction(t), entry))
    points.sort(key=lambda point: -point[0])
    for position, (_t, entry) in enumerate(points):
        test = entry["test_accuracy"]
        colour, marker, _label = _STYLE[_verdict(entry)]
        is_default = "planned" in entry["groups"]
        axes.errorbar(position, test["mean"], yerr=test["std"], fmt=marker, color=colour, capsize=3,
                      markersize=11 if is_default else 7, markeredgecolor="black" if is_default else colour)  # fmt: skip
        seeds = _seed_values(result, entry["name"])
        axes.scatter([position] * len(seeds), seeds, s=9, facecolors="none", edgecolors=colour, linewidths=0.7)
        axes.annotate(f"{entry['name']}\nD={entry['depth']}", (position, test["mean"]), textcoords="offset points",
                      xytext=(0, -26), ha="center", fontsize=7)  # fmt: skip
    axes.axhline(result["chance_accuracy"], color="#888888", linewidth=1, linestyle=":")
    axes.set_xticks(range(len(points)), [f"t = {t.numerator}/{t.denominator}" for t, _ in points], fontsize=8)
    axes.set_xlim(-0.6, max(len(points) - 0.4, 0.6))
    axes.set_ylim(0, 1.05)
    axes.set_title("t-sweep: the planner's network for each t", fontsize=9)
    axes.set_xlabel("minimum c-value t of the plan (marker: its verdict at the experiment's t)", fontsize=8)
    axes.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    axes.set_axisbelow(True)


def experiment_figure(result: dict[str, Any]) -> Figure:
    """Accuracy against depth (left) and the t-sweep (right) of a result document."""
    has_sweep = any(entry.get("t_values") for entry in _measured(result))
    figure = Figure(figsize=(13, 5.6) if has_sweep else (9, 5.6), layout="constrained")
    if has_sweep:
        depth_axes, t_axes = figure.subplots(1, 2, width_ratios=(1.8, 1), sharey=True)
        _t_panel(t_axes, result)
    else:
        depth_axes = figure.subplots(1, 1)
    _depth_panel(depth_axes, result)
    seeds = max((entry["test_accuracy"]["n"] for entry in _measured(result)), default=0)
    options = ", ".join(f"{k}={v}" for k, v in sorted(result.get("dataset_options", {}).items()))
    figure.suptitle(
        f"{result['dataset']} ({options}), z = {result['image_size']}, {result['num_classes']} classes, "
        f"t = {result.get('min_c_value')}; up to {seeds} seeds per point",
        fontsize=10,
    )
    return figure


def experiment_image(result: dict[str, Any], image_format: str = "svg") -> bytes:
    """The figure rendered as SVG (text kept as text) or PNG bytes."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "cnnplan"}):
        experiment_figure(result).savefig(buffer, format=image_format, dpi=110)
    return buffer.getvalue()


__all__ = ["experiment_figure", "experiment_image"]
