"""Well-known architectures as graphs of `Layer`, so that they can be analysed against the theory.

Each preset is a tuple of named nodes (shortcuts are real ``add`` merges); the fully connected head
is marked ``level="classifier"`` so that only the convolutional feature level is constrained. Layer
names follow the source implementation (torchvision's state-dict names, TF-Slim's end points) so
that statistics can be matched against published tables. Heads are written for the default image
size: a linear layer's input width is channels x h x w of whatever map reaches it.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from importlib import resources
from typing import Any

from .errors import UnknownPresetError
from .layers import CLASSIFIER, Layer, as_graph, layer_from_mapping, topological_order


@dataclass(frozen=True)
class _Preset:
    title: str
    image_size: int
    description: str
    source: str
    build: Callable[[], list[Layer]]


def _conv(name: str, out: int, kernel: int, stride: int = 1, padding: int | str = 0, **extra: Any) -> Layer:
    return Layer(kind="conv", kernel_size=kernel, stride=stride, padding=padding, out_channels=out, name=name, **extra)


def _head(prefix: str, sizes: tuple[int, ...], dropout_first: bool) -> list[Layer]:
    """Fully connected head: [dropout], linear, relu, ... ending with a plain linear (torchvision order)."""
    layers: list[Layer] = []
    for index, width in enumerate(sizes):
        last = index == len(sizes) - 1
        if dropout_first and not last:
            layers.append(Layer(kind="dropout", rate=0.5, level=CLASSIFIER, name=f"{prefix}.dropout{index}"))
        layers.append(Layer(kind="linear", out_channels=width, level=CLASSIFIER, name=f"{prefix}.fc{index}"))
        if not last:
            layers.append(Layer(kind="relu", level=CLASSIFIER, name=f"{prefix}.relu{index}"))
            if not dropout_first:
                layers.append(Layer(kind="dropout", rate=0.5, level=CLASSIFIER, name=f"{prefix}.dropout{index}"))
    return layers


def _alexnet() -> list[Layer]:
    """torchvision AlexNet (the one-GPU variant of "One weird trick"): 5 convs, 3 max pools, 3 linears."""
    layers = [
        _conv("conv1", 64, 11, 4, 2), Layer(kind="relu", name="relu1"),
        Layer(kind="maxpool", kernel_size=3, stride=2, name="pool1"),
        _conv("conv2", 192, 5, 1, 2), Layer(kind="relu", name="relu2"),
        Layer(kind="maxpool", kernel_size=3, stride=2, name="pool2"),
        _conv("conv3", 384, 3, 1, 1), Layer(kind="relu", name="relu3"),
        _conv("conv4", 256, 3, 1, 1), Layer(kind="relu", name="relu4"),
        _conv("conv5", 256, 3, 1, 1), Layer(kind="relu", name="relu5"),
        Layer(kind="maxpool", kernel_size=3, stride=2, name="pool5"),
    ]  # fmt: skip
    return layers + _head("classifier", (4096, 4096, 1000), dropout_first=True)


def _alexnet_v2() -> list[Layer]:
    """TF-Slim alexnet_v2: VALID conv1/pools, SAME convs; fc6-fc8 are convolutions (5x5 VALID, 1x1, 1x1)."""
    layers = [
        _conv("conv1", 64, 11, 4, "valid"), Layer(kind="relu", name="relu1"),
        Layer(kind="maxpool", kernel_size=3, stride=2, name="pool1"),
        _conv("conv2", 192, 5, 1, "same"), Layer(kind="relu", name="relu2"),
        Layer(kind="maxpool", kernel_size=3, stride=2, name="pool2"),
        _conv("conv3", 384, 3, 1, "same"), Layer(kind="relu", name="relu3"),
        _conv("conv4", 384, 3, 1, "same"), Layer(kind="relu", name="relu4"),
        _conv("conv5", 256, 3, 1, "same"), Layer(kind="relu", name="relu5"),
        Layer(kind="maxpool", kernel_size=3, stride=2, name="pool5"),
        _conv("fc6", 4096, 5, 1, "valid", level=CLASSIFIER), Layer(kind="relu", level=CLASSIFIER, name="relu6"),
        Layer(kind="dropout", rate=0.5, level=CLASSIFIER, name="dropout6"),
        _conv("fc7", 4096, 1, level=CLASSIFIER), Layer(kind="relu", level=CLASSIFIER, name="relu7"),
        Layer(kind="dropout", rate=0.5, level=CLASSIFIER, name="dropout7"),
        _conv("fc8", 1000, 1, level=CLASSIFIER),
    ]  # fmt: skip
    return layers


VGG_CONFIGS = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
"""Convolutions per block of VGG configurations A, B, D and E (widths 64, 128, 256, 512, 512)."""


def _vgg(blocks: tuple[int, ...]) -> list[Layer]:
    """Blocks of 3x3 pad-1 convs + ReLU, each closed by a 2x2 stride-2 max pool; TF-Slim end-point names."""
    layers: list[Layer] = []
    for block, (count, width) in enumerate(zip(blocks, (64, 128, 256, 512, 512)), start=1):
        for position in range(1, count + 1):
            layers.append(_conv(f"conv{block}_{position}", width, 3, 1, 1))
            layers.append(Layer(kind="relu", name=f"relu{block}_{position}"))
        layers.append(Layer(kind="maxpool", kernel_size=2, stride=2, name=f"pool{block}"))
    return layers + _head("classifier", (4096, 4096, 1000), dropout_first=False)


def _bn_relu(name: str, suffix: str, relu: bool = True) -> list[Layer]:
    layers = [Layer(kind="bn", name=f"{name}.bn{suffix}")]
    if relu:
        layers.append(Layer(kind="relu", name=f"{name}.relu{suffix}"))
    return layers


def _resnet(blocks: tuple[int, ...], bottleneck: bool) -> list[Layer]:
    """torchvision ResNet (v1.5: the stride sits in the first block of layers 2-4, on the 3x3 conv);
    projection shortcuts are 1x1 convs (stride 2 where the block downsamples) + BN, merged by ``add``."""
    layers = [
        _conv("conv1", 64, 7, 2, 3, bias=False), Layer(kind="bn", name="bn1"), Layer(kind="relu", name="relu"),
        Layer(kind="maxpool", kernel_size=3, stride=2, padding=1, name="maxpool"),
    ]  # fmt: skip
    expansion = 4 if bottleneck else 1
    previous, channels = "maxpool", 64
    for stage, count in enumerate(blocks, start=1):
        planes = 64 * 2 ** (stage - 1)
        for index in range(count):
            stride = 2 if stage > 1 and index == 0 else 1
            name = f"layer{stage}.{index}"
            if bottleneck:
                body = [
                    _conv(f"{name}.conv1", planes, 1, bias=False, inputs=(previous,)), *_bn_relu(name, "1"),
                    _conv(f"{name}.conv2", planes, 3, stride, 1, bias=False), *_bn_relu(name, "2"),
                    _conv(f"{name}.conv3", planes * expansion, 1, bias=False), *_bn_relu(name, "3", relu=False),
                ]  # fmt: skip
            else:
                body = [
                    _conv(f"{name}.conv1", planes, 3, stride, 1, bias=False, inputs=(previous,)), *_bn_relu(name, "1"),
                    _conv(f"{name}.conv2", planes, 3, 1, 1, bias=False), *_bn_relu(name, "2", relu=False),
                ]  # fmt: skip
            shortcut = previous
            if stride != 1 or channels != planes * expansion:
                body += [
                    _conv(f"{name}.downsample.0", planes * expansion, 1, stride, bias=False, inputs=(previous,)),
                    Layer(kind="bn", name=f"{name}.downsample.1"),
                ]
                shortcut = f"{name}.downsample.1"
            residual = body[-3].name if shortcut != previous else body[-1].name
            assert residual is not None  # every layer of `body` is named
            body += [
                Layer(kind="add", name=f"{name}.add", inputs=(residual, shortcut)),
                Layer(kind="relu", name=f"{name}.relu"),
            ]
            layers += body
            previous, channels = f"{name}.relu", planes * expansion
    return layers + [
        Layer(kind="global_avgpool", level=CLASSIFIER, name="avgpool"),
        Layer(kind="linear", out_channels=1000, level=CLASSIFIER, name="fc"),
    ]


MOBILENET_V1_BLOCKS = (
    ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2))
    + ((512, 1),) * 5
    + (
        (1024, 2),
        (1024, 1),
    )
)
"""(pointwise filters, depthwise stride) of MobileNet v1's 13 depthwise-separable blocks."""


def _mobilenet_v1() -> list[Layer]:
    """MobileNet v1 (width 1.0): a 3x3 stride-2 conv, then 13 x (3x3 depthwise conv + BN + ReLU,
    1x1 pointwise conv + BN + ReLU), global average pool, dropout, linear; convs have no bias."""
    layers = [
        _conv("Conv2d_0", 32, 3, 2, 1, bias=False), Layer(kind="bn", name="Conv2d_0.bn"),
        Layer(kind="relu", name="Conv2d_0.relu"),
    ]  # fmt: skip
    channels = 32
    for index, (width, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        depthwise, pointwise = f"Conv2d_{index}_depthwise", f"Conv2d_{index}_pointwise"
        layers += [
            _conv(depthwise, channels, 3, stride, 1, groups=channels, bias=False),
            Layer(kind="bn", name=f"{depthwise}.bn"), Layer(kind="relu", name=f"{depthwise}.relu"),
            _conv(pointwise, width, 1, bias=False),
            Layer(kind="bn", name=f"{pointwise}.bn"), Layer(kind="relu", name=f"{pointwise}.relu"),
        ]  # fmt: skip
        channels = width
    return layers + [
        Layer(kind="global_avgpool", level=CLASSIFIER, name="avgpool"),
        Layer(kind="dropout", rate=0.001, level=CLASSIFIER, name="dropout"),
        Layer(kind="linear", out_channels=1000, level=CLASSIFIER, name="fc"),
    ]


_TORCHVISION = "torchvision.models ({}), https://github.com/pytorch/vision/blob/main/torchvision/models/{}.py"
_PRESETS: dict[str, _Preset] = {
    "alexnet": _Preset(
        "AlexNet (torchvision)",
        224,
        "Krizhevsky et al. 2012 as in torchvision (one-GPU variant, 64-192-384-256-256 filters); the adaptive "
        "average pool is omitted (identity at 224).",
        _TORCHVISION.format("alexnet", "alexnet"),
        _alexnet,
    ),
    "alexnet_v2": _Preset(
        "AlexNet v2 (TF-Slim)",
        224,
        "TF-Slim's alexnet_v2 (VALID conv1 and pools, SAME 5x5/3x3 convs, fully connected layers as 5x5 and "
        "1x1 convolutions); the published receptive fields of docs/theory.md#layer-arithmetic refer to this network.",
        "TF-Slim, https://github.com/tensorflow/models/blob/master/research/slim/nets/alexnet.py",
        _alexnet_v2,
    ),
    **{
        name: _Preset(
            f"VGG-{name[3:]} (torchvision)",
            224,
            f"Simonyan and Zisserman 2014, configuration {'ABDE'[index]}: {sum(blocks)} 3x3 convolutions in 5 "
            "blocks closed by 2x2 max pools, then three linear layers; the adaptive average pool is omitted "
            "(identity at 224).",
            _TORCHVISION.format(name, "vgg"),
            partial(_vgg, blocks),
        )
        for index, (name, blocks) in enumerate(VGG_CONFIGS.items())
    },
    "resnet18": _Preset(
        "ResNet-18 (torchvision)",
        224,
        "He et al. 2015, basic blocks (2, 2, 2, 2) with BN and bias-free convs; shortcuts are add merges, "
        "projection shortcuts 1x1 stride-2 convs + BN.",
        _TORCHVISION.format("resnet18", "resnet"),
        lambda: _resnet((2, 2, 2, 2), bottleneck=False),
    ),
    "resnet34": _Preset(
        "ResNet-34 (torchvision)",
        224,
        "He et al. 2015, basic blocks (3, 4, 6, 3) with BN and bias-free convs; shortcuts are add merges, "
        "projection shortcuts 1x1 stride-2 convs + BN.",
        _TORCHVISION.format("resnet34", "resnet"),
        lambda: _resnet((3, 4, 6, 3), bottleneck=False),
    ),
    "resnet50": _Preset(
        "ResNet-50 (torchvision, v1.5)",
        224,
        "He et al. 2015, bottleneck blocks (3, 4, 6, 3); the stride sits on the 3x3 conv of the first block of "
        "each stage (torchvision's v1.5); projection shortcuts 1x1 convs + BN merged by add.",
        _TORCHVISION.format("resnet50", "resnet"),
        lambda: _resnet((3, 4, 6, 3), bottleneck=True),
    ),
    "mobilenet_v1": _Preset(
        "MobileNet v1 (1.0, 224)",
        224,
        "Howard et al. 2017: a 3x3 stride-2 conv and 13 depthwise-separable blocks (depthwise convs via groups), "
        "BN after every conv, global average pool, dropout, linear; TF-Slim end-point names.",
        "TF-Slim, https://github.com/tensorflow/models/blob/master/research/slim/nets/mobilenet_v1.py",
        _mobilenet_v1,
    ),
}


ZOO_FILE = "zoo_presets.json"
"""Package data: the torchvision/timm zoo as compact graphs, written by scripts/zoo_presets.py (no torch here)."""


@functools.cache
def _zoo() -> dict[str, _Preset]:
    """The zoo presets (``tv.<name>``, ``timm.<name>``) from `ZOO_FILE`; {} when the file is absent."""
    try:
        text = resources.files(__package__).joinpath(ZOO_FILE).read_text()
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        return {}
    presets = {}
    for name, entry in json.loads(text).items():
        nodes = tuple(layer_from_mapping(node, f"{ZOO_FILE}[{name}]") for node in entry["nodes"])
        description = (
            f"{entry['title']}: graph traced at {entry['image_size']} px by cnnplan's PyTorch importer; "
            f"{entry['params']} parameters (sum of the module's parameter sizes)."
        )
        presets[name] = _Preset(entry["title"], entry["image_size"], description, entry["source"], partial(list, nodes))
    return presets


@functools.cache
def _zoo_params() -> dict[str, tuple[int, tuple[str, ...]]]:
    try:
        text = resources.files(__package__).joinpath(ZOO_FILE).read_text()
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        return {}
    return {
        name: (int(entry["params"]), unlisted_params_notes(
            int(entry["params"]), int(entry.get("unused_params", 0)), tuple(entry.get("unused_modules", ())),
            int(entry.get("elementwise_params", 0)),
        )) for name, entry in json.loads(text).items()
    }  # fmt: skip


def preset_params(name: str) -> int | None:
    """The module's parameter count recorded with a zoo preset (None for the hand-written presets, whose graphs
    count their own parameters)."""
    recorded = _zoo_params().get(name)
    return recorded[0] if recorded is not None else None


def preset_params_notes(name: str) -> tuple[str, ...]:
    """The answer's notes on a zoo preset's count: parameters of modules its graph does not hold (`unlisted_params_notes`)."""
    recorded = _zoo_params().get(name)
    return recorded[1] if recorded is not None else ()


def unlisted_params_notes(
    params: int, unused_params: int = 0, unused_modules: tuple[str, ...] = (), elementwise_params: int = 0
) -> tuple[str, ...]:
    """Notes when `params` (a module's count, sum of p.numel()) holds parameters that no layer lists: those of
    modules the forward pass never calls (GoogLeNet's auxiliary heads in eval mode), and those read by element-wise
    operators (a bias added after a MatMul, ConvNeXt's per-channel layer scale)."""
    notes = []
    if unused_params:
        shown = ", ".join(unused_modules[:6]) + (
            f" and {len(unused_modules) - 6} more" if len(unused_modules) > 6 else ""
        )
        notes.append(
            f"params is the module's count (sum of p.numel() over model.parameters(), {params:,}); {unused_params:,} "
            f"of them are in modules the forward pass does not call ({shown}), which the layers do not list"
        )
    if elementwise_params:
        notes.append(
            f"{elementwise_params:,} of the {params:,} parameters are read by element-wise operators (biases added "
            "after a matrix product, per-channel scales such as layer scale): they count in params, in no layer"
        )
    return tuple(notes)


def _all() -> dict[str, _Preset]:
    return {**_zoo(), **_PRESETS}


def preset_names() -> list[str]:
    """Names accepted by `preset`, sorted: the hand-written ones and the zoo's (``tv.*``, ``timm.*``)."""
    return sorted(_all())


def _lookup(name: object) -> _Preset:
    presets = _all()
    if not isinstance(name, str) or name not in presets:
        raise UnknownPresetError("preset", unknown_preset_reason(name, sorted(presets)))
    return presets[name]


def unknown_preset_reason(name: object, names: list[str]) -> str:
    """The reason for an unknown preset: the hand-written names in full, the zoo by its prefixes, and the
    closest names (`difflib`) when there are any."""
    hand_written = [n for n in names if not n.startswith(("tv.", "timm."))]
    zoo = len(names) - len(hand_written)
    close = difflib.get_close_matches(name, names, n=3) if isinstance(name, str) else []
    hint = f"; did you mean {', '.join(close)}?" if close else "."
    return (
        f"unknown preset {name!r}{hint} Presets: {', '.join(hand_written)}, and {zoo} zoo models named tv.<name> "
        "(torchvision) and timm.<name> (GET /presets lists them all)"
    )


def preset(name: str) -> tuple[Layer, ...]:
    """The architecture called `name` as a tuple of named graph nodes (a fresh tuple of immutable layers)."""
    return tuple(_lookup(name).build())


@cache
def checked_preset(name: str) -> tuple[tuple[Layer, ...], tuple[int, ...]]:
    """The preset's nodes as `as_graph` checks and names them, and their `topological_order`: computed
    once per preset (presets are constants), so analysing one skips the graph checks (`analyse_checked`)."""
    nodes = as_graph(preset(name), "preset")
    return nodes, tuple(topological_order(nodes, "preset"))


def preset_info(name: str) -> dict[str, object]:
    """{name, title, default_image_size, description, source} of the preset called `name`."""
    entry = _lookup(name)
    return {
        "name": name,
        "title": entry.title,
        "default_image_size": entry.image_size,
        "description": entry.description,
        "source": entry.source,
    }


__all__ = [
    "checked_preset",
    "preset",
    "preset_info",
    "preset_names",
    "preset_params",
    "preset_params_notes",
    "unlisted_params_notes",
]
