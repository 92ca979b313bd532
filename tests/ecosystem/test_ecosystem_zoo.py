"""The torchvision/timm zoo through both ONNX exporters and through PyTorch directly (random weights, CPU).

One model per family at a small resolution (64 px where the family allows), from both exporters (timm's versions
of torchvision's families from one): it imports, its FLOPs agree with
``torch.utils.flop_counter`` within 1%, and the file's stored parameters are the module's (or a note says the
exporter folded batch norm). Inception-v3 (1x7 kernels), SqueezeNet, GoogLeNet and ResNet-D (ceil_mode pools)
go through the per-axis geometry (docs/geometry.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from cnnplan.service.cli.main import main
from cnnplan.service.interop.onnx_import import validate_onnx
from cnnplan.service.interop.torch_import import TorchTraceError, build_named_model, module_graph, validate_module
from cnnplan.service.interop.zoo import build, export_onnx, torch_flops

BOTH = ("dynamo", "torchscript")
ONE = ("torchscript",)
"""timm's versions of torchvision's families (resnet, efficientnet, mobilenetv3, regnety, convnext, densenet)
go through one exporter: torchvision's model of the family takes both (CI time)."""

SAMPLE = [
    ("torchvision", "resnet18", 64),
    ("torchvision", "resnext50_32x4d", 64),
    ("torchvision", "wide_resnet50_2", 64),
    ("torchvision", "alexnet", 224),  # its adaptive 6x6 pool is an upsampling below 224 px
    ("torchvision", "vgg11", 224),  # likewise its 7x7 pool
    ("torchvision", "squeezenet1_1", 64),  # ceil_mode pools
    ("torchvision", "densenet121", 64),
    ("torchvision", "inception_v3", 96),  # 1x7 kernels
    ("torchvision", "googlenet", 64),  # ceil_mode pools
    ("torchvision", "mobilenet_v2", 64),
    ("torchvision", "mobilenet_v3_small", 64),
    ("torchvision", "mnasnet0_5", 64),
    ("torchvision", "shufflenet_v2_x0_5", 64),
    ("torchvision", "efficientnet_b0", 64),
    ("torchvision", "efficientnet_v2_s", 64),
    ("torchvision", "regnet_y_400mf", 64),
    ("torchvision", "convnext_tiny", 64),
    ("timm", "resnet18", 64, ONE),
    ("timm", "resnet18d", 64),  # ceil_mode average pools in the shortcuts
    ("timm", "efficientnet_b0", 64, ONE),
    ("timm", "mobilenetv3_small_050", 64, ONE),
    ("timm", "ghostnet_050", 64),
    ("timm", "regnety_002", 64, ONE),
    ("timm", "convnext_atto", 64, ONE),
    ("timm", "densenet121", 64, ONE),
    ("timm", "dla34", 64),
    ("timm", "cspresnet50", 64),
    ("timm", "rexnet_100", 64),
]
"""(source, name, image size[, exporters]): one model of every family of issue 11, both exporters unless `ONE`."""

CASES = [
    pytest.param(source, name, size, exporter, id=f"{source}-{name}-{size}-{exporter}")
    for source, name, size, *exporters in SAMPLE
    for exporter in (exporters[0] if exporters else BOTH)
]  # model-major, so that each model is built once


@pytest.fixture(scope="module")
def models():
    cache: dict = {}

    def get(source: str, name: str, size: int):
        """The model and its ``torch.utils.flop_counter`` FLOPs at `size`, computed once for both exporters."""
        if (source, name, size) not in cache:
            cache.clear()  # one model alive at a time
            model = build(source, name)
            cache[source, name, size] = model, torch_flops(model, size)
        return cache[source, name, size]

    return get


@pytest.mark.parametrize(("source", "name", "size", "exporter"), CASES)
def test_zoo_model_imports_from_both_exporters(models, source, name, size, exporter):
    model, flops = models(source, name, size)
    report, imported = validate_onnx(export_onnx(model, size, exporter))
    assert report.depth > 0 and min(report.top_receptive_field) > 0
    assert abs(report.analysis.flops - flops) <= flops / 100, (report.analysis.flops, flops)
    params = sum(p.numel() for p in model.parameters())
    explained = any(key in note for note in imported.notes for key in ("folded", "shared by several nodes"))
    assert imported.stored_params == params or explained, (imported.stored_params, params, imported.notes)


@pytest.mark.parametrize(("source", "name"), [("torchvision", "resnet18"), ("timm", "efficientnet_b0"),
                                              ("torchvision", "convnext_tiny"), ("torchvision", "googlenet")])  # fmt: skip
def test_pytorch_path_counts_the_module_and_the_traced_graph_stores_all_of_it(source, name):
    model = build(source, name)
    report, traced = validate_module(model, 64)
    assert traced.params == sum(p.numel() for p in model.parameters())
    # The layers count exactly the parameters the forward pass uses (a bias-free convolution has no bias, though
    # torch.export lowers it with a computed zero one); what is left are modules it never calls.
    assert report.analysis.params + traced.unused_params + traced.elementwise_params == traced.params
    if name == "googlenet":  # eval mode skips the auxiliary heads: their parameters are named in a note
        assert set(traced.unused_modules) == {
            f"aux{i}.{m}" for i in (1, 2) for m in ("conv.conv", "conv.bn", "fc1", "fc2")
        }
        assert f"{traced.unused_params:,}" in traced.notes[-1] and "aux1.fc1" in traced.notes[-1]
    else:
        assert traced.unused_params == 0 and traced.imported.stored_params == traced.params  # nothing folded, missed
    if name == "convnext_tiny":  # the MatMul biases and the layer scales: element-wise, in no layer, in a note
        assert traced.elementwise_params > 0 and any(
            f"{traced.elementwise_params:,} stored weight elements" in n for n in traced.notes
        )
    flops = torch_flops(model, 64)
    assert abs(report.analysis.flops - flops) <= flops / 100


UNTRACEABLE = """
import torch


class DataDependent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        if y.sum() > 0:  # the untraceable call
            return y
        return -y


class Plain(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x))).flatten(1)


def untraceable():
    return DataDependent()


def plain():
    return Plain()
"""


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "zoo_factories.py").write_text(UNTRACEABLE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "zoo_factories"
    sys.modules.pop("zoo_factories", None)


def test_untraceable_module_error_names_the_first_untraceable_call(factories):
    with pytest.raises(TorchTraceError) as caught:
        module_graph(build_named_model("module", f"{factories}:untraceable"), 32)
    assert caught.value.field == "module"
    assert "zoo_factories.py:12 in forward: if y.sum() > 0:" in caught.value.reason


def test_cli_takes_torchvision_timm_and_module(factories):
    runner = CliRunner()
    tv = runner.invoke(main, ["validate", "--torchvision", "resnet18", "--image-size", "64", "--json"])
    assert tv.exit_code == 1 and '"params": 11689512' in tv.output  # INVALID at 64 px: r 435 > 64
    timm = runner.invoke(main, ["validate", "--timm", "mobilenetv3_small_050", "--image-size", "64"])
    assert timm.exit_code == 1 and "depth 34, top receptive field 639" in timm.output and "channel gates" in timm.output
    plain = runner.invoke(main, ["validate", "--module", f"{factories}:plain", "--image-size", "32"])
    assert plain.exit_code == 0 and plain.output.startswith("VALID: depth 1, top receptive field 3")
    bad = runner.invoke(main, ["validate", "--module", f"{factories}:untraceable", "--image-size", "32"])
    assert bad.exit_code == 2 and "if y.sum() > 0:" in bad.output
    unknown = runner.invoke(main, ["validate", "--torchvision", "resnet_nope"])
    assert unknown.exit_code == 2 and "is not a torchvision model name: 'resnet_nope'" in unknown.output
    both = runner.invoke(main, ["validate", "--preset", "vgg16", "--timm", "resnet18"])
    assert both.exit_code == 2 and "exactly one of" in both.output


def test_the_shim_is_the_one_import_of_torchvision():
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("service", "solver", "benchmarks", "scripts")
        if (root / folder).exists()
        for path in (root / folder).rglob("*.py")
        if path.name != "torch_compat.py"
        and any(
            line.strip().startswith(("import torchvision", "import timm", "from torchvision", "from timm"))
            for line in path.read_text().splitlines()
        )  # fmt: skip
    ]
    assert offenders == []


def test_torch_is_not_needed_to_read_onnx():
    assert torch.__version__  # the importer module itself imports no torch:
    source = (Path(__file__).resolve().parents[2] / "service/interop/onnx_import.py").read_text()
    assert "import torch" not in source
