"""Layer and graph descriptions: plain, immutable config objects with their checks.

A sequential architecture is a list of `Layer`; a graph is a list of `Layer` whose `inputs` name
earlier or later nodes (the implicit source is ``input``). `as_graph` turns either form, given as
`Layer` objects or plain dicts, into a checked tuple of named nodes.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import GraphStructureError, InvalidLayerError, LimitExceededError
from .limits import (
    MAX_CHANNELS,
    MAX_DILATION,
    MAX_FAN_IN,
    MAX_KERNEL_SIZE,
    MAX_LAYERS,
    MAX_NAME_LENGTH,
    MAX_PADDING,
    MAX_STRIDE,
)

INPUT = "input"
"""Name of the implicit source node (the image)."""

CONV = "conv"
MAXPOOL = "maxpool"
AVGPOOL = "avgpool"
GLOBAL_MAXPOOL = "global_maxpool"
GLOBAL_AVGPOOL = "global_avgpool"
LINEAR = "linear"
ADD = "add"
CONCAT = "concat"
SELECT = "select"
"""Keeps ``out_channels`` of its input's channels (a channel slice or split): no parameters, no spatial effect."""
ELEMENTWISE_KINDS = frozenset({"relu", "bn", "dropout", SELECT})
POOL_KINDS = frozenset({MAXPOOL, AVGPOOL})
GLOBAL_KINDS = frozenset({GLOBAL_MAXPOOL, GLOBAL_AVGPOOL, LINEAR})
MERGE_KINDS = frozenset({ADD, CONCAT})
WINDOWED_KINDS = frozenset({CONV}) | POOL_KINDS
LAYER_KINDS = frozenset({CONV}) | POOL_KINDS | GLOBAL_KINDS | MERGE_KINDS | ELEMENTWISE_KINDS
REFUSED_KINDS = frozenset({"upsample", "conv_transpose", "attention"})
"""Layer types that are recognised and refused: the theory covers downsampling CNNs only."""
OUT_OF_SCOPE = "the theory covers downsampling CNNs only (no upsampling, transposed convolutions or attention)"

FEATURE = "feature"
CLASSIFIER = "classifier"
LEVELS = frozenset({FEATURE, CLASSIFIER})

PADDING_WORDS = ("same", "valid", "same_upper", "same_lower")
"""'same': (ke-1)//2 first; 'valid': none; 'same_upper'/'same_lower': TensorFlow's SAME / ONNX's auto_pad."""
AxisValue = int | tuple[int, int]
"""An int (both axes) or (height, width)."""
Padding = int | str | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]]
"""An int (every side), 'same', 'valid', (h, w) symmetric per axis, or ((top, bottom), (left, right))."""


@dataclass(frozen=True)
class Layer:
    """One layer or graph node. ``kernel_size``, ``stride`` and ``dilation`` are an int or (height, width).

    ``stride`` defaults to 1 for convolutions and to ``kernel_size`` for pooling (PyTorch's rule);
    ``rate`` is a dropout probability in [0, 1). ``padding`` is an int (every side), ``"same"`` (output =
    ceil(size / stride); left pad (ke - 1) // 2 per axis), ``"valid"`` (0), ``"same_upper"`` /
    ``"same_lower"`` (TensorFlow's SAME, ONNX's auto_pad: depends on the input size), (h, w) symmetric
    per axis or ((top, bottom), (left, right)). ``ceil_mode`` (pools only) rounds the output size up, PyTorch's rule.
    ``out_channels`` is conv filters or linear outputs.
    """

    kind: str
    kernel_size: AxisValue = 1
    stride: AxisValue | None = None
    dilation: AxisValue = 1
    padding: Padding = 0
    groups: int = 1
    out_channels: int | None = None
    name: str | None = None
    level: str = FEATURE
    inputs: tuple[str, ...] | None = None
    bias: bool = True
    rate: float | None = None
    ceil_mode: bool = False

    @property
    def effective_stride(self) -> AxisValue:
        """The stride in use: the given one, else 1 for convolutions and kernel_size for pools."""
        if self.stride is not None:
            return self.stride
        return self.kernel_size if self.kind in POOL_KINDS else 1


_LAYER_DEFAULTS = {name: field.default for name, field in Layer.__dataclass_fields__.items() if name != "kind"}


def trusted_layer(kind: str, **fields: object) -> Layer:
    """`Layer(kind, **fields)` for generated, known-good fields, built without the frozen-dataclass
    per-field ``object.__setattr__`` (the planner emits hundreds of layers per request)."""
    layer = object.__new__(Layer)
    layer.__dict__.update(_LAYER_DEFAULTS, kind=kind, **fields)
    return layer


ArchitectureInput = Sequence[Layer] | Sequence[Mapping[str, object]]

_LAYER_FIELDS = set(Layer.__dataclass_fields__)
_ALIASES = {"type": "kind"}
COMPUTED_FIELDS = frozenset(
    ["in_channels", "output_size", "receptive_field", "jump", "effective_padding", "real_filter_size", "c_value",
     "c_value_exact", "c_axis", "params", "flops"]
)  # fmt: skip
"""Fields an answer's layer computes: recognised and ignored on input, so that answers post back unchanged."""
_AXIS_FIELDS = ("kernel_size", "stride", "dilation", "padding")


def _as_tuples(value: object) -> object:
    """Lists (JSON arrays) as tuples, nested: a Layer's per-axis fields are immutable."""
    if isinstance(value, list):
        return tuple(_as_tuples(item) for item in value)
    return value


def layer_from_mapping(data: Mapping[str, object], where: str) -> Layer:
    """Build a `Layer` from a plain dict (``type`` is accepted for ``kind``; `COMPUTED_FIELDS` are ignored);
    unknown keys are errors."""
    if not isinstance(data, Mapping):
        raise InvalidLayerError(where, "must be an object")
    values: dict[str, object] = {}
    for key, value in data.items():
        name = _ALIASES.get(key, key)
        if name in COMPUTED_FIELDS:
            continue
        if name not in _LAYER_FIELDS:
            raise InvalidLayerError(f"{where}.{key}", "is not a layer field")
        if value is not None:
            values[name] = _as_tuples(value) if name in _AXIS_FIELDS else value
    if "kind" not in values:
        raise InvalidLayerError(f"{where}.type", "is required")
    if "inputs" in values:
        inputs = values["inputs"]
        if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)):
            raise InvalidLayerError(f"{where}.inputs", "must be a list of node names")
        values["inputs"] = tuple(inputs)
    return trusted_layer(**values)  # type: ignore[arg-type]  # the values are checked by check_layer


def _check_int(value: object, where: str, low: int, high: int) -> None:
    if type(value) is int and low <= value <= high:  # the common case, decided in one step
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLayerError(where, f"must be an integer, got {value!r}")
    if value < low:
        raise InvalidLayerError(where, f"must be at least {low}, got {value}")
    if value > high:
        raise LimitExceededError(where, f"must be at most {high}, got {value}")


def _check_axis_value(value: object, where: str, low: int, high: int) -> None:
    """An int in [low, high] or a pair [h, w] of them."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise InvalidLayerError(where, f"must be an integer or [height, width], got {len(value)} values")
        for axis, item in enumerate(value):
            _check_int(item, f"{where}[{axis}]", low, high)
        return
    _check_int(value, where, low, high)


def _check_padding(padding: object, where: str) -> None:
    """An int, 'same', 'valid', [h, w] or [[top, bottom], [left, right]], every side in [0, MAX_PADDING]."""
    if isinstance(padding, str):
        if padding not in PADDING_WORDS:
            raise InvalidLayerError(
                where, f"must be an integer, 'same', 'valid', 'same_upper' or 'same_lower', got {padding!r}"
            )
        return
    if not isinstance(padding, (list, tuple)):
        _check_int(padding, where, 0, MAX_PADDING)
        return
    if len(padding) != 2:
        raise InvalidLayerError(where, "must be [h, w] or [[top, bottom], [left, right]]")
    for axis, sides in enumerate(padding):
        _check_axis_value(sides, f"{where}[{axis}]", 0, MAX_PADDING)


def _is_one(value: object) -> bool:
    return value == 1 or (isinstance(value, (list, tuple)) and all(item == 1 for item in value))


def check_layer(layer: Layer, where: str) -> None:
    """Raise a typed error naming ``where.<field>`` if any parameter of `layer` is out of range; upsampling,
    transposed convolutions and attention are refused by name (`OUT_OF_SCOPE`)."""
    if isinstance(layer.kind, str) and layer.kind in REFUSED_KINDS:
        shown = f"layer {layer.name!r}" if isinstance(layer.name, str) else "this layer"
        raise InvalidLayerError(f"{where}.type", f"{shown} is a {layer.kind!r}: {OUT_OF_SCOPE}")
    if not isinstance(layer.kind, str) or layer.kind not in LAYER_KINDS:
        kinds = ", ".join(sorted(LAYER_KINDS))
        raise InvalidLayerError(f"{where}.type", f"unknown layer type {layer.kind!r}; expected one of {kinds}")
    if not isinstance(layer.level, str) or layer.level not in LEVELS:
        raise InvalidLayerError(f"{where}.level", f"must be 'feature' or 'classifier', got {layer.level!r}")
    _check_axis_value(layer.kernel_size, f"{where}.kernel_size", 1, MAX_KERNEL_SIZE)
    if layer.stride is not None:
        _check_axis_value(layer.stride, f"{where}.stride", 1, MAX_STRIDE)
    _check_axis_value(layer.dilation, f"{where}.dilation", 1, MAX_DILATION)
    _check_int(layer.groups, f"{where}.groups", 1, MAX_CHANNELS)
    if layer.out_channels is not None:
        _check_int(layer.out_channels, f"{where}.out_channels", 1, MAX_CHANNELS)
    _check_padding(layer.padding, f"{where}.padding")
    if not isinstance(layer.ceil_mode, bool):
        raise InvalidLayerError(f"{where}.ceil_mode", "must be a boolean")
    if layer.ceil_mode and layer.kind not in POOL_KINDS:
        raise InvalidLayerError(f"{where}.ceil_mode", f"only pools take ceil_mode, not {layer.kind!r}")
    if layer.rate is not None:
        if layer.kind != "dropout":
            raise InvalidLayerError(f"{where}.rate", f"only dropout layers take a rate, not {layer.kind!r}")
        if isinstance(layer.rate, bool) or not isinstance(layer.rate, (int, float)) or not 0 <= layer.rate < 1:
            raise InvalidLayerError(f"{where}.rate", f"must be a probability in [0, 1), got {layer.rate!r}")
    if not isinstance(layer.bias, bool):
        raise InvalidLayerError(f"{where}.bias", "must be a boolean")
    if layer.name is not None:
        if not isinstance(layer.name, str) or not layer.name:
            raise InvalidLayerError(f"{where}.name", "must be a non-empty string")
        if len(layer.name) > MAX_NAME_LENGTH:
            raise LimitExceededError(f"{where}.name", f"must be at most {MAX_NAME_LENGTH} characters")
        if layer.name == INPUT:
            raise GraphStructureError(f"{where}.name", f"'{INPUT}' is reserved for the image")
    if layer.kind != CONV and not _is_one(layer.dilation) and layer.kind not in POOL_KINDS:
        raise InvalidLayerError(f"{where}.dilation", f"only convolutions and pools take a dilation, not {layer.kind!r}")
    if layer.kind != CONV and layer.groups != 1:
        raise InvalidLayerError(f"{where}.groups", f"only convolutions take groups, not {layer.kind!r}")


def as_graph(architecture: Iterable[Layer | Mapping[str, object]], field: str = "layers") -> tuple[Layer, ...]:
    """Return checked, named nodes: names default to ``<type><index>``, inputs to the previous node.

    Raises on unknown kinds, bad parameters, duplicate names, dangling inputs, wrong input counts,
    more than `MAX_LAYERS` nodes or more than `MAX_FAN_IN` inputs to one merge. Cycles are found
    by `topological_order`.
    """
    if isinstance(architecture, (str, bytes, Mapping)) or not isinstance(architecture, Iterable):
        raise InvalidLayerError(field, "must be a list of layers")
    items = list(architecture)
    if not items:
        raise InvalidLayerError(field, "must contain at least one layer")
    if len(items) > MAX_LAYERS:
        raise LimitExceededError(field, f"has {len(items)} layers; at most {MAX_LAYERS} are accepted")
    nodes: list[Layer] = []
    seen: set[str] = set()
    previous = INPUT
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        fresh = not isinstance(item, Layer)
        layer = item if isinstance(item, Layer) else layer_from_mapping(item, where)
        check_layer(layer, where)
        name = layer.name if layer.name is not None else f"{layer.kind}{index}"
        if name in seen:
            raise GraphStructureError(f"{where}.name", f"duplicate node name {name!r}")
        seen.add(name)
        inputs = layer.inputs if layer.inputs is not None else (previous,)
        if not isinstance(inputs, (list, tuple)):
            raise InvalidLayerError(f"{where}.inputs", "must be a list of node names")
        for position, source in enumerate(inputs):
            if not isinstance(source, str) or not source:
                raise GraphStructureError(f"{where}.inputs[{position}]", "must be a node name")
        if layer.kind in MERGE_KINDS:
            if len(inputs) < 2:
                raise GraphStructureError(f"{where}.inputs", f"a {layer.kind!r} merge needs at least 2 inputs")
            if len(inputs) > MAX_FAN_IN:
                raise LimitExceededError(
                    f"{where}.inputs", f"a merge takes at most {MAX_FAN_IN} inputs, got {len(inputs)}"
                )
            if len(set(inputs)) != len(inputs):
                raise GraphStructureError(f"{where}.inputs", "names the same input twice")
        elif len(inputs) != 1:
            raise GraphStructureError(
                f"{where}.inputs", f"a {layer.kind!r} layer takes exactly 1 input, got {len(inputs)}"
            )
        if fresh:  # built just above from a dict: nobody else holds it, so name it in place
            layer.__dict__.update(name=name, inputs=tuple(inputs))
            nodes.append(layer)
        else:
            nodes.append(_named(layer, name, tuple(inputs)))
        previous = name
    known = seen | {INPUT}
    for index, node in enumerate(nodes):
        for position, source in enumerate(node.inputs or ()):
            if source not in known:
                raise GraphStructureError(f"{field}[{index}].inputs[{position}]", f"names unknown node {source!r}")
            if source == node.name:
                raise GraphStructureError(f"{field}[{index}].inputs[{position}]", "a node cannot be its own input")
    return tuple(nodes)


def _named(layer: Layer, name: str, inputs: tuple[str, ...]) -> Layer:
    """`layer` with `name` and `inputs` set: `dataclasses.replace` without its per-call field walk."""
    if layer.name == name and layer.inputs == inputs:
        return layer
    copy = object.__new__(Layer)
    copy.__dict__.update(layer.__dict__)
    copy.__dict__.update(name=name, inputs=inputs)
    return copy


def topological_order(nodes: Sequence[Layer], field: str = "layers") -> list[int]:
    """Kahn's algorithm, stable in list order; raises `GraphStructureError` naming a node on a cycle."""
    index_of = {node.name: i for i, node in enumerate(nodes)}
    indegree = [0] * len(nodes)
    consumers: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for source in node.inputs or ():
            if source != INPUT:
                indegree[i] += 1
                consumers[index_of[source]].append(i)
    ready = [i for i, degree in enumerate(indegree) if degree == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in consumers[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        stuck = min(i for i, degree in enumerate(indegree) if degree > 0)
        raise GraphStructureError(f"{field}[{stuck}].inputs", f"node {nodes[stuck].name!r} is on a cycle")
    return order


__all__ = [
    "CLASSIFIER",
    "FEATURE",
    "INPUT",
    "LAYER_KINDS",
    "OUT_OF_SCOPE",
    "REFUSED_KINDS",
    "Layer",
    "as_graph",
    "check_layer",
    "layer_from_mapping",
    "topological_order",
    "trusted_layer",
]
