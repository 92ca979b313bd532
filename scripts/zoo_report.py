"""Write docs/zoo.md: every zoo preset checked against the theory at its native resolution, next to the plan.

    python scripts/zoo_report.py [--output docs/zoo.md]

Reads only package data (solver/zoo_presets.json, written by scripts/zoo_presets.py) and, when present,
docs/zoo_imports.json (the exporter run of scripts/zoo_imports.py); needs no torch. One row per model: depth
(feature-level convolutions), top receptive field against the image side, the smallest c-value and the layer
where it binds, violations of constraint 1 (c-value) and 2 (receptive field), depth headroom, parameters,
FLOPs; then the planner's deepest network at the same resolution (stages, depth, top receptive field).
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

from cnnplan.solver import PlanRequest, format_fraction, make_plan, preset, preset_info, preset_names, validate
from cnnplan.solver.constraints import C_VALUE, RECEPTIVE_FIELD, binding_axis, is_constrained
from cnnplan.solver.presets import preset_params
from cnnplan.solver.rational import DEFAULT_MIN_C_VALUE

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = ROOT / "docs" / "zoo_imports.json"
AXES = ("height", "width")


def _millions(value: int) -> str:
    return f"{value / 1e6:.1f} M" if value < 1e9 else f"{value / 1e9:.2f} G"


def _pair(value: object) -> str:
    """A per-axis (height, width) value as one number when both axes agree, else ``h x w``."""
    if isinstance(value, (tuple, list)):
        return str(value[0]) if value[0] == value[1] else f"{value[0]} x {value[1]}"
    return str(value)


def _compared_c(layer) -> Fraction:
    """The c-value constraint 1 compares: the binding axis's (docs/geometry.md)."""
    return layer.c_value[binding_axis(layer)]


def checked(name: str):
    """The zoo preset validated at its native resolution (default t), and that resolution."""
    size = preset_info(name)["default_image_size"]
    return validate(preset(name), size), size


def at_a_glance(names: list[str]) -> list[str]:
    """Counts over the whole table, computed from the same reports as the rows."""
    reports = [checked(name) for name in names]
    kinds = [{v.constraint for v in report.violations} for report, _ in reports]
    over = sum(RECEPTIVE_FIELD in k for k in kinds)
    starved = sum(C_VALUE in k for k in kinds)
    valid = sum(not k for k in kinds)
    deeper = sum(report.depth > make_plan(PlanRequest(size)).depth for report, size in reports)
    ratios = sorted(max(report.top_receptive_field) / max(report.receptive_field_limit) for report, _ in reports)
    median = ratios[len(ratios) // 2]
    return [
        "At a glance (computed from the rows below):",
        "",
        f"- {valid} of {len(names)} models satisfy both constraints at their native resolution.",
        f"- {over} of {len(names)} grow their top receptive field past the image (constraint 2); the median top "
        f"receptive field is {median:.1f}x the image side.",
        f"- {starved} of {len(names)} have at least one convolution below c = {format_fraction(DEFAULT_MIN_C_VALUE)} "
        "(constraint 1).",
        f"- {deeper} of {len(names)} are deeper (feature-level convolutions) than the planner's deepest valid network "
        "for the same image size.",
        "",
    ]


def row(name: str) -> str:
    """The table row of one zoo preset."""
    report, size = checked(name)
    constrained = [layer for layer in report.analysis.layers if is_constrained(layer)]
    smallest = min(constrained, key=_compared_c) if constrained else None
    binding = "-"
    if smallest is not None:
        axis = "" if smallest.c_value[0] == smallest.c_value[1] else f" ({AXES[binding_axis(smallest)]})"
        binding = f"{format_fraction(_compared_c(smallest))} at `{smallest.name}`{axis}"
    counts = {kind: sum(v.constraint == kind for v in report.violations) for kind in (C_VALUE, RECEPTIVE_FIELD)}
    params = preset_params(name) or report.analysis.params
    plan = make_plan(PlanRequest(size))
    stages = "+".join(str(a) for a in plan.stages)
    return (
        f"| {name} | {size} | {report.depth} | {_pair(report.top_receptive_field)} / "
        f"{_pair(report.receptive_field_limit)} | "
        f"{binding} | {counts[C_VALUE]} | {counts[RECEPTIVE_FIELD]} | {report.depth_headroom} | "
        f"{_millions(params)} | {_millions(report.analysis.flops)} | {plan.depth} ({stages}), r {_pair(plan.top_receptive_field)} |"
    )


def import_summary() -> list[str]:
    """The N-of-M summary of the exporter run, by family and exporter, when docs/zoo_imports.json exists."""
    if not IMPORTS.exists():
        return ["No exporter run is recorded yet (scripts/zoo_imports.py writes docs/zoo_imports.json)."]
    run = json.loads(IMPORTS.read_text())
    results = run["results"]
    scope = " (one model per family, the first in list order)" if "--sample" in run["command"] else ""
    lines = [f"Run: `{run['command']}`{scope} on {run['machine']}, {run['date']} ({run['versions']}); random "
             f"weights, native resolution, {sum(r['dynamo_seconds'] + r['torchscript_seconds'] for r in results):.0f} s "
             "of export and import in total.", ""]  # fmt: skip
    for rerun in run.get("reruns", []):
        lines[-1:-1] = ["", f"Rerun of {', '.join(rerun['only'])} (`--only`) on {rerun['machine']}, {rerun['date']} "
                        f"({rerun['versions']}); their rows below are from that run."]  # fmt: skip
    for exporter in ("dynamo", "torchscript"):
        ok = sum(r[exporter] == "ok" for r in results)
        lines.append(f"- **{exporter}**: {ok} of {len(results)} imported")
    lines += ["", "| family | models | dynamo | torchscript | first error |", "|---|---|---|---|---|"]
    families: dict[str, list[dict]] = {}
    for result in results:
        families.setdefault(f"{result['source']} {result['family']}", []).append(result)
    for family, members in families.items():
        errors = [r[e] for r in members for e in ("dynamo", "torchscript") if r[e] != "ok"]
        cells = [str(sum(r[e] == "ok" for r in members)) for e in ("dynamo", "torchscript")]
        first = errors[0][:120].replace("|", "/") if errors else ""
        lines.append(f"| {family} | {len(members)} | {cells[0]} | {cells[1]} | {first} |")
    return lines


def page() -> str:
    """The whole page (deterministic: the same data gives the same text)."""
    names = [name for name in preset_names() if name.startswith(("tv.", "timm."))]
    header = [
        "# The zoo against the theory",
        "",
        "<!-- generated by `python scripts/zoo_report.py`; do not edit by hand -->",
        "",
        "Every torchvision and timm CNN shipped as a zoo preset (random weights; graphs traced by cnnplan's "
        "PyTorch importer, see [importers.md](importers.md)), validated at its native resolution with the "
        "default t = 1/6, next to the planner's deepest network for the same image size. Depth counts the "
        'feature-level convolutions; "top r / side" is the receptive field of the topmost one against the '
        "image side; the smallest c-value is over the constrained (non-1x1) convolutions; C1 and C2 count "
        "violations of constraint 1 (c-value) and 2 (receptive field); params are the module's own "
        "(`sum(p.numel())`), FLOPs the graph's (2 per multiply-add). The rows are the shipped presets "
        f"({len(names)} models). Receptive fields and sides read one number when both axes agree, else height x "
        "width; the c-value is the one constraint 1 compares, on the binding axis (named when the axes differ; "
        "see [geometry.md](geometry.md)).",
        "",
        *at_a_glance(names),
        "| model | px | depth | top r / side | smallest c (where) | C1 | C2 | headroom | params | FLOPs | planner: depth (stages), top r |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    body = [row(name) for name in names]
    return "\n".join([*header, *body, "", "## Import from both exporters", "", *import_summary(), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "zoo.md")
    args = parser.parse_args()
    args.output.write_text(page())
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
