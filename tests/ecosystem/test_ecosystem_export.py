"""PyTorch export: the generated source runs in a fresh interpreter and builds exactly the planned network."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from cnnplan.service.interop.pytorch_export import module_source, plan_source
from cnnplan.solver import PlanRequest, WidthRule, analyse, make_plan

CHECK = r"""
import json, sys, torch
namespace = {}
exec(compile(open(sys.argv[1]).read(), "planned_net.py", "exec"), namespace)
model = namespace["PlannedNet"]().eval()
shapes = []
for name, module in model.named_children():
    module.register_forward_hook(lambda m, i, o, name=name: shapes.append([name, list(o.shape)]))
height, width = namespace["IMAGE_SIZE"]
out = model(torch.zeros(2, namespace["IN_CHANNELS"], height, width))
print(json.dumps({"params": sum(p.numel() for p in model.parameters()), "out": list(out.shape), "shapes": shapes}))
"""


def run_source(source: str, tmp_path) -> dict:
    path = tmp_path / "planned_net.py"
    path.write_text(source)
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(path)], capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def imported_modules(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "request_",
    [
        PlanRequest(32, num_classes=10),
        PlanRequest(
            (40, 56),
            kernel_size=5,
            downsample="conv",
            num_classes=7,
            batch_norm=False,
            widths=WidthRule(base=8, multiplier=2, max_width=32),
        ),
        PlanRequest(48, downsample="avgpool", in_channels=1, num_classes=3, dropout=0.2, widths=WidthRule(base=4)),
        PlanRequest(40, block="basic", stem="conv", num_classes=5, widths=WidthRule(base=4, max_width=16)),
        PlanRequest(
            (36, 44), block="bottleneck", stem="conv_pool", downsample="conv", num_classes=4, widths=WidthRule(4, 2, 16)
        ),
        PlanRequest(32, block="inverted_residual", num_classes=6, batch_norm=False, widths=WidthRule(4, 2, 16)),
    ],
    ids=[
        "maxpool-bn",
        "conv-downsample-rectangular",
        "avgpool-grey",
        "basic-stem",
        "bottleneck-stem-pool-conv",
        "inverted-residual-no-bn",
    ],
)
def test_generated_module_has_the_planned_params_and_shapes(request_, tmp_path):
    plan = make_plan(request_)
    source = plan_source(plan)
    assert imported_modules(source) == {"torch"}
    result = run_source(source, tmp_path)
    assert result["params"] == plan.params
    assert result["out"] == [2, request_.num_classes]
    stats = {layer.name.replace(".", "_"): layer for layer in plan.layer_stats}
    spatial = [(name, shape) for name, shape in result["shapes"] if len(shape) == 4]
    assert spatial, "no spatial layer was hooked"
    for name, shape in spatial:
        layer = stats[name]
        if layer.kind in ("global_maxpool", "global_avgpool"):
            continue
        assert shape[1:] == [layer.out_channels, *layer.output_size], name


def test_the_module_runs_as_a_script(tmp_path):
    path = tmp_path / "planned_net.py"
    path.write_text(plan_source(make_plan(PlanRequest(18, num_classes=5, widths=WidthRule(base=8)))))
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    assert "output shape (1, 5)" in done.stdout


def test_request_names_never_reach_the_source(tmp_path):
    hostile = '__import__("os").system("echo owned")'
    graph = [
        {"type": "conv", "kernel_size": 3, "padding": 1, "out_channels": 4, "name": hostile},
        {"type": "conv", "kernel_size": 3, "padding": 1, "out_channels": 4, "name": "class", "inputs": [hostile]},
        {"type": "add", "name": "x", "inputs": [hostile, "class"]},
        {"type": "conv", "kernel_size": 2, "padding": "same", "out_channels": 6, "name": "even kernel"},
        {"type": "concat", "name": "cat", "inputs": ["x", "even kernel"]},
        {"type": "global_avgpool", "name": "gap"},
        {"type": "linear", "out_channels": 3, "name": "fc"},
    ]
    analysis = analyse(graph, 9)
    source = module_source(analysis)
    assert "owned" not in source and "os" not in imported_modules(source)
    assert "self.layer_0_conv" in source and "self.layer_1_conv" in source  # unusable names get generated ones
    assert "nn.ZeroPad2d((0, 1, 0, 1))" in source  # 'same' for an even kernel pads right/bottom
    result = run_source(source, tmp_path)
    assert result["params"] == analysis.params and result["out"] == [2, 3]


def test_per_axis_layers_export_to_equivalent_torch_source():
    """1x7 / 7x1 kernels, per-axis strides and dilations, asymmetric pads, TF SAME and ceil_mode pools: the
    generated module has the analysis's parameter count and, layer by layer, its map sizes."""
    torch = pytest.importorskip("torch")
    graph = [
        {"type": "conv", "kernel_size": [1, 7], "stride": [1, 2], "padding": [[0, 1], [2, 3]], "out_channels": 4},
        {"type": "conv", "kernel_size": [7, 1], "padding": "same_upper", "stride": 2, "out_channels": 4},
        {"type": "maxpool", "kernel_size": [3, 2], "stride": 2, "ceil_mode": True},
        {"type": "avgpool", "kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True},
        {"type": "conv", "kernel_size": 3, "dilation": [1, 2], "padding": [1, 2], "out_channels": 5},
        {"type": "global_avgpool"},
        {"type": "linear", "out_channels": 3},
    ]
    analysis = analyse(graph, [45, 38])
    source = module_source(analysis)
    assert "kernel_size=(1, 7)" in source and "ceil_mode=True" in source
    namespace: dict = {}
    exec(compile(source, "planned_net.py", "exec"), namespace)  # source generated by cnnplan from numbers only
    module = namespace["PlannedNet"]().eval()
    sizes = []
    for child in module.children():
        child.register_forward_hook(lambda _module, _inputs, output: sizes.append(tuple(output.shape[-2:])))
    module(torch.zeros(1, 3, 45, 38))
    assert sum(parameter.numel() for parameter in module.parameters()) == analysis.params
    assert sizes[:5] == [layer.output_size for layer in analysis.layers[:5]]
