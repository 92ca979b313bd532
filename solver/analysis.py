"""Exact per-layer analysis of a sequential or graph architecture (docs/theory.md#layer-arithmetic and #c-value)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

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
    POOL_KINDS,
    WINDOWED_KINDS,
    Layer,
    as_graph,
    topological_order,
)
from .limits import MAX_CHANNELS, MAX_IMAGE_SIDE, MAX_JUMP

ImageSize = int | Sequence[int]


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
    """Walk the graph in topological order, applying docs/theory.md#layer-arithmetic to every node."""
    size = normalize_image_size(image_size)
    _check_in_channels(in_channels)
    nodes = as_graph(architecture, field)
    return analyse_checked(nodes, topological_order(nodes, field), size, in_channels, field)


def analyse_checked(
    nodes: Sequence[Layer], order: Sequence[int], image_size: ImageSize, in_channels: int = 3, field: str = "layers"
) -> Analysis:
    """`analyse` of nodes already checked by `as_graph`, in their `topological_order` (a preset's graph is
    checked once: `presets.checked_preset`); the image size and channels are checked here as there."""
    size = normalize_image_size(image_size)
    _check_in_channels(in_channels)
    states: dict[str, _State] = {INPUT: _State(1, 1, 0, size, in_channels)}
    stats: list[LayerStats | None] = [None] * len(nodes)
    for index in order:
        node = nodes[index]
        where = f"{field}[{index}]"
        inputs = node.inputs or ()
        sources = [states[name] for name in inputs]
        if node.kind in MERGE_KINDS:
            state, layer_stats = _merge(node, index, where, sources)
        else:
            state, layer_stats = _single(node, index, where, sources[0], inputs)
        assert node.name is not None  # as_graph names every node
        states[node.name] = state
        stats[index] = layer_stats
    return Analysis(image_size=size, in_channels=in_channels, layers=tuple(s for s in stats if s is not None))


def analyse_chain(
    layers: Sequence[Layer], image_size: ImageSize, in_channels: int = 3, field: str = "layers"
) -> Analysis:
    """`analyse` for a sequential chain of already checked, merge-free `Layer`s (e.g. generated by the
    planner): the same statistics by the same formulas, without the parameter and graph checks."""
    size = normalize_image_size(image_size)
    _check_in_channels(in_channels)
    height, width = size
    receptive_field, jump, effective_padding, channels = 1, 1, 0, in_channels
    previous = INPUT
    stats: list[LayerStats] = []
    append, new_stats, padding_pair = stats.append, object.__new__, ar.padding_pair
    for index, node in enumerate(layers):
        fields = node.__dict__  # the frozen Layer's fields, read without attribute lookups
        kind = fields["kind"]
        name = fields["name"]
        if name is None:
            name = f"{kind}{index}"
        stride = fields["stride"]
        if stride is None:  # Layer.effective_stride
            stride = fields["kernel_size"] if kind in POOL_KINDS else 1
        jump_in, in_size, in_channels_here = jump, (height, width), channels
        padding, real, c, params, flops = _NO_PADDING, None, None, 0, 0
        if kind in WINDOWED_KINDS:
            kernel_effective = fields["dilation"] * (fields["kernel_size"] - 1) + 1
            padding = padding_pair(fields["padding"], kernel_effective)
            left = padding[0]
            spare = left + padding[1] - kernel_effective
            height, width = (height + spare) // stride + 1, (width + spare) // stride + 1
            if height < 1 or width < 1:
                source = _State(receptive_field, jump, effective_padding, in_size, channels)
                _single(node, index, f"{field}[{index}]", source, (previous,), name)  # raises the same error
            receptive_field += (kernel_effective - 1) * jump
            effective_padding += left * jump
            jump *= stride
            if jump > MAX_JUMP:
                source = _State(receptive_field, jump_in, effective_padding, in_size, channels)
                _single(node, index, f"{field}[{index}]", source, (previous,), name)  # raises the same error
            if kind == CONV:
                out_channels = fields["out_channels"]
                if out_channels is None:
                    out_channels = channels
                groups = fields["groups"]
                if channels % groups or out_channels % groups:
                    source = _State(receptive_field, jump_in, effective_padding, in_size, channels)
                    _single(node, index, f"{field}[{index}]", source, (previous,), name)  # raises the same error
                kernel_size = fields["kernel_size"]
                weights = kernel_size * kernel_size * (channels // groups) * out_channels
                params = weights + (out_channels if fields["bias"] else 0)
                flops = 2 * weights * height * width
                real = kernel_effective * jump_in
                c = Fraction(real, receptive_field)
                channels = out_channels
        elif kind in GLOBAL_KINDS:
            receptive_field += (max(height, width) - 1) * jump
            if kind == LINEAR:
                out_channels = fields["out_channels"]
                if out_channels is None:
                    out_channels = channels
                in_features = channels * height * width
                params = in_features * out_channels + (out_channels if fields["bias"] else 0)
                flops = 2 * in_features * out_channels
                channels = out_channels
            height = width = 1
        elif kind in MERGE_KINDS:
            raise InvalidLayerError(f"{field}[{index}].type", "a chain cannot contain merges; use analyse()")
        elif kind == "bn":
            params = 2 * channels
        inputs = fields["inputs"]
        layer_stats = new_stats(LayerStats)  # see _stats
        layer_stats.__dict__.update(
            index=index,
            name=name,
            kind=kind,
            level=fields["level"],
            kernel_size=fields["kernel_size"],
            stride=stride,
            dilation=fields["dilation"],
            padding=padding,
            groups=fields["groups"],
            inputs=inputs if inputs is not None else (previous,),
            in_channels=in_channels_here,
            out_channels=channels,
            input_size=in_size,
            output_size=(height, width),
            receptive_field=receptive_field,
            jump=jump,
            jump_in=jump_in,
            effective_padding=effective_padding,
            real_filter_size=real,
            c_value=c,
            params=params,
            flops=flops,
        )
        append(layer_stats)
        previous = name
    return Analysis(image_size=size, in_channels=in_channels, layers=tuple(stats))


_NO_PADDING = (0, 0)


def _check_in_channels(in_channels: object) -> None:
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or not 1 <= in_channels <= MAX_CHANNELS:
        raise InvalidLayerError("in_channels", f"must be an integer in [1, {MAX_CHANNELS}]")


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
        raise MisalignedMergeError(
            f"{where}.inputs", f"merge {node.name!r} joins feature maps of different sizes ({shown})"
        )
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
            raise LimitExceededError(
                f"{where}.inputs", f"concat {node.name!r} would have more than {MAX_CHANNELS} channels"
            )
    paddings = [s.effective_padding for s in sources]
    receptive_field = ar.merge_receptive_field([s.receptive_field for s in sources], paddings)
    state = _State(
        receptive_field, sources[0].jump, ar.merge_effective_padding(paddings), sources[0].size, out_channels
    )
    return state, _stats(
        node, node.name, node.inputs or (), index, sources[0], state, (0, 0), None, None, 0, 0, sources[0].channels
    )


def _single(
    node: Layer, index: int, where: str, source: _State, inputs: tuple[str, ...], name: str | None = None
) -> tuple[_State, LayerStats]:
    name = node.name if name is None else name
    height, width = source.size
    channels = source.channels
    kind = node.kind
    if kind in WINDOWED_KINDS:
        kernel_effective = ar.effective_kernel(node.kernel_size, node.dilation)
        stride = node.effective_stride
        left, right = ar.padding_pair(node.padding, kernel_effective)
        out_size = (
            ar.output_size(height, kernel_effective, stride, left, right),
            ar.output_size(width, kernel_effective, stride, left, right),
        )
        if out_size[0] < 1 or out_size[1] < 1:
            raise VanishingFeatureMapError(
                where,
                f"layer {name!r} ({kind} {node.kernel_size}x{node.kernel_size}, stride {stride}) "
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
        if state.jump > MAX_JUMP:
            raise LimitExceededError(
                f"{where}.stride",
                f"layer {name!r} would make the jump (product of strides) {state.jump}; at most 2^64 = {MAX_JUMP} is accepted",
            )
        if kind != CONV:
            return state, _stats(node, name, inputs, index, source, state, (left, right), None, None, 0, 0)
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
        return state, _stats(node, name, inputs, index, source, state, (left, right), real, c, params, flops)
    if kind in GLOBAL_KINDS:
        receptive_field = ar.next_receptive_field(source.receptive_field, max(height, width), source.jump)
        out_channels = channels
        params = flops = 0
        if kind == LINEAR:
            out_channels = node.out_channels if node.out_channels is not None else channels
            in_features = channels * height * width
            params = in_features * out_channels + (out_channels if node.bias else 0)
            flops = 2 * in_features * out_channels
        state = _State(receptive_field, source.jump, source.effective_padding, (1, 1), out_channels)
        return state, _stats(node, name, inputs, index, source, state, (0, 0), None, None, params, flops)
    # element-wise: relu, bn, dropout
    state = _State(source.receptive_field, source.jump, source.effective_padding, source.size, channels)
    params = 2 * channels if kind == "bn" else 0
    return state, _stats(node, name, inputs, index, source, state, (0, 0), None, None, params, 0)


def _stats(
    node: Layer,
    name: str | None,
    inputs: tuple[str, ...],
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
    # Frozen-dataclass __init__ sets each of the 22 fields through object.__setattr__; filling the
    # instance dict directly builds the identical object several times faster (this is the hot path).
    stats = object.__new__(LayerStats)
    stats.__dict__.update(
        index=index,
        name=name or "",
        kind=node.kind,
        level=node.level,
        kernel_size=node.kernel_size,
        stride=node.effective_stride,
        dilation=node.dilation,
        padding=padding,
        groups=node.groups,
        inputs=tuple(inputs),
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
    return stats


def is_feature_conv(layer: LayerStats) -> bool:
    """A convolution of the feature level (the layers the theory constrains)."""
    return layer.kind == CONV and layer.level == FEATURE


def depth(analysis: Analysis) -> int:
    """Depth in the theory's sense: the number of feature-level convolutions."""
    return sum(1 for layer in analysis.layers if is_feature_conv(layer))


__all__ = [
    "Analysis",
    "LayerStats",
    "analyse",
    "analyse_chain",
    "analyse_checked",
    "depth",
    "is_feature_conv",
    "normalize_image_size",
]
