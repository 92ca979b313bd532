"""A reference walker for per-axis geometry, written from the rules (docs/geometry.md, docs/theory.md#layer-arithmetic
and #real-networks) without the solver's code: it imports nothing from cnnplan.

Receptive field, jump and effective padding come from brute force: the set of input pixels (padding
positions included, the image extended without bound) that output units 0 and 1 of a node depend on,
one axis at a time. Output sizes come from PyTorch's documented formulas (floor, or ceil_mode's rule that
the last window must start inside the input or its left padding). Padding spellings are resolved here
from their definitions.
"""

from __future__ import annotations

from functools import cache

IMAGE = "input"


def pair(value) -> tuple[int, int]:
    """(h, w) of an int or a 2-sequence."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def sides(padding, axis: int, span: int, size: int, stride: int) -> tuple[int, int]:
    """(first, last) padding of one axis for any spelling; `span` is the dilated kernel extent."""
    if padding == "valid":
        return 0, 0
    if padding == "same":  # the project's 'same': the smaller half first, independent of the input size
        return (span - 1) // 2, span - 1 - (span - 1) // 2
    if padding in ("same_upper", "same_lower"):  # TensorFlow: output ceil(size / stride)
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        small = total // 2
        return (small, total - small) if padding == "same_upper" else (total - small, small)
    if isinstance(padding, int):
        return padding, padding
    chosen = padding[axis]
    return (chosen, chosen) if isinstance(chosen, int) else (int(chosen[0]), int(chosen[1]))


def out_size(size: int, span: int, stride: int, first: int, last: int, ceil_mode: bool) -> int:
    """PyTorch: floor((size + first + last - span) / stride) + 1, or with ceil_mode the ceiling, less one
    when that last window would start at or past size + first."""
    total = size + first + last - span
    if not ceil_mode:
        return total // stride + 1
    count = -(-total // stride) + 1
    if (count - 1) * stride >= size + first:
        count -= 1
    return count


def walk(nodes: list[dict], image: tuple[int, int]) -> dict[str, dict]:
    """Per node (in the given, topological order): per-axis rf, jump, P (brute force) and output size.

    Each node is a dict: name, type, inputs, kernel_size, stride, dilation, padding, ceil_mode (request
    spellings, defaults as in the API: stride 1 for convs, kernel_size for pools).
    """
    by_name = {node["name"]: node for node in nodes}
    size_of: dict[str, tuple[int, int]] = {IMAGE: image}
    pads_of: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
    for node in nodes:
        source = node["inputs"][0]
        if node["type"] in ("conv", "maxpool", "avgpool"):
            k, d = pair(node.get("kernel_size", 1)), pair(node.get("dilation", 1))
            s = pair(node.get("stride") or (node.get("kernel_size", 1) if node["type"] != "conv" else 1))
            spans = tuple(d[a] * (k[a] - 1) + 1 for a in (0, 1))
            pads = tuple(sides(node.get("padding", 0), a, spans[a], size_of[source][a], s[a]) for a in (0, 1))
            pads_of[node["name"]] = pads  # type: ignore[assignment]
            size_of[node["name"]] = tuple(  # type: ignore[assignment]
                out_size(size_of[source][a], spans[a], s[a], *pads[a], node.get("ceil_mode", False)) for a in (0, 1)
            )
        elif node["type"] in ("global_maxpool", "global_avgpool", "linear"):
            size_of[node["name"]] = (1, 1)
        else:
            size_of[node["name"]] = size_of[source]

    def pixels(axis: int):
        @cache
        def of(name: str, position: int) -> frozenset[int]:
            if name == IMAGE:
                return frozenset({position})
            node = by_name[name]
            if node["type"] in ("add", "concat"):
                return frozenset().union(*(of(source, position) for source in node["inputs"]))
            (source,) = node["inputs"]
            if node["type"] in ("conv", "maxpool", "avgpool"):
                k, d = pair(node.get("kernel_size", 1))[axis], pair(node.get("dilation", 1))[axis]
                s = pair(node.get("stride") or (node.get("kernel_size", 1) if node["type"] != "conv" else 1))[axis]
                start = position * s - pads_of[name][axis][0]
                return frozenset().union(*(of(source, start + tap * d) for tap in range(k)))
            if node["type"] in ("global_maxpool", "global_avgpool", "linear"):
                return frozenset().union(*(of(source, p) for p in range(size_of[source][axis])))
            return of(source, position)

        return of

    result = {}
    spans = [pixels(0), pixels(1)]
    for node in nodes:
        name = node["name"]
        entry: dict = {"output_size": size_of[name]}
        rf, jump, padding = [], [], []
        for axis in (0, 1):
            unit0 = spans[axis](name, 0)
            rf.append(max(unit0) - min(unit0) + 1)
            padding.append(-min(unit0))
            if node["type"] in ("global_maxpool", "global_avgpool", "linear") or any(
                by_name[n]["type"] in ("global_maxpool", "global_avgpool", "linear") for n in _ancestors(by_name, name)
            ):
                jump.append(None)
            else:
                jump.append(min(spans[axis](name, 1)) - min(unit0))
        entry.update(receptive_field=tuple(rf), jump=tuple(jump), effective_padding=tuple(padding))
        result[name] = entry
    return result


def _ancestors(by_name: dict, name: str) -> set[str]:
    seen: set[str] = set()
    stack = [name]
    while stack:
        for source in by_name[stack.pop()]["inputs"]:
            if source != IMAGE and source not in seen:
                seen.add(source)
                stack.append(source)
    return seen
