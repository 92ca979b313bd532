"""The concrete layer list of a planned network: feature stages, downsampling, widths
(docs/theory.md#widths) and the fixed classifier level (docs/theory.md#classifier-level)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidLayerError
from .layers import CLASSIFIER, Layer, trusted_layer
from .limits import MAX_CHANNELS

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


__all__ = ["WidthRule", "classifier_layers", "classifier_pooling", "feature_layers", "feature_side"]
