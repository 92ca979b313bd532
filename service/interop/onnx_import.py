"""ONNX import: an uploaded model's graph as the solver's layer graph, then validated against the theory.

The model is only parsed (protobuf) and read, never run: Conv, MaxPool/AveragePool, global pools,
Gemm/MatMul, Add and Concat become layers; activations, batch norm, dropout and reshapes pass
through; small constant shape arithmetic (e.g. the pads of an exported ``F.pad``) is folded with
numpy under a size cap; any other operator is reported by name.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from cnnplan.solver import Layer, SolverError, ValidationReport, analyse, check_constraints, parse_min_c_value
from cnnplan.solver.layers import INPUT, OUT_OF_SCOPE
from cnnplan.solver.limits import MAX_LAYERS, MAX_NAME_LENGTH
from cnnplan.solver.repair import attach_fixes

MAX_FOLDED_ELEMENTS = 4096
"""Largest constant (elements) that shape arithmetic is folded for; larger ones keep only their dims."""

PASS_THROUGH_OPS = frozenset(
    [
        "Identity",
        "Flatten",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
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
        "Mul",
        "Div",
        "Sub",
        "Neg",
        "Abs",
        "Sqrt",
        "Pow",
        "Erf",
        "Exp",
        "Log",
    ]
)
"""Operators that change no spatial geometry: dropped, their consumers read their feature input (one feature
input only: a product of two feature maps, as in squeeze-and-excitation, is reported as unsupported)."""

LAYER_OPS = frozenset(
    [
        "Conv",
        "MaxPool",
        "AveragePool",
        "GlobalMaxPool",
        "GlobalAveragePool",
        "Gemm",
        "MatMul",
        "Add",
        "Sum",
        "Concat",
        "Relu",
        "BatchNormalization",
        "Dropout",
        "Pad",
        "Shape",
        "Size",
    ]
)
REFUSED_OPS = frozenset(
    ["ConvTranspose", "Upsample", "Resize", "DepthToSpace", "Attention", "MultiHeadAttention", "SelfAttention"]
)
"""Operators refused by name: the theory covers downsampling CNNs only (no upsampling, transposed
convolutions or attention)."""
CLASSIFIER_START_OPS = frozenset({"GlobalMaxPool", "GlobalAveragePool", "Gemm", "MatMul", "Flatten", "Reshape"})
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
    ]
)


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


def load_model(data: bytes, field: str = "model") -> onnx.ModelProto:
    """Parse ONNX protobuf bytes (no external data is read, nothing is executed)."""
    if not data:
        raise OnnxImportError(field, "is empty; upload an .onnx file")
    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeWarning, ValueError) as error:
        raise OnnxImportError(
            field, f"is not a valid ONNX model (protobuf parse failed: {type(error).__name__})"
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxImportError(field, "is not a valid ONNX model: it has no graph nodes")
    return model


def import_graph(model: onnx.ModelProto, classifier_from: str | None = None, field: str = "model") -> OnnxImport:
    """Map the ONNX graph to `Layer`s. The classifier level (not constrained) starts at node `classifier_from`,
    else at the first global pool, Flatten, Reshape, Gemm or MatMul applied to the features."""
    graph = model.graph
    dims: dict[str, tuple[int, ...]] = {}
    values: dict[str, np.ndarray] = {}
    for tensor in graph.initializer:
        dims[tensor.name] = tuple(tensor.dims)
        _keep_small(values, tensor.name, tensor)
    image_input = _image_input(graph, dims, field)
    source: dict[str, str] = {image_input.name: INPUT}
    pending_pad: dict[str, tuple[int, int, int, int]] = {}
    layers: list[Layer] = []
    onnx_nodes: list[int] = []
    weight_inputs: list[int | None] = []
    unsupported: list[str] = []
    passed: set[str] = set()
    used_names: set[str] = {INPUT}
    names = [node.name for node in graph.node]
    if classifier_from is not None and classifier_from not in names:
        raise OnnxImportError("classifier_from", "names no node of the model")
    classifier = False
    for index, node in enumerate(graph.node):
        op = node.op_type
        where = f"{field}.graph.node[{index}]"
        features = [name for name in node.input if name in source]
        if not features:
            _fold(node, dims, values)
            continue
        if (
            classifier_from is not None
            and node.name == classifier_from
            or classifier_from is None
            and op in CLASSIFIER_START_OPS
        ):
            classifier = True
        if any(name in pending_pad for name in features) and op not in ("Conv", "MaxPool", "AveragePool"):
            unsupported.append(f"{op} after Pad (node {_shown(node, index)})")
            continue
        if op in REFUSED_OPS:
            raise OnnxImportError(where, f"node {_shown(node, index)} is a {op}: {OUT_OF_SCOPE}")
        if node.domain not in ("", "ai.onnx") or (op not in LAYER_OPS and op not in PASS_THROUGH_OPS):
            unsupported.append(f"{op} (node {_shown(node, index)})")
            continue
        if op in ("Shape", "Size"):
            continue
        if len(node.output) < 1 or not node.output[0]:
            raise OnnxImportError(f"{where}.output", f"a {op} node needs an output")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        inputs = tuple(source[name] for name in features)
        constant_inputs = [name for name in node.input[1:] if name and name not in source]
        if op == "Pad":
            try:
                pads = _pads_of_pad(node, attrs, values, where)
            except (TypeError, ValueError, IndexError, OverflowError) as error:
                if isinstance(error, SolverError):
                    raise
                raise OnnxImportError(where, f"malformed Pad node ({type(error).__name__})") from None
            pending_pad[node.output[0]] = _add_pads(pending_pad.get(features[0], (0, 0, 0, 0)), pads)
            source[node.output[0]] = inputs[0]
            continue
        if op in PASS_THROUGH_OPS and len(features) > 1:  # e.g. squeeze-and-excitation gating x * s(x)
            unsupported.append(f"{op} of {len(features)} feature maps (node {_shown(node, index)})")
            continue
        if op in PASS_THROUGH_OPS or (op in ("Add", "Sum") and len(features) == 1):
            passed.add(op)
            source[node.output[0]] = inputs[0]
            continue
        level = "classifier" if classifier else "feature"
        name = _layer_name(node, index, used_names)
        try:
            layer = _layer(
                node, op, attrs, inputs, features, constant_inputs, dims, values, pending_pad, name, level, where
            )
        except (TypeError, ValueError, KeyError, IndexError, OverflowError) as error:
            if isinstance(error, SolverError):
                raise
            raise OnnxImportError(where, f"malformed {op} node ({type(error).__name__})") from None
        if len(layers) >= MAX_LAYERS:
            raise OnnxImportError(f"{field}.graph.node", f"has more than {MAX_LAYERS} layers")
        layers.append(layer)
        onnx_nodes.append(index)
        weight_inputs.append(_weight_inputs(layer, node, attrs, dims))
        source[node.output[0]] = name
    if unsupported:
        raise OnnxImportError(
            f"{field}.graph.node",
            "unsupported ONNX operators: "
            + "; ".join(unsupported)
            + ". Supported: "
            + ", ".join(sorted(LAYER_OPS))
            + "; passed through: "
            + ", ".join(sorted(PASS_THROUGH_OPS)),
        )
    if not layers:
        raise OnnxImportError(f"{field}.graph.node", "contains no convolution, pooling or linear layer")
    shape = [d.dim_value if d.HasField("dim_value") else None for d in image_input.type.tensor_type.shape.dim]
    image_size = (shape[2], shape[3]) if shape[2] and shape[3] else None
    return OnnxImport(
        tuple(layers), tuple(onnx_nodes), image_size, shape[1] or 3, tuple(sorted(passed)), tuple(weight_inputs)
    )


def validate_onnx(
    data: bytes,
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
    return attach_fixes(check_constraints(analysis, t, include_pointwise, rf_side)), imported  # type: ignore[arg-type]


def validate_onnx_file(
    path: str,
    image_size: int | tuple[int, int] | None = None,
    min_c_value: object = None,
    include_pointwise: bool = False,
    classifier_from: str | None = None,
) -> ValidationReport:
    """`validate_onnx` for a local file (the CLI's ``cnnplan validate model.onnx``)."""
    try:
        with open(path, "rb") as handle:
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
    return args[0]  # Identity


__all__ = ["OnnxImport", "OnnxImportError", "import_graph", "load_model", "validate_onnx", "validate_onnx_file"]
