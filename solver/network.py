"""The concrete layer list of a planned network: an optional stem, feature stages of one block style,
downsampling, widths (docs/theory.md#widths) and the fixed classifier level (docs/theory.md#classifier-level).

Block styles (each block's k x k convolutions are the spatial ones the constraints govern; 1x1 ones
compose no pattern):

* ``plain``: one k x k conv (+BN) + ReLU per spatial layer (a chain).
* ``basic``: two k x k convs, an identity shortcut (a 1x1 projection + BN where the stride or the
  width changes) merged by ``add``, then ReLU (ResNet's basic block).
* ``bottleneck``: 1x1 reduce to the stage width, k x k, 1x1 expand to `expansion` (default 4) times
  the width, shortcut as above (ResNet v1.5: the stride sits on the k x k conv).
* ``inverted_residual``: 1x1 expand the input by `expansion` (default 6; skipped at 1), k x k
  depthwise, 1x1 project to the stage width with no activation, identity shortcut only where the
  stride is 1 and the widths match (MobileNet-v2).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidLayerError
from .layers import CLASSIFIER, INPUT, Layer, trusted_layer
from .limits import MAX_CHANNELS
from .planner import SPATIAL_CONVS_PER_BLOCK

CLASSIFIER_TARGET_SIDES = (8, 7, 6)
"""Sides the classifier level brings the last feature map down to (the seed's 6x6, 7x7 or 8x8)."""

CLASSIFIER_KERNEL = 5
"""Kernel of the classifier level's two convolutions."""


@dataclass(frozen=True)
class WidthRule:
    """Filters of stage i = min(base * multiplier^(i-1), max_width); default 64, doubling, capped at 512."""

    base: int = 64
    multiplier: int = 2
    max_width: int = 512

    def __post_init__(self) -> None:
        for name, low, high in (("base", 1, MAX_CHANNELS), ("multiplier", 1, 16), ("max_width", 1, MAX_CHANNELS)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidLayerError(f"widths.{name}", f"must be an integer in [{low}, {high}], got {value!r}")
        if self.max_width < self.base:
            raise InvalidLayerError("widths.max_width", f"must be at least base ({self.base}), got {self.max_width}")

    def scaled(self, base: int) -> WidthRule:
        """The same rule with stage-1 width `base` and the cap scaled alike: min(base * m^(i-1),
        max(base, floor(max_width * base / self.base))). Every stage width is non-decreasing in `base`."""
        return WidthRule(base, self.multiplier, max(base, self.max_width * base // self.base))

    def width(self, stage: int) -> int:
        """Filters of 1-based `stage`."""
        width = self.base
        for _ in range(stage - 1):
            width *= self.multiplier
            if width >= self.max_width:
                return self.max_width
        return min(width, self.max_width)


def classifier_pooling(side: int) -> tuple[int, int] | None:
    """(kernel, stride) of the pooling that brings a `side` map to 8, 7 or 6 (stride = side // target,
    kernel = side - (target - 1) * stride, least overlap first, then the larger target); None when side <= 8."""
    if side <= max(CLASSIFIER_TARGET_SIDES):
        return None
    target = min(CLASSIFIER_TARGET_SIDES, key=lambda target_side: (side % target_side, -target_side))
    stride = side // target
    return side - (target - 1) * stride, stride


DEFAULT_EXPANSION = {"bottleneck": 4, "inverted_residual": 6}
"""Expansion factor of each style's 1x1 convolutions when the request gives none (ResNet, MobileNet-v2)."""


def feature_side(side: int, stage_count: int, downsample: str) -> int:
    """Side of the last feature map: 'same' stride-1 convs keep it; each of the stage_count - 1
    downsamplings maps s to floor(s / 2) (2x2 stride-2 pool) or ceil(s / 2) (stride-2 'same' conv)."""
    for _ in range(stage_count - 1):
        side = -(-side // 2) if downsample == "conv" else side // 2
    return side


def feature_layers(
    stages: tuple[int, ...], kernel_size: int, downsample: str, widths: WidthRule, batch_norm: bool
) -> list[Layer]:
    """Stage i: a_i k x k 'same' convolutions (+BN) + ReLU; a 2x2 stride-2 pool between stages, or a
    stride-2 conv as the first layer of each stage after the first (downsample='conv')."""
    layers: list[Layer] = []
    append = layers.append
    new_layer = object.__new__
    bn = _layer_fields("bn")
    relu = _layer_fields("relu")
    for stage, count in enumerate(stages, start=1):
        prefix = f"s{stage}."
        if stage > 1 and downsample in ("maxpool", "avgpool"):
            append(trusted_layer(downsample, kernel_size=2, stride=2, name=f"s{stage - 1}.pool"))
        conv = _layer_fields(
            "conv",
            kernel_size=kernel_size,
            stride=1,
            padding="same",
            out_channels=widths.width(stage),
            bias=not batch_norm,
        )
        for position in range(1, count + 1):
            # One template dict per stage and kind, copied into each new Layer: the same object as
            # trusted_layer(...) builds, without re-packing the keyword arguments per layer.
            layer = new_layer(Layer)
            layer.__dict__.update(conv, name=f"{prefix}conv{position}")
            if downsample == "conv" and stage > 1 and position == 1:
                layer.__dict__["stride"] = 2
            append(layer)
            if batch_norm:
                layer = new_layer(Layer)
                layer.__dict__.update(bn, name=f"{prefix}bn{position}")
                append(layer)
            layer = new_layer(Layer)
            layer.__dict__.update(relu, name=f"{prefix}relu{position}")
            append(layer)
    return layers


def stem_layers(stem: str, kernel_size: int, width: int, batch_norm: bool) -> list[Layer]:
    """'conv': a k x k stride-2 'same' conv (+BN) + ReLU of `width` filters; 'conv_pool': the same and a
    2x2 stride-2 max pool; 'none': nothing."""
    if stem == "none":
        return []
    layers = [
        trusted_layer(
            "conv", kernel_size=kernel_size, stride=2, padding="same", out_channels=width, bias=not batch_norm,
            name="stem.conv",
        )
    ]  # fmt: skip
    if batch_norm:
        layers.append(trusted_layer("bn", name="stem.bn"))
    layers.append(trusted_layer("relu", name="stem.relu"))
    if stem == "conv_pool":
        layers.append(trusted_layer("maxpool", kernel_size=2, stride=2, name="stem.pool"))
    return layers


class _Graph:
    """Appends named nodes with explicit inputs; `last` is the newest node's name."""

    def __init__(self, last: str, batch_norm: bool) -> None:
        self.nodes: list[Layer] = []
        self.last = last
        self.batch_norm = batch_norm

    def add(self, kind: str, name: str, source: str | None = None, **fields: object) -> str:
        """Append `kind` fed by `source` (default: the newest node); return its name."""
        inputs = (self.last if source is None else source,)
        self.nodes.append(trusted_layer(kind, name=name, inputs=inputs, **fields))
        self.last = name
        return name

    def conv(
        self, name: str, kernel: int, out: int, stride: int = 1, source: str | None = None, groups: int = 1
    ) -> str:
        """A conv ('same' padding for k > 1), then BN when the network has it; returns the last name."""
        padding = "same" if kernel > 1 else 0
        self.add(
            "conv", name, source, kernel_size=kernel, stride=stride, padding=padding, groups=groups, out_channels=out,
            bias=not self.batch_norm,
        )  # fmt: skip
        if self.batch_norm:
            self.add("bn", f"{name}_bn")
        return self.last

    def merge(self, prefix: str, residual: str, shortcut: str, relu: bool) -> None:
        """``add`` of the two branches, then ReLU when asked."""
        self.nodes.append(trusted_layer("add", name=f"{prefix}.add", inputs=(residual, shortcut)))
        self.last = f"{prefix}.add"
        if relu:
            self.add("relu", f"{prefix}.relu")


def _shortcut(graph: _Graph, prefix: str, source: str, channels: int, out: int, stride: int) -> str:
    """Identity when stride 1 and widths match, else a 1x1 projection conv (+BN) of that stride."""
    if stride == 1 and channels == out:
        return source
    return graph.conv(f"{prefix}.proj", 1, out, stride, source=source)


def _block(
    graph: _Graph, style: str, prefix: str, k: int, channels: int, width: int, stride: int, expansion: int
) -> int:
    """Append one block fed by `graph.last`; return its output channels."""
    source = graph.last
    if style == "basic":
        graph.conv(f"{prefix}.conv1", k, width, stride)
        graph.add("relu", f"{prefix}.relu1")
        residual = graph.conv(f"{prefix}.conv2", k, width)
        graph.merge(prefix, residual, _shortcut(graph, prefix, source, channels, width, stride), relu=True)
        return width
    if style == "bottleneck":
        out = width * expansion
        graph.conv(f"{prefix}.conv1", 1, width)
        graph.add("relu", f"{prefix}.relu1")
        graph.conv(f"{prefix}.conv2", k, width, stride)
        graph.add("relu", f"{prefix}.relu2")
        residual = graph.conv(f"{prefix}.conv3", 1, out)
        graph.merge(prefix, residual, _shortcut(graph, prefix, source, channels, out, stride), relu=True)
        return out
    hidden = channels * expansion  # inverted_residual
    if expansion != 1:
        graph.conv(f"{prefix}.conv1", 1, hidden)
        graph.add("relu", f"{prefix}.relu1")
    graph.conv(f"{prefix}.conv2", k, hidden, stride, groups=hidden)
    graph.add("relu", f"{prefix}.relu2")
    residual = graph.conv(f"{prefix}.conv3", 1, width)
    if stride == 1 and channels == width:
        graph.merge(prefix, residual, source, relu=False)
    return width


def block_layers(
    stages: tuple[int, ...],
    kernel_size: int,
    downsample: str,
    widths: WidthRule,
    batch_norm: bool,
    style: str,
    in_channels: int,
    expansion: int | None = None,
    source: str = INPUT,
) -> tuple[list[Layer], int]:
    """The feature stages of a residual `style` as graph nodes fed by `source` (the stem's last node or
    the image), and the channels they end with. Stage i holds a_i / m blocks (m spatial convs per block);
    stages are joined by a 2x2 stride-2 pool, or (downsample='conv') the first block of each later stage
    has stride 2 (on its first k x k conv, and on its projection shortcut)."""
    factor = DEFAULT_EXPANSION.get(style, 1) if expansion is None else expansion
    per_block = SPATIAL_CONVS_PER_BLOCK[style]
    graph = _Graph(source, batch_norm)
    channels = in_channels
    for stage, count in enumerate(stages, start=1):
        if stage > 1 and downsample in ("maxpool", "avgpool"):
            graph.add(downsample, f"s{stage - 1}.pool", kernel_size=2, stride=2)
        for index in range(1, count // per_block + 1):
            stride = 2 if downsample == "conv" and stage > 1 and index == 1 else 1
            prefix = f"s{stage}.b{index}"
            channels = _block(graph, style, prefix, kernel_size, channels, widths.width(stage), stride, factor)
    return graph.nodes, channels


def _layer_fields(kind: str, **fields: object) -> dict[str, object]:
    """The instance dict of ``trusted_layer(kind, **fields)``, to stamp out many similar layers."""
    return dict(trusted_layer(kind, **fields).__dict__)


def classifier_layers(last_side: int, width: int, num_classes: int, dropout: float) -> list[Layer]:
    """Pool to 6..8 (skipped when already <= 8), two 5x5 'same' convs + ReLU, global max pool,
    dropout, linear to the class scores."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= MAX_CHANNELS:
        raise InvalidLayerError("num_classes", f"must be an integer in [1, {MAX_CHANNELS}], got {num_classes!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise InvalidLayerError("dropout", f"must be a probability in [0, 1), got {dropout!r}")
    layers: list[Layer] = []
    pooling = classifier_pooling(last_side)
    if pooling is not None:
        kernel, stride = pooling
        layers.append(Layer(kind="maxpool", kernel_size=kernel, stride=stride, level=CLASSIFIER, name="cls.pool"))
    for position in (1, 2):
        layers.append(
            Layer(
                kind="conv",
                kernel_size=CLASSIFIER_KERNEL,
                padding="same",
                out_channels=width,
                level=CLASSIFIER,
                name=f"cls.conv{position}",
            )
        )
        layers.append(Layer(kind="relu", level=CLASSIFIER, name=f"cls.relu{position}"))
    layers.append(Layer(kind="global_maxpool", level=CLASSIFIER, name="cls.global_maxpool"))
    layers.append(Layer(kind="dropout", rate=float(dropout), level=CLASSIFIER, name="cls.dropout"))
    layers.append(Layer(kind="linear", out_channels=num_classes, level=CLASSIFIER, name="cls.fc"))
    return layers


__all__ = [
    "DEFAULT_EXPANSION",
    "WidthRule",
    "block_layers",
    "classifier_layers",
    "classifier_pooling",
    "feature_layers",
    "feature_side",
    "stem_layers",
]
