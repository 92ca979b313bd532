"""Exact per-layer analysis of a sequential or graph architecture (THEORY.md sections 1 and 2)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Mapping, Sequence, Union

from . import arithmetic as ar
from .errors import InvalidLayerError, LimitExceededError, MisalignedMergeError, VanishingFeatureMapError
from .layers import (
    ADD,
    CONV,
    FEATURE,
    GLOBAL_KINDS,
    INPUT,
    LINEAR,
    MERGE_KINDS,
    WINDOWED_KINDS,
    Layer,
    as_graph,
    topological_order,
)
from .limits import MAX_CHANNELS, MAX_IMAGE_SIDE

ImageSize = Union[int, Sequence[int]]


@dataclass(frozen=True)
class LayerStats:
    """What one layer does to the receptive-field state and to the tensor, per spatial axis.

    ``receptive_field``, ``jump`` and ``effective_padding`` are after the layer; ``real_filter_size``
    (ke * j_in) and ``c_value`` (ke * j_in / r_out) are set for convolutions only.
    """

    index: int
    name: str
    kind: str
    level: str
    kernel_size: int
    stride: int
    dilation: int
    padding: tuple[int, int]
    groups: int
    inputs: tuple[str, ...]
    in_channels: int
    out_channels: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    receptive_field: int
    jump: int
    jump_in: int
    effective_padding: int
    real_filter_size: int | None
    c_value: Fraction | None
    params: int
    flops: int


@dataclass(frozen=True)
class Analysis:
    """The per-layer statistics of an architecture, in the order its layers were given."""

    image_size: tuple[int, int]
    in_channels: int
    layers: tuple[LayerStats, ...]

    @property
    def params(self) -> int:
        """Total learnable parameters."""
        return sum(layer.params for layer in self.layers)

    @property
    def flops(self) -> int:
        """Total FLOPs of one image: 2 per multiply-add of convolutions and linear layers."""
        return sum(layer.flops for layer in self.layers)

    def by_name(self, name: str) -> LayerStats:
        """The statistics of the layer called `name`."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def normalize_image_size(image_size: ImageSize, field: str = "image_size") -> tuple[int, int]:
    """(height, width) from an int or a pair; each side must be in [1, 2**20]."""
    if isinstance(image_size, bool):
        raise InvalidLayerError(field, "must be an integer or [height, width]")
    if isinstance(image_size, int):
        sides = (image_size, image_size)
    elif isinstance(image_size, (list, tuple)) and len(image_size) == 2:
        sides = tuple(image_size)
    else:
        raise InvalidLayerError(field, "must be an integer or [height, width]")
    for axis, side in enumerate(sides):
        where = field if isinstance(image_size, int) else f"{field}[{axis}]"
        if isinstance(side, bool) or not isinstance(side, int):
            raise InvalidLayerError(where, f"must be an integer, got {side!r}")
        if side < 1:
            raise InvalidLayerError(where, f"must be at least 1 pixel, got {side}")
        if side > MAX_IMAGE_SIDE:
            raise LimitExceededError(where, f"must be at most {MAX_IMAGE_SIDE} (2^20) pixels, got {side}")
    return sides[0], sides[1]


@dataclass
class _State:
    receptive_field: int
    jump: int
    effective_padding: int
    size: tuple[int, int]
    channels: int


def analyse(
    architecture: Iterable[Layer | Mapping[str, object]],
    image_size: ImageSize,
    in_channels: int = 3,
    field: str = "layers",
) -> Analysis:
    """Walk the graph in topological order, applying THEORY.md section 1 to every node."""
    size = normalize_image_size(image_size)
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or not 1 <= in_channels <= MAX_CHANNELS:
        raise InvalidLayerError("in_channels", f"must be an integer in [1, {MAX_CHANNELS}]")
    nodes = as_graph(architecture, field)
    order = topological_order(nodes, field)
    states: dict[str, _State] = {INPUT: _State(1, 1, 0, size, in_channels)}
    stats: list[LayerStats | None] = [None] * len(nodes)
    for index in order:
        node = nodes[index]
        where = f"{field}[{index}]"
        sources = [states[name] for name in node.inputs or ()]
        if node.kind in MERGE_KINDS:
            state, layer_stats = _merge(node, index, where, sources)
        else:
            state, layer_stats = _single(node, index, where, sources[0])
        states[node.name] = state
        stats[index] = layer_stats
    return Analysis(image_size=size, in_channels=in_channels, layers=tuple(s for s in stats if s is not None))


def _merge(node: Layer, index: int, where: str, sources: list[_State]) -> tuple[_State, LayerStats]:
    jumps = {s.jump for s in sources}
    if len(jumps) != 1:
        raise MisalignedMergeError(
            f"{where}.inputs",
            f"merge {node.name!r} joins inputs with different jumps {sorted(jumps)}; all inputs need the same jump",
        )
    sizes = {s.size for s in sources}
    if len(sizes) != 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
        raise MisalignedMergeError(f"{where}.inputs", f"merge {node.name!r} joins feature maps of different sizes ({shown})")
    if node.kind == ADD:
        channels = {s.channels for s in sources}
        if len(channels) != 1:
            raise MisalignedMergeError(
                f"{where}.inputs", f"add {node.name!r} joins different channel counts {sorted(channels)}"
            )
        out_channels = sources[0].channels
    else:
        out_channels = sum(s.channels for s in sources)
        if out_channels > MAX_CHANNELS:
            raise LimitExceededError(f"{where}.inputs", f"concat {node.name!r} would have more than {MAX_CHANNELS} channels")
    paddings = [s.effective_padding for s in sources]
    receptive_field = ar.merge_receptive_field([s.receptive_field for s in sources], paddings)
    state = _State(receptive_field, sources[0].jump, ar.merge_effective_padding(paddings), sources[0].size, out_channels)
    return state, _stats(node, index, sources[0], state, (0, 0), None, None, 0, 0, in_channels=sources[0].channels)


def _single(node: Layer, index: int, where: str, source: _State) -> tuple[_State, LayerStats]:
    height, width = source.size
    channels = source.channels
    if node.kind in WINDOWED_KINDS:
        kernel_effective = ar.effective_kernel(node.kernel_size, node.dilation)
        stride = node.effective_stride
        left, right = ar.padding_pair(node.padding, kernel_effective)
        out_size = tuple(ar.output_size(side, kernel_effective, stride, left, right) for side in (height, width))
        if min(out_size) < 1:
            raise VanishingFeatureMapError(
                where,
                f"layer {node.name!r} ({node.kind} {node.kernel_size}x{node.kernel_size}, stride {stride}) "
                f"gets a {height}x{width} map and would produce {out_size[0]}x{out_size[1]}",
            )
        receptive_field = ar.next_receptive_field(source.receptive_field, kernel_effective, source.jump)
        state = _State(
            receptive_field,
            ar.next_jump(source.jump, stride),
            ar.next_effective_padding(source.effective_padding, left, source.jump),
            out_size,
            channels,
        )
        if node.kind != CONV:
            return state, _stats(node, index, source, state, (left, right), None, None, 0, 0)
        out_channels = node.out_channels if node.out_channels is not None else channels
        if channels % node.groups or out_channels % node.groups:
            raise InvalidLayerError(
                f"{where}.groups",
                f"groups={node.groups} must divide both in_channels={channels} and out_channels={out_channels}",
            )
        state.channels = out_channels
        weights = node.kernel_size * node.kernel_size * (channels // node.groups) * out_channels
        params = weights + (out_channels if node.bias else 0)
        flops = 2 * weights * out_size[0] * out_size[1]
        real = ar.real_filter_size(kernel_effective, source.jump)
        c = ar.c_value(kernel_effective, source.jump, receptive_field)
        return state, _stats(node, index, source, state, (left, right), real, c, params, flops)
    if node.kind in GLOBAL_KINDS:
        receptive_field = ar.next_receptive_field(source.receptive_field, max(height, width), source.jump)
        out_channels = channels
        params = flops = 0
        if node.kind == LINEAR:
            out_channels = node.out_channels if node.out_channels is not None else channels
            in_features = channels * height * width
            params = in_features * out_channels + (out_channels if node.bias else 0)
            flops = 2 * in_features * out_channels
        state = _State(receptive_field, source.jump, source.effective_padding, (1, 1), out_channels)
        return state, _stats(node, index, source, state, (0, 0), None, None, params, flops)
    # element-wise: relu, bn, dropout
    state = _State(source.receptive_field, source.jump, source.effective_padding, source.size, channels)
    params = 2 * channels if node.kind == "bn" else 0
    return state, _stats(node, index, source, state, (0, 0), None, None, params, 0)


def _stats(
    node: Layer,
    index: int,
    source: _State,
    state: _State,
    padding: tuple[int, int],
    real: int | None,
    c: Fraction | None,
    params: int,
    flops: int,
    in_channels: int | None = None,
) -> LayerStats:
    return LayerStats(
        index=index,
        name=node.name or "",
        kind=node.kind,
        level=node.level,
        kernel_size=node.kernel_size,
        stride=node.effective_stride,
        dilation=node.dilation,
        padding=padding,
        groups=node.groups,
        inputs=tuple(node.inputs or ()),
        in_channels=source.channels if in_channels is None else in_channels,
        out_channels=state.channels,
        input_size=source.size,
        output_size=state.size,
        receptive_field=state.receptive_field,
        jump=state.jump,
        jump_in=source.jump,
        effective_padding=state.effective_padding,
        real_filter_size=real,
        c_value=c,
        params=params,
        flops=flops,
    )


def is_feature_conv(layer: LayerStats) -> bool:
    """A convolution of the feature level (the layers the theory constrains)."""
    return layer.kind == CONV and layer.level == FEATURE


def depth(analysis: Analysis) -> int:
    """Depth in the theory's sense: the number of feature-level convolutions."""
    return sum(1 for layer in analysis.layers if is_feature_conv(layer))


__all__ = ["Analysis", "LayerStats", "analyse", "normalize_image_size", "depth", "is_feature_conv"]
