"""Exact per-layer analysis of a sequential or graph architecture (docs/theory.md#layer-arithmetic and #c-value)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    SELECT,
    WINDOWED_KINDS,
    Layer,
    as_graph,
    topological_order,
)
from .limits import MAX_CHANNELS, MAX_IMAGE_SIDE, MAX_JUMP

ImageSize = int | Sequence[int]


Pair = tuple[int, int]
"""(height, width) of a per-axis quantity."""


@dataclass(frozen=True)
class LayerStats:
    """What one layer does to the receptive-field state and to the tensor, per spatial axis.

    Every geometric quantity is a (height, width) pair: ``kernel_size``, ``stride``, ``dilation``;
    ``padding`` is ((top, bottom), (left, right)) resolved. ``receptive_field``, ``jump`` and
    ``effective_padding`` are after the layer; ``real_filter_size`` (ke * j_in) and ``c_value``
    (ke * j_in / r_out) are set for convolutions only. ``bias``, ``rate`` and ``ceil_mode`` echo the
    layer's own fields so that an answer states every input.
    """

    index: int
    name: str
    kind: str
    level: str
    kernel_size: Pair
    stride: Pair
    dilation: Pair
    padding: tuple[Pair, Pair]
    groups: int
    inputs: tuple[str, ...]
    in_channels: int
    out_channels: int
    input_size: Pair
    output_size: Pair
    receptive_field: Pair
    jump: Pair
    jump_in: Pair
    effective_padding: Pair
    real_filter_size: Pair | None
    c_value: tuple[Fraction, Fraction] | None
    params: int
    flops: int
    bias: bool = True
    rate: float | None = None
    ceil_mode: bool = False

    @property
    def kernel_effective(self) -> Pair:
        """ke = d * (k - 1) + 1 on each axis."""
        return (
            ar.effective_kernel(self.kernel_size[0], self.dilation[0]),
            ar.effective_kernel(self.kernel_size[1], self.dilation[1]),
        )


@dataclass(frozen=True)
class Analysis:
    """The per-layer statistics of an architecture, in the order its layers were given; ``nodes`` are the
    layers they were computed from (checked and named by `analyse`; as given by `analyse_chain`): what a
    repair edits."""

    image_size: Pair
    in_channels: int
    layers: tuple[LayerStats, ...]
    nodes: tuple[Layer, ...] = field(default=(), compare=False)  # provenance, not part of the statistics

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


def normalize_image_size(image_size: ImageSize, field: str = "image_size") -> Pair:
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
    receptive_field: Pair
    jump: Pair
    effective_padding: Pair
    size: Pair
    channels: int


def analyse(
    architecture: Iterable[Layer | Mapping[str, object]],
    image_size: ImageSize,
    in_channels: int = 3,
    field: str = "layers",
) -> Analysis:
    """Walk the graph in topological order, applying docs/theory.md#layer-arithmetic to every node, once per axis."""
    size = normalize_image_size(image_size)
    _check_in_channels(in_channels)
    return analyse_checked(as_graph(architecture, field), size, in_channels, field)


def analyse_checked(
    nodes: tuple[Layer, ...], size: Pair, in_channels: int, field: str = "layers", order: Sequence[int] | None = None
) -> Analysis:
    """`analyse` of nodes `as_graph` already checked and named (e.g. a repair's edits of them): the walk
    without the parameter checks, in `order` when given (their `topological_order`, e.g. a preset's, computed
    once). Graph errors (misaligned merges, vanishing maps) still raise."""
    if order is None:
        order = topological_order(nodes, field)
    states: dict[str, _State] = {INPUT: _State((1, 1), (1, 1), (0, 0), size, in_channels)}
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
    return Analysis(
        image_size=size, in_channels=in_channels, layers=tuple(s for s in stats if s is not None), nodes=nodes
    )


Walk = dict[str, tuple[Layer, "_State", LayerStats]]
"""`walk_checked`'s answer: per node name, the node, the state after it and its stats."""


def walk_checked(nodes: tuple[Layer, ...], size: Pair, in_channels: int, reuse: Walk | None = None) -> Walk:
    """The walk of `analyse_checked` (same order, same errors), keyed by node name. With `reuse`, an earlier
    walk of other nodes on the same input, a node that is the same object as there and whose inputs were all
    reused keeps its state and stats: they are functions of the node and its inputs' states alone. A repair
    that edits one place of a network so re-walks only what its edit reaches."""
    order = topological_order(nodes, "layers")
    states: dict[str, _State] = {INPUT: _State((1, 1), (1, 1), (0, 0), size, in_channels)}
    walked: Walk = {}
    fresh: set[str] = set()
    for index in order:
        node = nodes[index]
        assert node.name is not None  # as_graph names every node
        inputs = node.inputs or ()
        if reuse is not None:
            before = reuse.get(node.name)
            if before is not None and before[0] is node and fresh.isdisjoint(inputs):
                states[node.name] = before[1]
                walked[node.name] = before
                continue
        where = f"layers[{index}]"
        sources = [states[name] for name in inputs]
        if node.kind in MERGE_KINDS:
            state, layer_stats = _merge(node, index, where, sources)
        else:
            state, layer_stats = _single(node, index, where, sources[0], inputs)
        states[node.name] = state
        walked[node.name] = (node, state, layer_stats)
        fresh.add(node.name)
    return walked


def analyse_chain(
    layers: Sequence[Layer], image_size: ImageSize, in_channels: int = 3, field: str = "layers"
) -> Analysis:
    """`analyse` for a sequential chain of already checked, merge-free `Layer`s (e.g. generated by the
    planner): the same statistics by the same formulas (`_single`), without the parameter and graph checks."""
    size = normalize_image_size(image_size)
    _check_in_channels(in_channels)
    state = _State((1, 1), (1, 1), (0, 0), size, in_channels)
    previous = INPUT
    stats: list[LayerStats] = []
    for index, node in enumerate(layers):
        if node.kind in MERGE_KINDS:
            raise InvalidLayerError(f"{field}[{index}].type", "a chain cannot contain merges; use analyse()")
        name = node.name if node.name is not None else f"{node.kind}{index}"
        inputs = node.inputs if node.inputs is not None else (previous,)
        fast = _square_conv(node, index, state, inputs, name)
        if fast is None:
            state, layer_stats = _single(node, index, f"{field}[{index}]", state, inputs, name)
        else:
            state, layer_stats = fast
        stats.append(layer_stats)
        previous = name
    # the layers as given (`as_graph` names them the same way when a repair needs them)
    return Analysis(image_size=size, in_channels=in_channels, layers=tuple(stats), nodes=tuple(layers))


def _square_conv(
    node: Layer, index: int, source: _State, inputs: tuple[str, ...], name: str
) -> tuple[_State, LayerStats] | None:
    """`_single` for the planner's common case, a square stride-1 'same' conv on a square state, computed once
    for both axes (the plan's hot path); None for anything else, which `_single` handles."""
    fields = node.__dict__
    kernel = fields["kernel_size"]
    r, j = source.receptive_field, source.jump
    if (
        fields["kind"] != CONV
        or fields["padding"] != "same"
        or fields["stride"] not in (1, None)
        or fields["dilation"] != 1
        or type(kernel) is not int
        or r[0] != r[1]
        or j[0] != j[1]
    ):
        return None
    channels = source.channels
    out_channels = fields["out_channels"] if fields["out_channels"] is not None else channels
    groups = fields["groups"]
    if channels % groups or out_channels % groups:
        return None  # _single raises the error
    left = (kernel - 1) // 2
    r_out = r[0] + (kernel - 1) * j[0]
    state = _State((r_out, r_out), j, (source.effective_padding[0] + left * j[0], source.effective_padding[1] + left * j[1]),
                   source.size, out_channels)  # fmt: skip
    weights = kernel * kernel * (channels // groups) * out_channels
    params = weights + (out_channels if fields["bias"] else 0)
    flops = 2 * weights * source.size[0] * source.size[1]
    real = kernel * j[0]
    c = Fraction(real, r_out)
    padding = ((left, kernel - 1 - left), (left, kernel - 1 - left))
    pair = (kernel, kernel)
    return state, _stats(
        node, name, inputs, index, source, state, pair, _ONES, _ONES, padding, (real, real), (c, c), params, flops
    )


def _check_in_channels(in_channels: object) -> None:
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or not 1 <= in_channels <= MAX_CHANNELS:
        raise InvalidLayerError("in_channels", f"must be an integer in [1, {MAX_CHANNELS}]")


def _merge(node: Layer, index: int, where: str, sources: list[_State]) -> tuple[_State, LayerStats]:
    jumps = {s.jump for s in sources}
    if len(jumps) != 1:
        square = all(h == w for h, w in jumps)
        flat = [h for h, _ in sorted(jumps)] if square else [list(j) for j in sorted(jumps)]
        raise MisalignedMergeError(
            f"{where}.inputs",
            f"merge {node.name!r} joins inputs with different jumps {flat}; all inputs need the same jump",
        )
    sizes = {s.size for s in sources}
    if len(sizes) != 1:
        shown_sizes = ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
        raise MisalignedMergeError(
            f"{where}.inputs", f"merge {node.name!r} joins feature maps of different sizes ({shown_sizes})"
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
    receptive_field = []
    effective_padding = []
    for axis in (0, 1):
        paddings = [s.effective_padding[axis] for s in sources]
        receptive_field.append(ar.merge_receptive_field([s.receptive_field[axis] for s in sources], paddings))
        effective_padding.append(ar.merge_effective_padding(paddings))
    state = _State(
        (receptive_field[0], receptive_field[1]),
        sources[0].jump,
        (effective_padding[0], effective_padding[1]),
        sources[0].size,
        out_channels,
    )
    return state, _stats(
        node, node.name, node.inputs or (), index, sources[0], state, _ONES, _ONES, _ONES, _NO_PADDING,
        None, None, 0, 0, sources[0].channels,
    )  # fmt: skip


_ONES = (1, 1)
_NO_PADDING = ((0, 0), (0, 0))


def _shape(pair: Pair) -> str:
    return f"{pair[0]}x{pair[1]}"


def _single(
    node: Layer, index: int, where: str, source: _State, inputs: tuple[str, ...], name: str | None = None
) -> tuple[_State, LayerStats]:
    name = node.name if name is None else name
    channels = source.channels
    kind = node.kind
    if kind in WINDOWED_KINDS:
        kernel = ar.axis_pair(node.kernel_size)
        stride = ar.axis_pair(node.effective_stride)
        dilation = ar.axis_pair(node.dilation)
        ke = (ar.effective_kernel(kernel[0], dilation[0]), ar.effective_kernel(kernel[1], dilation[1]))
        padding = ar.axis_paddings(node.padding, ke, source.size, stride)
        ceil_mode = node.ceil_mode
        out_size = (
            ar.pooled_output_size(source.size[0], ke[0], stride[0], padding[0][0], padding[0][1], ceil_mode),
            ar.pooled_output_size(source.size[1], ke[1], stride[1], padding[1][0], padding[1][1], ceil_mode),
        )
        if out_size[0] < 1 or out_size[1] < 1:
            raise VanishingFeatureMapError(
                where,
                f"layer {name!r} ({kind} {_shape(kernel)}, stride {_shape(stride)}) "
                f"gets a {_shape(source.size)} map and would produce {_shape(out_size)}",
            )
        r, j, p = source.receptive_field, source.jump, source.effective_padding
        state = _State(
            (ar.next_receptive_field(r[0], ke[0], j[0]), ar.next_receptive_field(r[1], ke[1], j[1])),
            (ar.next_jump(j[0], stride[0]), ar.next_jump(j[1], stride[1])),
            (
                ar.next_effective_padding(p[0], padding[0][0], j[0]),
                ar.next_effective_padding(p[1], padding[1][0], j[1]),
            ),
            out_size,
            channels,
        )
        if state.jump[0] > MAX_JUMP or state.jump[1] > MAX_JUMP:
            raise LimitExceededError(
                f"{where}.stride",
                f"layer {name!r} would make the jump (product of strides) {max(state.jump)}; "
                f"at most 2^64 = {MAX_JUMP} is accepted",
            )
        if kind != CONV:
            return state, _stats(
                node, name, inputs, index, source, state, kernel, stride, dilation, padding, None, None, 0, 0
            )
        out_channels = node.out_channels if node.out_channels is not None else channels
        if channels % node.groups or out_channels % node.groups:
            raise InvalidLayerError(
                f"{where}.groups",
                f"groups={node.groups} must divide both in_channels={channels} and out_channels={out_channels}",
            )
        state.channels = out_channels
        weights = kernel[0] * kernel[1] * (channels // node.groups) * out_channels
        params = weights + (out_channels if node.bias else 0)
        flops = 2 * weights * out_size[0] * out_size[1]
        real = (ar.real_filter_size(ke[0], j[0]), ar.real_filter_size(ke[1], j[1]))
        r_out = state.receptive_field
        if real[0] == real[1] and r_out[0] == r_out[1]:  # square: one exact c-value for both axes
            c_both = ar.c_value(ke[0], j[0], r_out[0])
            c = (c_both, c_both)
        else:
            c = (ar.c_value(ke[0], j[0], r_out[0]), ar.c_value(ke[1], j[1], r_out[1]))
        return state, _stats(
            node, name, inputs, index, source, state, kernel, stride, dilation, padding, real, c, params, flops
        )
    if kind in GLOBAL_KINDS:
        r, j = source.receptive_field, source.jump
        receptive_field = (
            ar.next_receptive_field(r[0], source.size[0], j[0]),
            ar.next_receptive_field(r[1], source.size[1], j[1]),
        )
        out_channels = channels
        params = flops = 0
        if kind == LINEAR:
            out_channels = node.out_channels if node.out_channels is not None else channels
            in_features = channels * source.size[0] * source.size[1]
            params = in_features * out_channels + (out_channels if node.bias else 0)
            flops = 2 * in_features * out_channels
        state = _State(receptive_field, source.jump, source.effective_padding, (1, 1), out_channels)
        return state, _stats(
            node, name, inputs, index, source, state, _ONES, _ONES, _ONES, _NO_PADDING, None, None, params, flops
        )
    # element-wise: relu, bn, dropout, select
    if kind == SELECT:
        channels = _selected_channels(node, channels, where)
    state = _State(source.receptive_field, source.jump, source.effective_padding, source.size, channels)
    params = 2 * channels if kind == "bn" else 0
    return state, _stats(
        node, name, inputs, index, source, state, _ONES, _ONES, _ONES, _NO_PADDING, None, None, params, 0
    )


def _selected_channels(node: Layer, channels: int, where: str) -> int:
    """Channels after a ``select`` node: its out_channels, at most the `channels` it receives."""
    selected = node.out_channels if node.out_channels is not None else channels
    if selected > channels:
        raise InvalidLayerError(
            f"{where}.out_channels", f"select {node.name!r} keeps {selected} of only {channels} channels"
        )
    return selected


def _stats(
    node: Layer,
    name: str | None,
    inputs: tuple[str, ...],
    index: int,
    source: _State,
    state: _State,
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
    padding: tuple[Pair, Pair],
    real: Pair | None,
    c: tuple[Fraction, Fraction] | None,
    params: int,
    flops: int,
    in_channels: int | None = None,
) -> LayerStats:
    # Frozen-dataclass __init__ sets each field through object.__setattr__; filling the instance dict
    # directly builds the identical object several times faster (this is the hot path).
    stats = object.__new__(LayerStats)
    stats.__dict__.update(
        index=index,
        name=name or "",
        kind=node.kind,
        level=node.level,
        kernel_size=kernel,
        stride=stride,
        dilation=dilation,
        padding=padding,
        ceil_mode=node.ceil_mode,
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
        bias=node.bias,
        rate=node.rate,
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
    "walk_checked",
    "depth",
    "is_feature_conv",
    "normalize_image_size",
]
