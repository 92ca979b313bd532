"""The model zoo: the torchvision and timm classification CNNs cnnplan reads, by family, at their native
resolution, with the export helpers the zoo script, the presets script and the tests share.

torchvision and timm are imported only through `torch_compat` (a CPU torch beside PyPI's CUDA torchvision).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TORCHVISION_FAMILIES = {
    "resnet": ("resnet",),
    "resnext": ("resnext",),
    "wide_resnet": ("wide_resnet",),
    "vgg": ("vgg",),
    "alexnet": ("alexnet",),
    "squeezenet": ("squeezenet",),
    "densenet": ("densenet",),
    "inception": ("inception_v3",),
    "googlenet": ("googlenet",),
    "mobilenet_v2": ("mobilenet_v2",),
    "mobilenet_v3": ("mobilenet_v3",),
    "mnasnet": ("mnasnet",),
    "shufflenet_v2": ("shufflenet_v2",),
    "efficientnet": ("efficientnet_b",),
    "efficientnet_v2": ("efficientnet_v2",),
    "regnet": ("regnet",),
    "convnext": ("convnext",),
}
"""torchvision family -> name prefixes (every `list_models(module=torchvision.models)` entry that is a CNN)."""

TIMM_MODELS = {
    "resnet": ("resnet18", "resnet34", "resnet50", "resnet101"),
    "resnet_d": ("resnet18d", "resnet50d", "resnet101d"),
    "efficientnet": ("efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3"),
    "mobilenetv3": ("mobilenetv3_small_100", "mobilenetv3_large_100"),
    "ghostnet": ("ghostnet_100",),
    "regnety": ("regnety_002", "regnety_008", "regnety_016", "regnety_032"),
    "convnext": ("convnext_atto", "convnext_nano", "convnext_tiny", "convnext_small"),
    "densenet": ("densenet121", "densenet169"),
    "dla": ("dla34", "dla60"),
    "cspresnet": ("cspresnet50",),
    "rexnet": ("rexnet_100", "rexnet_150"),
}
"""timm family -> the most used pure CNNs of it."""


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: where it comes from, its family and the resolution it was trained at."""

    source: str
    name: str
    family: str
    image_size: int


def torchvision_zoo() -> list[ZooModel]:
    """Every torchvision classification CNN, by family, at its native resolution (299 for Inception-v3)."""
    from cnnplan.service.interop.torch_compat import import_torchvision

    torchvision = import_torchvision()
    names = torchvision.models.list_models(module=torchvision.models)
    zoo = []
    for family, prefixes in TORCHVISION_FAMILIES.items():
        for name in names:
            if name.startswith(prefixes):
                size = _torchvision_resolution(torchvision, name)
                zoo.append(ZooModel("torchvision", name, family, size))
    return zoo


def _torchvision_resolution(torchvision: Any, name: str) -> int:
    """The crop size of the model's default weights' evaluation transform (224 when it has none)."""
    try:
        transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms
        return int(transforms.keywords["crop_size"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return 224


def timm_zoo() -> list[ZooModel]:
    """The timm models of `TIMM_MODELS` at their pretrained configuration's resolution."""
    from cnnplan.service.interop.torch_compat import import_timm

    timm = import_timm()
    zoo = []
    for family, names in TIMM_MODELS.items():
        for name in names:
            config = timm.get_pretrained_cfg(name)
            size = int(config.input_size[-1]) if config is not None and config.input_size else 224
            zoo.append(ZooModel("timm", name, family, size))
    return zoo


def build(entry_source: str, name: str, seed: int = 0) -> Any:
    """The model with random weights (seeded), in eval mode."""
    import torch

    from cnnplan.service.interop.torch_import import build_named_model

    torch.manual_seed(seed)
    return build_named_model(entry_source, name).eval()


def export_onnx(model: Any, image_size: int, exporter: str) -> bytes:
    """``torch.onnx.export`` of `model` on a 1x3xSxS input: ``dynamo`` (the default exporter, torch.export) or
    ``torchscript`` (``dynamo=False``), each with its default options; the serialized model."""
    import torch

    with _quiet_example(image_size) as example:
        if exporter == "dynamo":
            return _dynamo_program(model, example).model_proto.SerializeToString()
        buffer = io.BytesIO()
        torch.onnx.export(model, (example,), buffer, dynamo=False)  # type: ignore[arg-type]  # a file object works; the stubs say path
        return buffer.getvalue()


PROTOBUF_LIMIT = 2**31 - 1
"""Bytes one serialized protobuf message can hold: a model whose weights pass it is written as a file with its
weights beside it (ONNX external data)."""


def export_onnx_file(model: Any, image_size: int, exporter: str, path: Any) -> None:
    """`export_onnx` to the file `path` with the weights as external data beside it (the only way past
    `PROTOBUF_LIMIT`, e.g. torchvision's RegNet-Y-128GF: 644 M parameters)."""
    import torch

    with _quiet_example(image_size) as example:
        if exporter == "dynamo":
            _dynamo_program(model, example).save(str(path), external_data=True)
        else:  # the TorchScript exporter writes external data itself when the model passes the limit
            torch.onnx.export(model, (example,), str(path), dynamo=False)


@contextlib.contextmanager
def _quiet_example(image_size: int) -> Iterator[Any]:
    """A 1x3xSxS zero input, with the exporters' warnings and progress lines silenced."""
    import torch

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield torch.zeros(1, 3, image_size, image_size)


def _dynamo_program(model: Any, example: Any) -> Any:
    """The default exporter's program for `model` on `example` (returned whenever no file is named)."""
    import torch

    program = torch.onnx.export(model, (example,), dynamo=True, verbose=False)
    assert program is not None
    return program


def stored_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers as stored (what an exported file holds, roughly)."""
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def torch_flops(model: Any, image_size: int) -> int:
    """FLOPs of one forward pass by ``torch.utils.flop_counter`` (2 per multiply-add of conv and matmul)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, image_size, image_size))
    return int(counter.get_total_flops())


EXPORTERS = ("dynamo", "torchscript")

__all__ = ["EXPORTERS", "PROTOBUF_LIMIT", "TIMM_MODELS", "TORCHVISION_FAMILIES", "ZooModel", "build", "export_onnx",
           "export_onnx_file", "preset_entry", "stored_bytes",
           "preset_key", "timm_zoo",
           "torch_flops", "torchvision_zoo"]  # fmt: skip


_LAYER_DEFAULTS = {"kernel_size": 1, "stride": None, "dilation": 1, "padding": 0, "groups": 1, "out_channels": None,
                   "level": "feature", "bias": True, "rate": None, "ceil_mode": False}  # fmt: skip


def _json_shaped(value: Any) -> Any:
    """Tuples (per-axis values, paddings) as the lists JSON reads back."""
    return [_json_shaped(item) for item in value] if isinstance(value, (tuple, list)) else value


def preset_entry(entry: ZooModel) -> dict[str, Any]:
    """The zoo model as a preset: its graph traced at its native resolution (`torch_import.module_graph`),
    compact (fields at their defaults left out), with its source, versions and exact parameter count."""
    import torch

    from cnnplan.service.interop.torch_compat import import_timm, import_torchvision
    from cnnplan.service.interop.torch_import import module_graph

    model = build(entry.source, entry.name)
    traced = module_graph(model, entry.image_size)
    package = import_torchvision() if entry.source == "torchvision" else import_timm()
    nodes = []
    for layer in traced.imported.layers:
        node: dict[str, Any] = {"type": layer.kind, "name": layer.name, "inputs": list(layer.inputs or ())}
        for field, default in _LAYER_DEFAULTS.items():
            value = getattr(layer, field)
            if value != default:
                node[field] = _json_shaped(value)
        nodes.append(node)
    return {
        "title": f"{entry.name} ({entry.source}, random weights)",
        "family": entry.family,
        "image_size": entry.image_size,
        "source": f"{entry.source} {package.__version__} {entry.name}, traced with torch {torch.__version__}",
        "params": traced.params,
        **(
            {"unused_params": traced.unused_params, "unused_modules": list(traced.unused_modules)}
            if traced.unused_params
            else {}
        ),
        **({"elementwise_params": traced.elementwise_params} if traced.elementwise_params else {}),
        "nodes": nodes,
    }


def preset_key(entry: ZooModel) -> str:
    """The preset name of a zoo model: ``tv.<name>`` (torchvision) or ``timm.<name>``."""
    return f"{'tv' if entry.source == 'torchvision' else 'timm'}.{entry.name}"
