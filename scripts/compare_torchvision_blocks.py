"""torchvision's ResNet-50 and MobileNet-v2 at 224 against the theory's bottleneck and inverted-residual
plans at 224 within the same FLOPs (docs/blocks.md): depth, top receptive field, violations, params, FLOPs.

Run: ``.venv/bin/python scripts/compare_torchvision_blocks.py [--figures docs/img]``. Needs the torch extra.
ResNet-50 is the solver's preset and MobileNet-v2 is read off torchvision's module tree; both are checked
against torchvision's own models (random weights): parameters by ``numel`` and FLOPs by torch's
FlopCounterMode must equal the solver's counts, or the script stops.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnplan.service.interop.diagrams import write_report_image
from cnnplan.service.interop.torch_compat import import_torchvision
from cnnplan.service.worker.builder import build_model
from cnnplan.solver import Layer, PlanRequest, ValidationReport, make_plan, validate
from cnnplan.solver.layers import CLASSIFIER
from cnnplan.solver.presets import preset

SIZE = 224


def mobilenet_v2_graph(model: nn.Module) -> list[Layer]:
    """torchvision's MobileNet-v2 as graph nodes: every Conv2d, BatchNorm2d and ReLU6 of `model.features`
    in execution order (ReLU6 as relu: no spatial effect), an ``add`` where a block uses its shortcut, then
    the classifier level (global average pool, dropout, linear)."""
    nodes: list[Layer] = []
    previous = "input"
    for index, block in enumerate(model.features):
        block_input = previous
        for name, module in block.named_modules():
            full = f"features.{index}.{name}" if name else f"features.{index}"
            if isinstance(module, nn.Conv2d):
                layer = Layer(
                    kind="conv", kernel_size=module.kernel_size[0], stride=module.stride[0],
                    padding=module.padding[0], groups=module.groups, out_channels=module.out_channels,
                    bias=module.bias is not None, name=full, inputs=(previous,),
                )  # fmt: skip
            elif isinstance(module, nn.BatchNorm2d):
                layer = Layer(kind="bn", name=full, inputs=(previous,))
            elif isinstance(module, nn.ReLU6):
                layer = Layer(kind="relu", name=full, inputs=(previous,))
            else:
                continue
            nodes.append(layer)
            previous = full
        if getattr(block, "use_res_connect", False):
            nodes.append(Layer(kind="add", name=f"features.{index}.add", inputs=(block_input, previous)))
            previous = f"features.{index}.add"
    dropout, linear = model.classifier
    return nodes + [
        Layer(kind="global_avgpool", level=CLASSIFIER, name="avgpool", inputs=(previous,)),
        Layer(kind="dropout", rate=dropout.p, level=CLASSIFIER, name="classifier.0"),
        Layer(kind="linear", out_channels=linear.out_features, level=CLASSIFIER, name="classifier.1"),
    ]


def torch_counts(model: nn.Module) -> tuple[int, int]:
    """(parameters, FLOPs of one 224x224 image) as torch counts them."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.zeros(1, 3, SIZE, SIZE))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops()


def checked_report(name: str, layers, reference: nn.Module) -> ValidationReport:
    """Validate `layers` at 224 (t = 1/6) after checking the solver's counts equal torch's on `reference`
    and on the builder's module."""
    report = validate(layers, SIZE)
    counts = (report.analysis.params, report.analysis.flops)
    built, _ = build_model(layers, SIZE)
    for what, measured in (("torchvision", torch_counts(reference)), ("builder", torch_counts(built))):
        if measured != counts:
            raise SystemExit(f"{name}: {what} counts {measured} != solver counts {counts}")
    return report


def row(name: str, report: ValidationReport, extra: str = "") -> dict:
    feature_convs = [layer for layer in report.analysis.layers if layer.kind == "conv" and layer.level == "feature"]
    spatial = [layer for layer in feature_convs if max(layer.kernel_size) > 1]
    return {
        "network": name,
        "spatial_depth": len(spatial),
        "feature_convs": len(feature_convs),
        "top_receptive_field": report.top_receptive_field,
        "c_value_violations": sum(1 for v in report.violations if v.constraint == "c_value"),
        "receptive_field_violations": sum(1 for v in report.violations if v.constraint == "receptive_field"),
        "params": report.analysis.params,
        "flops": report.analysis.flops,
        "violations": [f"{v.constraint} at {v.layer}: {v.value} vs limit {v.limit}" for v in report.violations],
        "note": extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, help="write one SVG per network into this folder")
    args = parser.parse_args()
    started = time.perf_counter()
    torchvision = import_torchvision()
    torch.manual_seed(0)
    resnet = torchvision.models.resnet50(weights=None)
    mobilenet = torchvision.models.mobilenet_v2(weights=None)
    resnet_report = checked_report("resnet50", preset("resnet50"), resnet)
    mobilenet_report = checked_report("mobilenet_v2", mobilenet_v2_graph(mobilenet), mobilenet)
    plans = {
        "bottleneck": make_plan(
            PlanRequest(SIZE, block="bottleneck", stem="conv_pool", downsample="conv",
                        max_flops=resnet_report.analysis.flops)
        ),
        "inverted_residual": make_plan(
            PlanRequest(SIZE, block="inverted_residual", stem="conv", downsample="conv",
                        max_flops=mobilenet_report.analysis.flops)
        ),
        "inverted_residual, pooled stem": make_plan(
            PlanRequest(SIZE, block="inverted_residual", stem="conv_pool", downsample="conv",
                        max_flops=mobilenet_report.analysis.flops)
        ),
    }  # fmt: skip
    rows = [row("torchvision resnet50", resnet_report)]
    references = {"bottleneck": resnet_report}
    for style, plan in plans.items():
        reference = references.get(style, mobilenet_report)
        built, _ = build_model(plan.layers, SIZE)
        if torch_counts(built) != (plan.params, plan.flops):
            raise SystemExit(f"{style}: builder counts differ from the plan's")
        widths = plan.widths
        note = (
            f"stages {plan.stages}, stem {plan.request.stem}, widths base {widths.base} x{widths.multiplier} "
            f"max {widths.max_width}, budget max_flops = {reference.analysis.flops}"
        )
        name = f"planned {style}"
        rows.append(row(name, plan.report, note))
        if style == "bottleneck":
            rows.append(row("torchvision mobilenet_v2", mobilenet_report))
    print(json.dumps(rows, indent=2))
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        figures = {
            "blocks_resnet50.svg": (resnet_report, "torchvision ResNet-50 at 224 (t = 1/6)"),
            "blocks_planned_bottleneck.svg": (
                plans["bottleneck"].report,
                "Planned bottleneck at 224, ResNet-50's FLOPs",
            ),
            "blocks_mobilenet_v2.svg": (mobilenet_report, "torchvision MobileNet-v2 at 224 (t = 1/6)"),
            "blocks_planned_inverted_residual.svg": (
                plans["inverted_residual"].report,
                "Planned inverted residual at 224, MobileNet-v2's FLOPs",
            ),
        }
        for file_name, (report, title) in figures.items():
            write_report_image(report, title, str(args.figures / file_name), spatial_only=True)
    print(
        f"# {platform.machine()} {platform.python_version()} torch {torch.__version__} "
        f"torchvision {torchvision.__version__}; {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
