"""ONNX import: an uploaded model's graph as the solver's layer graph, then validated against the theory.

The model is only parsed (protobuf) and read, never run: Conv, MaxPool/AveragePool, global pools,
Gemm/MatMul, Add and Concat become layers; activations, batch norm, dropout and reshapes pass
through; small constant shape arithmetic (e.g. the pads of an exported ``F.pad``) is folded with
numpy under a size cap; any other operator is reported by name.
"""

from __future__ import annotations

import contextlib
import mmap
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper, shape_inference

from cnnplan.service.interop.onnx_wire import WireFormatError, strip_weights
from cnnplan.solver import Layer, SolverError, ValidationReport, analyse, check_constraints, parse_min_c_value
from cnnplan.solver.layers import CLASSIFIER, FEATURE, INPUT, OUT_OF_SCOPE
from cnnplan.solver.limits import MAX_LAYERS, MAX_NAME_LENGTH
from cnnplan.solver.repair import attach_fixes

MAX_FOLDED_ELEMENTS = 4096
"""Largest constant (elements) that shape arithmetic is folded for; larger ones keep only their dims."""

ELEMENTWISE_OPS = frozenset(
    [
        "Identity",
        "Softmax",
        "LogSoftmax",
        "Clip",
        "Sigmoid",
        "Tanh",
        "LeakyRelu",
        "PRelu",
        "Elu",
        "Selu",
        "Celu",
        "Gelu",
        "HardSigmoid",
        "HardSwish",
        "Mish",
        "Softplus",
        "Softsign",
        "LRN",
        "Cast",
        "CastLike",
        "Neg",
        "Abs",
        "Sqrt",
        "Reciprocal",
        "Erf",
        "Exp",
        "Log",
        "Floor",
        "Ceil",
        "Round",
        "Sign",
    ]
)
"""Unary operators that change no spatial geometry: dropped, their consumers read their input."""

BINARY_OPS = frozenset(["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean"])
"""Element-wise operators of feature maps: one distinct map (x * sigmoid(x), x + bias) passes through; a map
times or plus a globally pooled map is a channel gate (passes through); two or more aligned maps merge."""

RESHAPE_OPS = frozenset(["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"])
"""Followed through: the height and width axes are found again in the output shape (pass-through), or lost
(a map flattened into a vector: the classifier level starts there)."""

NORM_OPS = frozenset(["BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization"])
"""Per-position normalisations with a scale and a shift per channel: counted as ``bn`` layers."""

REDUCE_OPS = frozenset(["ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL1", "ReduceL2"])
"""Over both spatial axes: a global pool; over channel axes only: pass-through; over one spatial axis: refused."""

OUT_OF_SCOPE_OPS = frozenset(
    ["Resize", "Upsample", "ConvTranspose", "DepthToSpace", "SpaceToDepth", "Attention", "MultiHeadAttention"]
)
"""Upsampling, transposed convolutions and attention (docs/theory.md#real-networks): refused by name."""

LAYER_OPS = frozenset(
    [
        "Conv",
        "MaxPool",
        "AveragePool",
        "GlobalMaxPool",
        "GlobalAveragePool",
        "Gemm",
        "MatMul",
        "Concat",
        "Relu",
        "Dropout",
        "Pad",
        "Slice",
        "Split",
        "SplitToSequence",
        "SequenceAt",
        "Gather",
        "Shape",
        "Size",
    ]
)
SUPPORTED_OPS = LAYER_OPS | ELEMENTWISE_OPS | BINARY_OPS | RESHAPE_OPS | NORM_OPS | REDUCE_OPS
"""Every operator the walk reads when it touches the image."""

PASS_THROUGH_OPS = ELEMENTWISE_OPS | RESHAPE_OPS
"""Kept for callers of earlier versions: the operators that are always dropped as geometry-neutral."""

_FOLDABLE = frozenset(
    [
        "Constant",
        "ConstantOfShape",
        "Concat",
        "Reshape",
        "Slice",
        "Transpose",
        "Cast",
        "Unsqueeze",
        "Squeeze",
        "Gather",
        "Identity",
        "Add",
        "Sub",
        "Mul",
        "Div",
    ]
)
_NCHW = (2, 3)
_ZERO_KEEPING = frozenset({"Cast", "CastLike", "Expand", "Identity"})
_SHAPE_ONLY = frozenset({"Cast", "CastLike", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose"})
"""Operators that give a weight another shape or type, not other values."""
"""Operators whose output is all zeros when their first input is."""
_DATA_INPUTS = {"CastLike": 1, "Expand": 1}
"""Operators whose later inputs only lend a type or a shape: a feature map there does not make the output one."""


class OnnxImportError(SolverError):
    """The upload is not a usable ONNX model (corrupt, no image input, unsupported node, ...)."""

    code = "invalid_onnx"


@dataclass(frozen=True)
class OnnxImport:
    """The layer graph read from a model; `onnx_nodes[i]` is the ONNX node index behind `layers[i]`."""

    layers: tuple[Layer, ...]
    onnx_nodes: tuple[int, ...]
    image_size: tuple[int, int] | None
    in_channels: int
    passed_through: tuple[str, ...]
    """Operator types dropped as geometry-neutral, sorted, each once."""
    weight_inputs: tuple[int | None, ...]
    """Input channels (conv: C/groups x groups) or features (linear) each layer's weight expects."""
    stored_params: int = 0
    """Elements of the floating-point weights the file stores (batch-norm running statistics and scalars excluded)."""
    notes: tuple[str, ...] = ()
    """What the reader should know about the count and the reading (folded batch norm, channel gates)."""
    elementwise_params: int = 0
    """Stored weights that element-wise operators read (a bias added after MatMul, a per-channel layer scale):
    counted in `stored_params`, listed by no layer."""


@dataclass(frozen=True)
class _Map:
    """Where a tensor that depends on the image stands: the solver node it is the output of, the positions of its
    height and width axes (None once flattened into a vector), and whether it is spatially global (the output
    of a global pool, or computed from one) or on the classifier level."""

    source: str
    axes: tuple[int, int] | None
    pooled: bool = False
    classifier: bool = False


def load_model(data: bytes | mmap.mmap, field: str = "model") -> onnx.ModelProto:
    """Parse ONNX protobuf bytes (no external data is read, nothing is executed); large weights are skipped
    while parsing (`onnx_wire.strip_weights`): only their shapes are kept, which is all the arithmetic needs.
    `data` may be a file mapped into memory (`validate_onnx_file`): the weights' pages are then never read."""
    if not data:
        raise OnnxImportError(field, "is empty; upload an .onnx file")
    stripped = strip_weights(data)
    try:
        model = onnx.ModelProto.FromString(stripped if isinstance(stripped, bytes) else bytes(stripped))
    except (DecodeError, RuntimeWarning, ValueError, WireFormatError) as error:
        raise OnnxImportError(
            field, f"is not a valid ONNX model (protobuf parse failed: {type(error).__name__})"
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxImportError(field, "is not a valid ONNX model: it has no graph nodes")
    return model


def import_graph(model: onnx.ModelProto, classifier_from: str | None = None, field: str = "model") -> OnnxImport:
    """Map the ONNX graph to `Layer`s (docs/theory.md#real-networks for the operators beyond the seed's). The classifier
    level (not constrained) starts at node `classifier_from`, else at the first global pool, vector or map
    flattened into a vector on the main path; the path of a channel gate is never constrained.

    Raises `OnnxImportError` listing every unsupported node (the walk goes on past each one)."""
    graph = model.graph
    names = [node.name for node in graph.node]
    if classifier_from is not None and classifier_from not in names:
        raise OnnxImportError("classifier_from", "names no node of the model")
    walk = _Walk(model, field, classifier_from)
    for index, node in enumerate(graph.node):
        try:
            walk.visit(index, node)
        except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError) as error:
            if isinstance(error, SolverError):
                raise
            raise OnnxImportError(
                f"{field}.graph.node[{index}]", f"malformed {str(node.op_type)[:64]!r} node ({type(error).__name__})"
            ) from None
    if len(walk.unsupported) == 1:  # one node: the field names it
        index, reason = walk.unsupported[0]
        raise OnnxImportError(
            f"{field}.graph.node[{index}]",
            f"1 unsupported ONNX node: {reason}. Supported operators: " + ", ".join(sorted(SUPPORTED_OPS)),
        )
    if walk.unsupported:
        raise OnnxImportError(
            f"{field}.graph.node",
            f"{len(walk.unsupported)} unsupported ONNX nodes: "
            + "; ".join(reason for _, reason in walk.unsupported)
            + ". Supported operators: "
            + ", ".join(sorted(SUPPORTED_OPS)),
        )
    if not walk.layers:
        raise OnnxImportError(f"{field}.graph.node", "contains no convolution, pooling or linear layer")
    shape = [d.dim_value if d.HasField("dim_value") else None for d in walk.image.type.tensor_type.shape.dim]
    image_size = (shape[2], shape[3]) if shape[2] and shape[3] else None
    return OnnxImport(
        tuple(walk.layers),
        tuple(walk.onnx_nodes),
        image_size,
        shape[1] or 3,
        tuple(sorted(walk.passed)),
        tuple(walk.weight_inputs),
        _stored_params(graph),
        walk.notes() + _shared_weights_note(graph),
        walk.elementwise_params,
    )


class _Walk:
    """The state of one walk over the nodes in file order (ONNX graphs are topologically sorted)."""

    def __init__(self, model: onnx.ModelProto, field: str, classifier_from: str | None) -> None:
        graph = model.graph
        self.field = field
        self.classifier_from = classifier_from
        self.dims: dict[str, tuple[int, ...]] = {}
        self.values: dict[str, np.ndarray] = {}
        for tensor in graph.initializer:
            self.dims[tensor.name] = tuple(tensor.dims)
            _keep_small(self.values, tensor.name, tensor)
        self.image = _image_input(graph, self.dims, field)
        self.shapes = _inferred_shapes(model)
        self.maps: dict[str, _Map] = {self.image.name: _Map(INPUT, _NCHW)}
        self.pending_pad: dict[str, tuple[int, int, int, int]] = {}
        self.layers: list[Layer] = []
        self.onnx_nodes: list[int] = []
        self.weight_inputs: list[int | None] = []
        self.unsupported: list[tuple[int, str]] = []
        """(ONNX node index, reason) of every node the walk cannot read."""
        self.passed: set[str] = set()
        self.used_names: set[str] = {INPUT}
        self.sequences: dict[str, tuple[onnx.NodeProto, str]] = {}
        self.stored = {t.name: int(np.prod(t.dims)) for t in graph.initializer if t.dims and int(np.prod(t.dims)) > 1}
        """Stored weights (more than one element) by name."""
        self.elementwise_read: set[str] = set()
        self.weight_of: dict[str, str] = {}
        """A constant computed from one stored weight by a shape-only operator (timm's ``gamma.reshape(1, -1, 1, 1)``)
        -> that weight's name."""
        self.zero_filled: set[str] = set()
        """Tensors the graph computes as all zeros (torch.export's stand-in bias of a bias-free convolution)."""
        self.gates = 0
        self.folded_convs = 0
        self.batch_norms = 0

    def visit(self, index: int, node: onnx.NodeProto) -> None:
        """Read one node: fold it when it does not touch the image, else map it (or record why not)."""
        features = [name for name in node.input[: _DATA_INPUTS.get(node.op_type)] if name in self.maps]
        if not features:
            _fold(node, self.dims, self.values)
            self._track_constants(node)
            return
        op = node.op_type
        shown = f"{op} (node {_shown(node, index)})"
        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS | OUT_OF_SCOPE_OPS:
            return self._refuse(index, node, features, shown)
        if op in OUT_OF_SCOPE_OPS:
            return self._refuse(index, node, features, f"node {_shown(node, index)} is a {op}: {OUT_OF_SCOPE}")
        if any(name in self.pending_pad for name in features) and op not in ("Conv", "MaxPool", "AveragePool"):
            return self._refuse(index, node, features, f"{op} after Pad (node {_shown(node, index)})")
        if len(node.output) < 1 or not node.output[0]:
            raise OnnxImportError(f"{self.field}.graph.node[{index}].output", f"a {op} node needs an output")
        if op in ("Shape", "Size"):
            self._shape_value(node, features[0])
            return None
        reason = self._dispatch(index, node, op, features)
        if reason is not None:
            self._refuse(index, node, features, f"{shown}: {reason}")
        return None

    def _dispatch(self, index: int, node, op: str, features: list[str]) -> str | None:
        """Map one image-dependent node; returns the reason it cannot be read, or None."""
        first = self.maps[features[0]]
        if op in ELEMENTWISE_OPS:
            return self._pass(node, op, first)
        if op in BINARY_OPS:
            return self._binary(index, node, op, features)
        if op in RESHAPE_OPS:
            return self._reshape(node, op, features[0], first)
        if op in REDUCE_OPS:
            return self._reduce(index, node, op, features[0], first)
        if op == "Concat":
            return self._concat(index, node, features)
        if op in ("Slice", "Split"):
            return self._select(index, node, op, features[0], first)
        if op in ("SplitToSequence", "SequenceAt"):
            return self._sequence(index, node, op, features[0], first)
        if op in ("Gemm", "MatMul"):
            return self._linear(index, node, op, features, first)
        if op == "Gather":
            if first.axes is not None and not first.pooled:
                return "a gather from a spatial map"
            return self._pass(node, op, first)  # re-indexing a pooled vector (torch's as_strided of a view)
        if op in NORM_OPS:
            self.batch_norms += op == "BatchNormalization"
            return self._add_layer(index, node, Layer(kind="bn"), (first,))
        if op in ("Conv", "MaxPool", "AveragePool", "Pad") and first.axes != _NCHW:
            return "a window over a map that is not NCHW"
        if op == "Conv" and len(node.input) > 1 and node.input[1] in self.maps:
            return "a convolution whose weight is computed from the image"
        return self._window(index, node, op, features, first)

    def _window(self, index: int, node, op: str, features: list[str], first: _Map) -> str | None:
        """Conv, pools, Relu, Dropout and Pad through the geometry functions."""
        where = f"{self.field}.graph.node[{index}]"
        attrs = _attributes(node)
        if op == "Pad":
            try:
                pads = _pads_of_pad(node, attrs, self.values, where)
            except (TypeError, ValueError, IndexError, OverflowError) as error:
                if isinstance(error, SolverError):
                    raise
                raise OnnxImportError(where, f"malformed Pad node ({type(error).__name__})") from None
            self.pending_pad[node.output[0]] = _add_pads(self.pending_pad.get(features[0], (0, 0, 0, 0)), pads)
            self.maps[node.output[0]] = first
            return None
        inputs = tuple(self.maps[name].source for name in features)
        constant_inputs = [name for name in node.input[1:] if name and name not in self.maps]
        level = self._level(node, (first,), op in ("GlobalMaxPool", "GlobalAveragePool"))
        name = _layer_name(node, index, self.used_names)
        try:
            layer = _layer(
                node, op, attrs, inputs, features, constant_inputs, self.dims, self.values, self.pending_pad, name,
                level, where,
            )  # fmt: skip
        except OnnxImportError as error:  # a geometry the arithmetic does not take: listed with the others
            self.used_names.discard(name)
            return f"{error.reason} ({error.field})"
        except (TypeError, ValueError, KeyError, IndexError, OverflowError) as error:
            if isinstance(error, SolverError):
                raise
            raise OnnxImportError(where, f"malformed {op} node ({type(error).__name__})") from None
        if op == "Conv" and _folded_batch_norm(node):
            self.folded_convs += 1
        pooled = op in ("GlobalMaxPool", "GlobalAveragePool") or first.pooled
        axes = _NCHW if op in ("Conv", "MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool") else first.axes
        self._append(index, node, layer, _Map(name, axes, pooled, level == CLASSIFIER))
        return None

    def _pass(self, node, op: str, source: _Map) -> None:
        """A geometry-neutral node: every output reads `source`."""
        self.passed.add(op)
        for output in node.output:
            if output:
                self.maps[output] = source

    def _binary(self, index: int, node, op: str, features: list[str]) -> str | None:
        """x op x, x op constant: pass-through; map op pooled map: channel gate; two aligned maps: a merge."""
        maps = [self.maps[name] for name in features]
        spatial = [m for m in maps if not m.pooled] or maps
        distinct: dict[str, _Map] = {}
        for m in spatial:
            distinct.setdefault(m.source, m)
        if len(distinct) == 1:
            if len(spatial) < len(maps):
                self.gates += 1
            reads = (self.weight_of.get(name, name) for name in node.input)
            self.elementwise_read.update(name for name in reads if name in self.stored)
            return self._pass(node, op, spatial[0])
        axes = {m.axes for m in distinct.values()}
        if len(axes) != 1:
            return "joins maps whose spatial axes are in different positions"
        merged = tuple(distinct.values())
        return self._add_layer(index, node, Layer(kind="add"), merged, merged[0].axes, all(m.pooled for m in merged))

    def _reshape(self, node, op: str, feature: str, source: _Map) -> str | None:
        """Follow the height and width axes through a reshape or transpose."""
        if source.axes is None:
            return self._pass(node, op, source)
        if op == "Transpose":
            rank = len(self.shapes.get(feature) or ()) or None
            perm = _attributes(node).get("perm")
            if perm is None:
                if rank is None:
                    return "a Transpose without perm on a tensor of unknown rank"
                perm = list(reversed(range(rank)))
            perm = [int(p) for p in perm]
            if not all(axis in perm for axis in source.axes):
                return f"perm {perm} drops a spatial axis"
            return self._pass(node, op, replace(source, axes=(perm.index(source.axes[0]), perm.index(source.axes[1]))))
        axes = _followed_axes(self.shapes.get(feature), source.axes, self.shapes.get(node.output[0]))
        if axes is not None:
            return self._pass(node, op, replace(source, axes=axes))
        flattened_map = not _is_one_by_one(self.shapes.get(feature), source.axes)
        classifier = source.classifier or (flattened_map and self.classifier_from is None)
        return self._pass(node, op, replace(source, axes=None, classifier=classifier))

    def _reduce(self, index: int, node, op: str, feature: str, source: _Map) -> str | None:
        """A reduction over both spatial axes is a global pool; over channel axes only, a pass-through."""
        attrs = _attributes(node)
        shape = self.shapes.get(feature)
        rank = len(shape) if shape else None
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            array = self.values.get(node.input[1])
            if array is None:
                return "its axes are not constant"
            axes = array.reshape(-1).tolist()
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                return self._pass(node, op, source)
            if rank is None:
                return "reduces all axes of a tensor of unknown rank"
            axes = list(range(rank))
        if any(int(a) < 0 for a in axes) and rank is None:
            return "negative axes on a tensor of unknown rank"
        reduced = sorted({int(a) % rank if rank else int(a) for a in axes})
        keep = bool(attrs.get("keepdims", 1))
        if source.axes is None or not set(source.axes) & set(reduced):
            return self._pass(node, op, replace(source, axes=_after_removal(source.axes, reduced, keep)))
        if not set(source.axes) <= set(reduced):
            return "reduces one spatial axis but not the other"
        kind = "global_maxpool" if op == "ReduceMax" else "global_avgpool"
        level = CLASSIFIER
        name = _layer_name(node, index, self.used_names)
        layer = Layer(kind=kind, name=name, level=level, inputs=(source.source,))
        self._append(index, node, layer, _Map(name, source.axes if keep else None, True, True))
        return None

    def _concat(self, index: int, node, features: list[str]) -> str | None:
        """A channel concatenation: one input passes through; several distinct maps merge."""
        if len(features) != len([name for name in node.input if name]):
            return "concatenates a constant with feature maps"
        maps = [self.maps[name] for name in features]
        first = maps[0]
        axis = int(_attributes(node).get("axis", 1))
        rank = len(self.shapes.get(features[0]) or ()) or None
        if axis < 0:
            if rank is None:
                return "a negative axis on a tensor of unknown rank"
            axis %= rank
        if first.axes is not None and (axis == 0 or axis in first.axes):
            return f"joins along axis {axis}, not a channel axis"
        if len(maps) == 1:
            return self._pass(node, "Concat", first)
        if len({m.source for m in maps}) != len(maps):
            return "concatenates the same map twice"
        if len({m.axes for m in maps}) != 1:
            return "joins maps whose spatial axes are in different positions"
        return self._add_layer(index, node, Layer(kind="concat"), tuple(maps), first.axes, all(m.pooled for m in maps))

    def _sequence(self, index: int, node, op: str, feature: str, source: _Map) -> str | None:
        """SplitToSequence of a map (torch's ``split``/``chunk`` unoptimised) and SequenceAt of such a sequence:
        the element is a channel selection whose size follows from the split."""
        if op == "SplitToSequence":
            self.sequences[node.output[0]] = (node, feature)
            self.maps[node.output[0]] = source
            return None
        if node.input[0] not in self.sequences:
            return "an element of a sequence that is not a split of a map"
        split, map_name = self.sequences[node.input[0]]
        shape = self.shapes.get(map_name)
        attrs = _attributes(split)
        sizes = self.values.get(split.input[1]) if len(split.input) > 1 and split.input[1] else None
        position = self.values.get(node.input[1]) if len(node.input) > 1 else None
        if shape is None or None in shape or position is None:
            return "its split sizes or position are not constant"
        axis = int(attrs.get("axis", 0)) % len(shape)
        length = shape[axis]
        if sizes is None or sizes.size == 1:
            chunk = length if sizes is None else int(sizes.reshape(-1)[0])
            sizes_list = [chunk] * (length // chunk) + ([length % chunk] if length % chunk else [])
        else:
            sizes_list = [int(v) for v in sizes.reshape(-1)]
        out_shape = list(shape)
        out_shape[axis] = sizes_list[int(position.reshape(-1)[0])]
        return self._select(index, node, op, map_name, source, {node.output[0]: tuple(out_shape)})

    def _select(self, index: int, node, op: str, feature: str, source: _Map, known=None) -> str | None:
        """A Slice or Split of the channels: each output keeps some channels (a ``select`` node, or a pass-through
        when all are kept); a slice of a spatial axis must keep it whole."""
        shape = self.shapes.get(feature)
        if shape is None or any(d is None for d in shape):
            return "the shape of its input is unknown"
        for position, output in enumerate(node.output):
            if not output:
                continue
            out_shape = (known or {}).get(output) or self.shapes.get(output)
            if op == "Slice" and (out_shape is None or any(d is None for d in out_shape)):
                out_shape = _sliced_shape(node, shape, self.values)
            if out_shape is None or len(out_shape) != len(shape) or any(d is None for d in out_shape):
                return f"the shape of its output {position} is unknown"
            if source.axes is not None and any(out_shape[a] != shape[a] for a in source.axes):
                return "cuts a spatial axis"
            if out_shape[0] != shape[0]:
                return "cuts the batch axis"
            kept = _channels(out_shape, source.axes)
            if kept == _channels(shape, source.axes):
                self.passed.add(op)
                self.maps[output] = source
                continue
            name = _output_name(node, index, position, self.used_names)
            layer = Layer(kind="select", out_channels=kept, name=name, level=self._level(node, (source,)),
                          inputs=(source.source,))  # fmt: skip
            self._append(index, node, layer, replace(source, source=name), output)
        return None

    def _linear(self, index: int, node, op: str, features: list[str], source: _Map) -> str | None:
        """Gemm/MatMul: on a vector, a linear layer; over the channel axis of a channels-last map, a 1x1 conv."""
        if len(features) > 1 or node.input[0] not in self.maps:
            return "a product of two feature maps (attention) is out of scope"
        weight = self.dims.get(node.input[1]) if len(node.input) > 1 else None
        if source.axes is None:
            level = CLASSIFIER if self.classifier_from is None else self._level(node, (source,))
            return self._window_linear(index, node, op, features, source, level)
        shape = self.shapes.get(features[0])
        rank = len(shape) if shape else 4
        if op != "MatMul" or weight is None or len(weight) != 2 or rank - 1 in source.axes:
            return "a product over a spatial axis"
        name = _layer_name(node, index, self.used_names)
        layer = Layer(kind="conv", kernel_size=1, out_channels=int(weight[1]), bias=False, name=name,
                      level=self._level(node, (source,)), inputs=(source.source,))  # fmt: skip
        self._append(index, node, layer, replace(source, source=name), weight_input=int(weight[0]))
        return None

    def _window_linear(self, index: int, node, op: str, features, source: _Map, level: str) -> str | None:
        where = f"{self.field}.graph.node[{index}]"
        attrs = _attributes(node)
        name = _layer_name(node, index, self.used_names)
        constant_inputs = [n for n in node.input[1:] if n and n not in self.maps]
        try:
            layer = _layer(node, op, attrs, (source.source,), features, constant_inputs, self.dims, self.values,
                           self.pending_pad, name, level, where)  # fmt: skip
        except (TypeError, ValueError, KeyError, IndexError, OverflowError) as error:
            if isinstance(error, SolverError):
                raise
            raise OnnxImportError(where, f"malformed {op} node ({type(error).__name__})") from None
        self._append(index, node, layer, _Map(name, None, source.pooled, level == CLASSIFIER))
        return None

    def _add_layer(self, index, node, template: Layer, maps: tuple[_Map, ...], axes=_NCHW, pooled=None) -> None:
        """Append `template` (kind and fields) as a layer reading `maps`; its output keeps `axes`."""
        name = _layer_name(node, index, self.used_names)
        level = self._level(node, maps)
        layer = replace(template, name=name, level=level, inputs=tuple(m.source for m in maps))
        pooled = maps[0].pooled if pooled is None else pooled
        axes = maps[0].axes if template.kind == "bn" else axes
        self._append(index, node, layer, _Map(name, axes, pooled, level == CLASSIFIER))

    @property
    def elementwise_params(self) -> int:
        """Elements of the stored weights read by element-wise operators, each weight once."""
        return sum(self.stored[name] for name in self.elementwise_read)

    def _track_constants(self, node) -> None:
        """Remember an all-zero constant, and its casts and broadcasts (``Expand(CastLike(0, x), shape)``); and
        which stored weight a reshaped or cast copy of one comes from."""
        if not node.output:
            return
        if node.op_type in _SHAPE_ONLY and node.input:
            source = self.weight_of.get(node.input[0], node.input[0])
            if source in self.stored:
                self.weight_of[node.output[0]] = source
        if node.op_type in ("Constant", "ConstantOfShape"):
            value = self.values.get(node.output[0])
            if value is not None and value.size > 0 and not value.any():
                self.zero_filled.add(node.output[0])
        elif node.op_type in _ZERO_KEEPING and node.input and node.input[0] in self.zero_filled:
            self.zero_filled.add(node.output[0])

    def _append(self, index: int, node, layer: Layer, output: _Map, tensor: str | None = None, weight_input=None):
        if len(self.layers) >= MAX_LAYERS:
            raise OnnxImportError(f"{self.field}.graph.node", f"has more than {MAX_LAYERS} layers")
        if layer.kind in ("conv", "linear") and layer.bias and node.input[2:3] and node.input[2] in self.zero_filled:
            layer = replace(layer, bias=False)  # a computed zero bias is no parameter (torch.export, optimize=False)
        self.layers.append(layer)
        self.onnx_nodes.append(index)
        if weight_input is None and layer.kind in ("conv", "linear"):
            weight_input = _weight_inputs(layer, node, _attributes(node), self.dims)
        self.weight_inputs.append(weight_input)
        self.maps[tensor or node.output[0]] = output

    def _level(self, node, maps, starts_classifier: bool = False) -> str:
        """Classifier when an input is (the main path after the start, or a gate's pooled path), or from here."""
        if node.name and node.name == self.classifier_from:
            return CLASSIFIER
        if any(m.classifier or m.pooled for m in maps):
            return CLASSIFIER
        return CLASSIFIER if starts_classifier else FEATURE

    def _refuse(self, index: int, node, features: list[str], reason: str) -> None:
        """Record `reason` for node `index` and read the node's outputs as its first feature input, so the walk
        goes on."""
        self.unsupported.append((index, reason))
        for output in node.output:
            if output:
                self.maps[output] = self.maps[features[0]]

    def _shape_value(self, node, feature: str) -> None:
        """Shape/Size of a feature map: a constant when shape inference knows the shape."""
        shape = self.shapes.get(feature)
        if shape is None or any(d is None for d in shape):
            return
        value = np.array(shape, dtype=np.int64) if node.op_type == "Shape" else np.array(int(np.prod(shape)))
        if node.op_type == "Shape":
            attrs = _attributes(node)
            value = value[int(attrs.get("start", 0)) : attrs.get("end")]
        self.values[node.output[0]] = value
        self.dims[node.output[0]] = tuple(value.shape)

    def notes(self) -> tuple[str, ...]:
        """Notes on the count and the reading, for the answer."""
        notes = []
        if self.folded_convs:
            notes.append(
                f"batch normalization appears folded into {self.folded_convs} convolutions by the exporter: the "
                "stored count lacks the batch-norm scales and shifts and has the folded biases, except those that "
                "were all zero, which the exporter dropped"
            )
        if self.elementwise_params:
            notes.append(
                f"{self.elementwise_params:,} stored weight elements are read by element-wise operators (biases added "
                "after a matrix product, per-channel scales such as layer scale): they count in the stored "
                "parameters, in no layer"
            )
        if self.gates:
            notes.append(
                f"{self.gates} channel gates (squeeze-and-excitation) read as channel scaling with no spatial "
                "effect: the gate's path sees the whole image, which is not the receptive field of the theory"
            )
        return tuple(notes)


def _output_name(node, index: int, position: int, used: set[str]) -> str:
    """A unique layer name for output `position` of a multi-output node (``<name>.<position>``)."""
    base = f"{(node.name or f'{node.op_type}_{index}')[: MAX_NAME_LENGTH - 16]}.{position}"
    name, suffix = base, 0
    while name in used:
        suffix += 1
        name = f"{base}#{suffix}"
    used.add(name)
    return name


def _sliced_shape(node, shape: tuple[int, ...], values: dict) -> tuple[int, ...] | None:
    """The output shape of a Slice (opset 10+) whose starts, ends, axes and steps were folded to constants."""
    args = [values.get(name) if name else None for name in node.input[1:5]]
    if len(args) < 2 or args[0] is None or args[1] is None:
        return None
    starts, ends = args[0].reshape(-1), args[1].reshape(-1)
    axes = args[2].reshape(-1) if len(args) > 2 and args[2] is not None else range(len(starts))
    steps = args[3].reshape(-1) if len(args) > 3 and args[3] is not None else [1] * len(starts)
    out = list(shape)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = int(axis) % len(shape)
        bound = np.iinfo(np.int64).max
        cut = slice(int(max(min(start, bound), -bound)), int(max(min(end, bound), -bound)), int(step) or 1)
        out[axis] = len(range(*cut.indices(shape[axis])))
    return tuple(out)


def _folded_batch_norm(node) -> bool:
    """Signs that an exporter folded a batch norm into this Conv: TorchScript's weight is an exporter-made
    constant (``onnx::Conv_*``); torch.export's output keeps the batch norm's name (``getitem*``)."""
    weight, output = node.input[1], node.output[0]
    return (isinstance(weight, str) and weight.startswith("onnx::")) or (
        isinstance(output, str) and output.startswith("getitem")
    )


def _attributes(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _inferred_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    """Every tensor's shape from ONNX shape inference (weights need only their dims). Shape arithmetic that
    inference does not propagate (``Shape -> Gather -> Div -> Slice``) is folded here and the inference run
    again with the folded values as constants; the shapes the file declares when inference fails."""
    shapes = _shape_pass(model)
    folded: dict[str, np.ndarray] = {}
    for _ in range(_SHAPE_PASSES):
        more = _folded_shape_values(model, shapes)
        if more.keys() <= folded.keys():
            break
        folded.update(more)
        shapes = _shape_pass(_with_constants(model, folded)) or shapes
    return shapes


_SHAPE_PASSES = 8
"""At most this many inference passes, each after folding what the previous one made known."""


def _shape_pass(model: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True).graph
    except Exception:  # noqa: BLE001  inference is a help: a model it cannot read is still walked
        inferred = model.graph
    shapes: dict[str, tuple[int | None, ...]] = {}
    for value in (*inferred.input, *inferred.value_info, *inferred.output):
        tensor = value.type.tensor_type
        if tensor.HasField("shape"):
            shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return shapes


def _folded_shape_values(model: onnx.ModelProto, shapes: dict) -> dict[str, np.ndarray]:
    """Values computed from Shape nodes of known shapes that feed a node inference left without a shape."""
    values: dict[str, np.ndarray] = {}
    dims: dict[str, tuple[int, ...]] = {}
    for tensor in model.graph.initializer:
        _keep_small(values, tensor.name, tensor)
    known = set(values)
    wanted: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        if node.op_type == "Shape" and node.input and node.input[0] not in values:
            shape = shapes.get(node.input[0])
            if shape and all(d is not None for d in shape):
                attrs = _attributes(node)
                values[node.output[0]] = np.array(shape, dtype=np.int64)[int(attrs.get("start", 0)) : attrs.get("end")]
            continue
        if all(name in values for name in node.input if name):
            _fold(node, dims, values)
            continue
        unknown = any(not shapes.get(out) or None in shapes[out] for out in node.output if out)
        for name in node.input:
            if unknown and name in values and name not in known and np.issubdtype(values[name].dtype, np.integer):
                wanted[name] = values[name]
    return wanted


def _with_constants(model: onnx.ModelProto, folded: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` whose nodes read the `folded` values from initializers (``<name>__folded``)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for name, value in folded.items():
        copy.graph.initializer.append(numpy_helper.from_array(value, f"{name}__folded"))
    for node in copy.graph.node:
        for position, name in enumerate(node.input):
            if name in folded:
                node.input[position] = f"{name}__folded"
    return copy


def _followed_axes(
    in_shape: tuple[int | None, ...] | None, axes: tuple[int, int], out_shape: tuple[int | None, ...] | None
) -> tuple[int, int] | None:
    """Positions of the height and width axes after a reshape: the output axis of the same size preceded by the
    same number of elements (so only the other axes were split, merged or moved); None when either is lost."""
    if not in_shape or not out_shape or any(d is None for d in (*in_shape, *out_shape)):
        return None
    found = []
    for axis in axes:
        size, before = in_shape[axis], int(np.prod(in_shape[:axis]))
        match = [b for b in range(len(out_shape)) if out_shape[b] == size and int(np.prod(out_shape[:b])) == before]
        if size == 1 or len(match) != 1:
            return None
        found.append(match[0])
    return found[0], found[1]


def _is_one_by_one(shape, axes: tuple[int, int]) -> bool:
    return bool(shape) and all(shape[a] == 1 for a in axes)


def _after_removal(axes: tuple[int, int] | None, reduced: list[int], keep: bool) -> tuple[int, int] | None:
    """Spatial axis positions once the `reduced` (non-spatial) axes are dropped (keepdims=0)."""
    if axes is None or keep:
        return axes
    return axes[0] - sum(r < axes[0] for r in reduced), axes[1] - sum(r < axes[1] for r in reduced)


def _channels(shape: tuple[int, ...], axes: tuple[int, int] | None) -> int:
    """Elements per position: the product of the axes that are neither the batch nor spatial."""
    skip = {0, *(axes or ())}
    return int(np.prod([d for a, d in enumerate(shape) if a not in skip]))


def _shared_weights_note(graph: onnx.GraphProto) -> tuple[str, ...]:
    """Notes when the stored weights are not the module's parameters one for one: weights read by several
    nodes (TorchScript's initializer deduplication stores identical tensors once, e.g. VGG's all-zero biases
    of one size) and exporter-made constants (``onnx::*``, ``val_*``: transposed or folded copies)."""
    large = {t.name for t in graph.initializer if (int(np.prod(t.dims)) if t.dims else 1) > 1}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in set(node.input):
            if name in large:
                readers[name] = readers.get(name, 0) + 1
    shared = sum(1 for count in readers.values() if count > 1)
    notes = []
    if shared:
        notes.append(
            f"{shared} stored weights are shared by several nodes (the exporter stores identical tensors once): "
            "the stored count has each once"
        )
    made = sum(1 for name in large if re.match(r"onnx::|val_\d+$", name))
    if made:
        notes.append(
            f"{made} stored weights are exporter-made constants (transposed or folded copies of module parameters, "
            "names onnx::* or val_*): constant folding may have merged scales into them and dropped all-zero "
            "biases, so the stored count is the file's, not necessarily the module's"
        )
    return tuple(notes)


def _stored_params(graph: onnx.GraphProto) -> int:
    """Elements of the floating-point weights stored in the file: initializers with more than one element,
    except the running mean and variance inputs of BatchNormalization (statistics, not parameters)."""
    statistics = {name for node in graph.node if node.op_type == "BatchNormalization" for name in node.input[3:5]}
    floating = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
    stored = {tensor.name: (tensor.data_type, tuple(tensor.dims)) for tensor in graph.initializer}
    for value in graph.input[1:]:  # weights given as inputs (a model exported without parameters)
        shape = value.type.tensor_type.shape.dim
        if value.name not in stored and all(d.HasField("dim_value") for d in shape):
            stored[value.name] = (value.type.tensor_type.elem_type, tuple(d.dim_value for d in shape))
    total = 0
    for name, (data_type, dims) in stored.items():
        size = int(np.prod(dims)) if dims else 1
        if data_type in floating and size > 1 and name not in statistics:
            total += size
    return total


def validate_onnx(
    data: bytes | mmap.mmap,
    image_size: int | tuple[int, int] | None = None,
    min_c_value: object = None,
    include_pointwise: bool = False,
    rf_side: str = "axis",
    classifier_from: str | None = None,
) -> tuple[ValidationReport, OnnxImport]:
    """Parse, import and validate an ONNX model; solver errors name the ONNX node (``model.graph.node[i]``)."""
    t = parse_min_c_value(min_c_value)
    imported = import_graph(load_model(data), classifier_from)
    size = image_size if image_size is not None else imported.image_size
    if size is None:
        raise OnnxImportError("image_size", "the model's input has no static height and width; pass image_size")
    try:
        analysis = analyse(imported.layers, size, imported.in_channels, field="layers")
    except SolverError as error:
        raise type(error)(_onnx_field(error.field, imported), error.reason) from None
    for stats, expected, node_index in zip(analysis.layers, imported.weight_inputs, imported.onnx_nodes):
        found = stats.in_channels * (stats.input_size[0] * stats.input_size[1] if stats.kind == "linear" else 1)
        if expected is not None and expected != found:
            raise OnnxImportError(
                f"model.graph.node[{node_index}].input[1]",
                f"the weight expects {expected} input features but the graph delivers {found}",
            )
    return attach_fixes(check_constraints(analysis, t, include_pointwise, rf_side)), imported


def validate_onnx_file(
    path: str,
    image_size: int | tuple[int, int] | None = None,
    min_c_value: object = None,
    include_pointwise: bool = False,
    classifier_from: str | None = None,
) -> ValidationReport:
    """`validate_onnx` for a local file (the CLI's ``cnnplan validate model.onnx``), mapped into memory instead
    of read: parsing skips the weights (`load_model`), so their pages are never read (a 553 MB VGG-16 in
    ~4 ms instead of ~270 ms, docs/performance.md). The map closes when the last view of it goes."""
    data: bytes | mmap.mmap
    try:
        with open(path, "rb") as handle:
            try:
                data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file cannot be mapped (load_model then says it is empty)
                data = handle.read()
    except OSError as error:
        raise OnnxImportError("file", f"cannot read {path}: {error.strerror}") from None
    return validate_onnx(data, image_size, min_c_value, include_pointwise, "axis", classifier_from)[0]


def _onnx_field(field: str, imported: OnnxImport) -> str:
    """``layers[i].x`` -> ``model.graph.node[<onnx index>].x``."""
    match = re.match(r"layers\[(\d+)\](.*)", field)
    if not match:
        return field
    return f"model.graph.node[{imported.onnx_nodes[int(match.group(1))]}]{match.group(2)}"


def _image_input(graph: onnx.GraphProto, dims: dict, field: str) -> onnx.ValueInfoProto:
    """The first graph input that is not an initializer; later ones are weights given as inputs (a model
    exported without parameters) and only their declared shapes are recorded in `dims`."""
    candidates = [value for value in graph.input if value.name not in dims]
    if not candidates:
        raise OnnxImportError(f"{field}.graph.input", "has no image input")
    for weight in candidates[1:]:
        shape = weight.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in shape):
            dims[weight.name] = tuple(d.dim_value for d in shape)
    image = candidates[0]
    if len(image.type.tensor_type.shape.dim) != 4:
        raise OnnxImportError(f"{field}.graph.input[0]", "must be a rank-4 (N, C, H, W) image tensor")
    return image


def _layer(node, op, attrs, inputs, features, constant_inputs, dims, values, pending_pad, name, level, where) -> Layer:
    """The `Layer` for one geometry-changing node."""
    if op == "Conv":
        weight = dims.get(node.input[1]) if len(node.input) > 1 else None
        if weight is None or len(weight) != 4:
            raise OnnxImportError(f"{where}.input[1]", "convolution weight must be a constant 4-d tensor")
        kernel = _square(attrs.get("kernel_shape", weight[2:]), f"{where}.kernel_shape")
        dilation = _square(attrs.get("dilations", (1, 1)), f"{where}.dilations")
        padding = _padding(node, attrs, features[0], pending_pad, where)
        return Layer(
            kind="conv", kernel_size=kernel, stride=_square(attrs.get("strides", (1, 1)), f"{where}.strides"),
            dilation=dilation, padding=padding, groups=int(attrs.get("group", 1)), out_channels=int(weight[0]),
            bias=len(node.input) > 2 and bool(node.input[2]), name=name, level=level, inputs=inputs,
        )  # fmt: skip
    if op in ("MaxPool", "AveragePool"):
        if "kernel_shape" not in attrs:
            raise OnnxImportError(f"{where}.kernel_shape", "is required")
        kernel = _square(attrs["kernel_shape"], f"{where}.kernel_shape")
        dilation = _square(attrs.get("dilations", (1, 1)), f"{where}.dilations")
        padding = _padding(node, attrs, features[0], pending_pad, where)
        return Layer(
            kind="maxpool" if op == "MaxPool" else "avgpool", kernel_size=kernel,
            stride=_square(attrs.get("strides", (1, 1)), f"{where}.strides"), dilation=dilation, padding=padding,
            ceil_mode=bool(attrs.get("ceil_mode", 0)), name=name, level=level, inputs=inputs,
        )  # fmt: skip
    if op in ("GlobalMaxPool", "GlobalAveragePool"):
        kind = "global_maxpool" if op == "GlobalMaxPool" else "global_avgpool"
        return Layer(kind=kind, name=name, level=level, inputs=inputs)
    if op in ("Gemm", "MatMul"):
        weight = dims.get(node.input[1]) if len(node.input) > 1 else None
        if weight is None or len(weight) != 2 or attrs.get("transA", 0):
            raise OnnxImportError(f"{where}.input[1]", f"{op} needs a constant 2-d weight (and transA=0)")
        out = weight[0] if attrs.get("transB", 0) else weight[1]
        bias = op == "Gemm" and len(node.input) > 2 and bool(node.input[2])
        return Layer(kind="linear", out_channels=int(out), bias=bias, name=name, level=level, inputs=inputs)
    if op in ("Add", "Sum"):
        return Layer(kind="add", name=name, level=level, inputs=inputs)
    if op == "Concat":
        if attrs.get("axis") not in (1, -3):
            raise OnnxImportError(f"{where}.axis", "only channel concatenation (axis 1) joins feature maps")
        if constant_inputs:
            raise OnnxImportError(f"{where}.input", "concatenates a constant with feature maps")
        return Layer(kind="concat", name=name, level=level, inputs=inputs)
    if op == "Relu":
        return Layer(kind="relu", name=name, level=level, inputs=inputs)
    if op == "BatchNormalization":
        return Layer(kind="bn", name=name, level=level, inputs=inputs)
    ratio = values.get(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    rate = float(ratio.reshape(-1)[0]) if ratio is not None and ratio.size == 1 else float(attrs.get("ratio", 0.5))
    return Layer(kind="dropout", rate=min(max(rate, 0.0), 0.999), name=name, level=level, inputs=inputs)


def _weight_inputs(layer: Layer, node, attrs: dict, dims: dict) -> int | None:
    """What the node's weight says about its input: C/groups x groups for Conv, K for Gemm/MatMul."""
    if layer.kind == "conv":
        return dims[node.input[1]][1] * layer.groups
    if layer.kind == "linear":
        weight = dims[node.input[1]]
        return weight[1] if attrs.get("transB", 0) else weight[0]
    return None


def _square(values: Iterable[int], where: str) -> int | tuple[int, int]:
    """A 2-d window attribute (kernel_shape, strides, dilations) as an int when both axes agree, else (h, w)."""
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, int) for v in values):
        raise OnnxImportError(where, "must be a list of integers")
    items = [int(v) for v in values]
    if len(items) != 2:
        raise OnnxImportError(where, f"only 2-d windows are supported, got {len(items)} values")
    return items[0] if items[0] == items[1] else (items[0], items[1])


def _padding(node, attrs, feature, pending_pad, where) -> int | str | tuple[tuple[int, int], tuple[int, int]]:
    """Padding as the solver takes it: auto_pad SAME_UPPER / SAME_LOWER as 'same_upper' / 'same_lower' (resolved
    from the input size, TensorFlow's rule), VALID as 0, explicit ``pads`` [top, left, bottom, right] (plus any
    preceding Pad node) as an int when every side agrees, else ((top, bottom), (left, right))."""
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    extra = pending_pad.get(feature, (0, 0, 0, 0))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if extra != (0, 0, 0, 0):
            raise OnnxImportError(f"{where}.auto_pad", f"{auto_pad} after a Pad node is not supported")
        return auto_pad.lower()
    if auto_pad not in ("NOTSET", "VALID"):
        raise OnnxImportError(f"{where}.auto_pad", f"unsupported auto_pad {auto_pad!r}")
    pads = [int(p) for p in attrs.get("pads", (0, 0, 0, 0))] if auto_pad == "NOTSET" else [0, 0, 0, 0]
    if len(pads) != 4:
        raise OnnxImportError(f"{where}.pads", f"needs 4 values for a 2-d window, got {len(pads)}")
    if any(p < 0 for p in pads):
        raise OnnxImportError(f"{where}.pads", f"negative padding (cropping) is not supported, got {pads}")
    top, left, bottom, right = _add_pads(extra, tuple(pads))
    if top == bottom == left == right:
        return top
    return (top, bottom), (left, right)


def _add_pads(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, int, int, int]:
    return tuple(x + y for x, y in zip(a, b))  # type: ignore[return-value]


def _pads_of_pad(node, attrs, values, where) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a Pad node on an NCHW tensor; its pads must be constant."""
    if "pads" in attrs:
        pads = [int(p) for p in attrs["pads"]]
    else:
        array = values.get(node.input[1]) if len(node.input) > 1 else None
        if array is None:
            raise OnnxImportError(f"{where}.input[1]", "Pad needs constant pads")
        pads = [int(p) for p in array.reshape(-1)]
    axes = values.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if axes is not None:
        full = [0] * 8
        for position, axis in enumerate(int(a) % 4 for a in axes.reshape(-1)):
            full[axis], full[axis + 4] = pads[position], pads[position + len(axes.reshape(-1))]
        pads = full
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or any(p < 0 for p in pads):
        raise OnnxImportError(f"{where}.pads", "only non-negative spatial padding of an NCHW tensor is supported")
    return pads[2], pads[3], pads[6], pads[7]


def _layer_name(node, index: int, used: set[str]) -> str:
    """The node's name (or ``<op>_<index>``), cut to the name limit and made unique."""
    base = (node.name or f"{node.op_type}_{index}")[: MAX_NAME_LENGTH - 8]
    name = base if base not in used else f"{base}#{index}"
    used.add(name)
    return name


def _shown(node, index: int) -> str:
    return repr(node.name[:MAX_NAME_LENGTH]) if node.name else f"#{index}"


def _keep_small(values: dict, name: str, tensor: onnx.TensorProto) -> None:
    """Remember the value of a small, embedded tensor (never reads external data)."""
    size = int(np.prod(tensor.dims)) if tensor.dims else 1
    if size <= MAX_FOLDED_ELEMENTS and tensor.data_location != onnx.TensorProto.EXTERNAL:
        with contextlib.suppress(Exception):  # an odd tensor simply stays unknown
            values[name] = numpy_helper.to_array(tensor)


def _fold(node, dims: dict, values: dict) -> None:
    """Record dims (and, when small, values) of a node that does not touch the image: weights and shape maths."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Constant" and "value" in attrs:
        dims[node.output[0]] = tuple(attrs["value"].dims)
        _keep_small(values, node.output[0], attrs["value"])
        return
    if node.op_type not in _FOLDABLE or node.domain not in ("", "ai.onnx"):
        return
    args: list[Any] = [values.get(name) for name in node.input]  # None for an absent optional input
    if any(arg is None for arg, name in zip(args, node.input) if name):
        _shape_only(node, attrs, dims)
        return
    if node.op_type == "Gather" and args[0].size * args[1].size > MAX_FOLDED_ELEMENTS * 16:
        return  # the result could be large; it is never shape arithmetic
    try:
        result = _evaluate(node.op_type, attrs, args)
    except (ValueError, IndexError, TypeError, KeyError, OverflowError, MemoryError):
        return
    if result is not None and result.size <= MAX_FOLDED_ELEMENTS:
        values[node.output[0]] = result
        dims[node.output[0]] = tuple(result.shape)


def _shape_only(node, attrs: dict, dims: dict) -> None:
    """Dims of a large weight passed through Identity, Cast or Transpose (an exporter's ``W^T`` for MatMul)."""
    source = dims.get(node.input[0]) if node.input else None
    if source is None or not node.output:
        return
    if node.op_type in ("Identity", "Cast"):
        dims[node.output[0]] = source
    elif node.op_type == "Transpose":
        perm = attrs.get("perm") or list(reversed(range(len(source))))
        if sorted(int(p) for p in perm) == list(range(len(source))):
            dims[node.output[0]] = tuple(source[int(p)] for p in perm)


def _evaluate(op: str, attrs: dict, args: list) -> np.ndarray | None:
    """numpy for the few shape-arithmetic operators exporters emit; sizes are capped before allocating."""
    if op == "Constant":
        for key in ("value_int", "value_float"):
            if key in attrs:
                return np.array(attrs[key])
        for key in ("value_ints", "value_floats"):
            if key in attrs:
                return np.array(list(attrs[key]))
        return None
    if op == "ConstantOfShape":
        shape = [int(s) for s in args[0].reshape(-1)]
        if any(s < 0 for s in shape) or int(np.prod(shape)) > MAX_FOLDED_ELEMENTS:
            return None
        fill = numpy_helper.to_array(attrs["value"]).reshape(-1)[0] if "value" in attrs else np.float32(0)
        return np.full(shape, fill)
    if op == "Concat":
        return np.concatenate([a for a in args if a is not None], axis=int(attrs.get("axis", 0)))
    if op == "Reshape":
        data, shape = args[0], [int(s) for s in args[1].reshape(-1)]
        shape = [data.shape[i] if s == 0 and not attrs.get("allowzero", 0) else s for i, s in enumerate(shape)]
        return data.reshape(shape)
    if op == "Slice":
        data = args[0]
        starts, ends = args[1].reshape(-1), args[2].reshape(-1)
        axes: Any = args[3].reshape(-1) if len(args) > 3 and args[3] is not None else range(len(starts))
        steps = args[4].reshape(-1) if len(args) > 4 and args[4] is not None else [1] * len(starts)
        index = [slice(None)] * data.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            bound = np.iinfo(np.int64).max
            index[int(axis)] = slice(int(max(min(start, bound), -bound)), int(max(min(end, bound), -bound)), int(step))
        return data[tuple(index)]
    if op == "Transpose":
        return np.transpose(args[0], attrs.get("perm"))
    if op == "Cast":
        return args[0].astype(helper.tensor_dtype_to_np_dtype(int(attrs["to"])))
    if op in ("Unsqueeze", "Squeeze"):
        axes = attrs.get("axes") or (args[1].reshape(-1).tolist() if len(args) > 1 and args[1] is not None else None)
        if op == "Unsqueeze":
            result = args[0]
            for axis in sorted(int(a) % (args[0].ndim + len(axes)) for a in axes):
                result = np.expand_dims(result, axis)
            return result
        return np.squeeze(args[0], axis=tuple(int(a) for a in axes) if axes else None)
    if op == "Gather":
        return np.take(args[0], args[1], axis=int(attrs.get("axis", 0)))
    if op in _ARITHMETIC:
        if args[0].size * args[1].size > MAX_FOLDED_ELEMENTS:
            return None
        integer = np.issubdtype(args[0].dtype, np.integer) and np.issubdtype(args[1].dtype, np.integer)
        function = np.floor_divide if op == "Div" and integer else _ARITHMETIC[op]
        return function(args[0], args[1])
    return args[0]  # Identity


_ARITHMETIC = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.true_divide}


__all__ = ["OnnxImport", "OnnxImportError", "import_graph", "load_model", "validate_onnx", "validate_onnx_file"]
