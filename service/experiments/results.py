"""An experiment's result: its runs (architecture x seed) aggregated per architecture, and the table.

Per architecture, over the seeds whose run succeeded: mean, sample standard deviation (n - 1; 0 for one
run), min and max of the test accuracy; means of train accuracy, losses and wall time.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from cnnplan.service.experiments.spec import ExperimentSpec

MEASURES = ("test_accuracy", "train_accuracy", "test_loss", "train_loss", "wall_seconds")


def run_record(spec: ExperimentSpec, index: int, seed: int) -> dict[str, Any]:
    """The queued run of architecture `index` and `seed` (its measurements are filled in when it ends)."""
    summary = spec.architectures[index].summary()
    return {
        "architecture": summary["name"], "architecture_index": index, "seed": seed, "status": "queued",
        "progress": 0.0, "depth": summary["depth"], "valid": summary["valid"], "groups": summary["groups"],
        "params": summary["params"], "flops": summary["flops"],
        **dict.fromkeys(MEASURES), "error": None,
    }  # fmt: skip


def _stats(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": spread, "min": min(values), "max": max(values), "n": len(values)}


def environment() -> dict[str, Any]:
    """Where the runs were measured: CPU model and count, torch version and threads, device."""
    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            info["cpu"] = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), None
            )
    except OSError:
        info["cpu"] = platform.processor() or None
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # the API process may run without torch
        pass
    return info


def aggregate(
    spec: ExperimentSpec, runs: Sequence[dict[str, Any]], env: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The result document: per-architecture summaries with statistics over seeds, and every run."""
    request = spec.request
    architectures = []
    for index, architecture in enumerate(spec.architectures):
        mine = [run for run in runs if run["architecture_index"] == index and run["status"] == "succeeded"]
        entry = architecture.summary()
        for name in MEASURES:
            entry[name] = _stats([float(run[name]) for run in mine])
        architectures.append(entry)
    plan = spec.architectures[0].summary()
    return {
        "dataset": request.dataset,
        "dataset_options": spec.dataset_options,
        "image_size": request.image_size,
        "num_classes": spec.num_classes,
        "chance_accuracy": 1 / spec.num_classes,
        "min_c_value": plan["t_values"][0] if plan["t_values"] else None,
        "plan": {
            "name": plan["name"],
            "stages": plan["stages"],
            "depth": plan["depth"],
            "top_receptive_field": plan["top_receptive_field"],
        },  # fmt: skip
        "architectures": architectures,
        "runs": list(runs),
        "environment": env if env is not None else environment(),
    }


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table: one row per architecture, test accuracy mean +- std over seeds."""
    lines = [
        "| architecture | groups | depth | verdict | top r | min c | params | test acc. (mean ± std, n) | train acc. | s/run |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in sorted(result["architectures"], key=lambda e: (e["depth"], e["name"])):
        test, train, wall = entry["test_accuracy"], entry["train_accuracy"], entry["wall_seconds"]
        verdict = (
            "valid"
            if entry["valid"]
            else "breaks " + " + ".join({"c_value": "c ≥ t", "receptive_field": "r ≤ z"}[b] for b in entry["breaks"])
        )
        accuracy = "—" if test["mean"] is None else f"{test['mean']:.3f} ± {test['std']:.3f} ({test['n']})"
        r = entry["top_receptive_field"]  # [h, w]: one number when both axes agree
        top_r = "—" if r is None else r[0] if r[0] == r[1] else f"{r[0]}x{r[1]}"
        lines.append(
            f"| {entry['name']} | {', '.join(entry['groups'])} | {entry['depth']} | {verdict} | "
            f"{top_r} | {entry['min_c_value']} | {entry['params']:,} | {accuracy} | "
            f"{'—' if train['mean'] is None else format(train['mean'], '.3f')} | "
            f"{'—' if wall['mean'] is None else format(wall['mean'], '.0f')} |"
        )
    return "\n".join(lines)


_SAME = ("dataset", "dataset_options", "image_size", "num_classes", "min_c_value", "plan")


def merge_results(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result from several of the same task (dataset, options, z, t, plan): architectures by name
    and runs by (architecture, seed), the first occurrence kept; ``merged_from`` counts the inputs.
    Raises ValueError when two results are not of the same task."""
    first = results[0]
    for other in results[1:]:
        for name in _SAME:
            if other.get(name) != first.get(name):
                raise ValueError(
                    f"cannot merge results that differ in {name}: {first.get(name)!r} vs {other.get(name)!r}"
                )
    merged = {**first, "architectures": [], "runs": [], "merged_from": len(results)}
    names: set[str] = set()
    keys: set[tuple[str, int]] = set()
    for result in results:
        for entry in result["architectures"]:
            if entry["name"] not in names:
                names.add(entry["name"])
                merged["architectures"].append(entry)
        for run in result["runs"]:
            if (run["architecture"], run["seed"]) not in keys:
                keys.add((run["architecture"], run["seed"]))
                merged["runs"].append(run)
    return merged


__all__ = ["MEASURES", "aggregate", "environment", "format_table", "merge_results", "run_record"]
