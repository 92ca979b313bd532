"""Read an ONNX file's structure without its weights: a protobuf wire-format pass that drops the data of large
initializers before the message is parsed.

The receptive-field arithmetic needs every tensor's shape and the values of small shape constants, never the
weights. `strip_weights` copies the serialized ``ModelProto`` but leaves out, inside ``graph.initializer``
(ModelProto field 7, GraphProto field 5), each TensorProto data field (``float_data`` 4, ``int32_data`` 5,
``string_data`` 6, ``int64_data`` 7, ``raw_data`` 9, ``double_data`` 10, ``uint64_data`` 11) longer than
`limit` bytes; names, dims and data types stay. The wire format is the protobuf encoding
(https://protobuf.dev/programming-guides/encoding/): a key varint ``field << 3 | wire_type``, then a varint
(type 0), 8 bytes (1), a varint length and that many bytes (2), or 4 bytes (5).
"""

from __future__ import annotations

import mmap

DEFAULT_LIMIT = 65536
"""Data fields longer than this many bytes are dropped: 4096 elements of at most 16 bytes stay readable."""

_GRAPH = 7
_INITIALIZER = 5
_DATA_FIELDS = frozenset({4, 5, 6, 7, 9, 10, 11})


class WireFormatError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def strip_weights(data: bytes | mmap.mmap, limit: int = DEFAULT_LIMIT) -> bytes | mmap.mmap:
    """`data` (a serialized ModelProto) without the initializer data fields longer than `limit` bytes; `data`
    itself when nothing is that long, or when it is not well-formed (the protobuf parser then reports it)."""
    view = memoryview(data)
    try:
        stripped = _rewrite(view, _graph(limit))
    except WireFormatError:
        return data
    return data if stripped is None else stripped


def _graph(limit: int):
    """ModelProto field rewriter: the graph with its large initializer data dropped."""
    rewrite_graph = _initializers(limit)

    def rewrite_model_field(field: int, body: memoryview) -> bytes | None:
        return _rewrite(body, rewrite_graph) if field == _GRAPH else None

    return rewrite_model_field


def _initializers(limit: int):
    """GraphProto field rewriter: each initializer without its data fields longer than `limit` bytes."""

    def rewrite_graph_field(field: int, body: memoryview) -> bytes | None:
        if field != _INITIALIZER:
            return None
        return _rewrite(body, lambda name, value: b"" if name in _DATA_FIELDS and len(value) > limit else None)

    return rewrite_graph_field


def _rewrite(message: memoryview, rewrite_field) -> bytes | None:
    """`message` with each length-delimited field replaced by ``rewrite_field(number, body)`` when that is not
    None (b"" drops the field); None when no field changed."""
    parts: list[bytes | memoryview] = []
    changed = False
    position, end = 0, len(message)
    while position < end:
        start = position
        key, position = _varint(message, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, position = _varint(message, position)
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        elif wire_type == 2:
            length, body_start = _varint(message, position)
            position = body_start + length
            if position > end:
                raise WireFormatError("a length-delimited field runs past the end")
            new = rewrite_field(field, message[body_start:position])
            if new is not None:
                changed = True
                if new:
                    parts.append(_encode_varint(key) + _encode_varint(len(new)))
                    parts.append(new)
                continue
        else:
            raise WireFormatError(f"wire type {wire_type} is not used by ONNX")
        if position > end:
            raise WireFormatError("a field runs past the end")
        parts.append(message[start:position])
    return b"".join(parts) if changed else None


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    """The varint at `position` and the position after it."""
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise WireFormatError("a varint is cut off or too long")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


__all__ = ["DEFAULT_LIMIT", "WireFormatError", "strip_weights"]
