"""Build a `torch.nn.Module` from any layer graph the solver accepts (docs/theory.md#classifier-level and #widths).

Every module is sized from the solver's own `Analysis`, so the parameter count equals
`Analysis.params` and `torch.utils.flop_counter` FLOPs equal `Analysis.flops`. Tensors stay
``[batch, channels, height, width]`` throughout (global pools and linear layers give 1x1 maps);
the network output is flattened to ``[batch, features]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnplan.solver.analysis import Analysis, ImageSize, LayerStats, analyse
from cnnplan.solver.layers import INPUT, Layer, as_graph, topological_order


class Pad(nn.Module):
    """Constant padding ((top, bottom), (left, right)) of the spatial axes (asymmetric for even kernels and
    TensorFlow's SAME)."""

    def __init__(self, padding: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0) -> None:
        super().__init__()
        (top, bottom), (left, right) = padding
        self.pads = (left, right, top, bottom)
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads, value=self.value)


class DilatedAvgPool(nn.Module):
    """Average of the kh x kw taps spaced `dilation` apart per axis (nn.AvgPool2d has no dilation)."""

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        out_h = (x.shape[-2] - (dh * (kh - 1) + 1)) // sh + 1
        out_w = (x.shape[-1] - (dw * (kw - 1) + 1)) // sw + 1
        total: torch.Tensor | None = None
        for i in range(kh):
            for j in range(kw):
                tap = x[..., i * dh : i * dh + sh * (out_h - 1) + 1 : sh, j * dw : j * dw + sw * (out_w - 1) + 1 : sw]
                total = tap if total is None else total + tap
        assert total is not None  # kh, kw >= 1 taps
        return total / (kh * kw)


class Linear4d(nn.Module):
    """Flatten ``[B, C, H, W]`` to ``[B, C*H*W]``, apply a linear layer, return ``[B, out, 1, 1]``."""

    def __init__(self, in_features: int, out_features: int, bias: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.flatten(x, 1))[:, :, None, None]


class SelectChannels(nn.Module):
    """A ``select`` node: the first `channels` channels (which ones does not matter to the arithmetic)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, : self.channels]


def _padded(padding: tuple[tuple[int, int], tuple[int, int]], module: nn.Module, value: float = 0.0) -> nn.Module:
    if padding == ((0, 0), (0, 0)):
        return module
    return nn.Sequential(Pad(padding, value), module)


def _native_pool_padding(stats: LayerStats) -> tuple[int, int] | None:
    """(h, w) padding PyTorch's pools take natively (symmetric per axis, at most half the kernel), else None.
    ceil_mode needs it: PyTorch's rule counts only the left padding, which an outer pad would not be."""
    (top, bottom), (left, right) = stats.padding
    kh, kw = stats.kernel_size
    if top == bottom and left == right and 2 * top <= kh and 2 * left <= kw and stats.dilation == (1, 1):
        return top, left
    return None


def layer_module(stats: LayerStats, node: Layer) -> nn.Module | None:
    """The module of one non-merge node, sized from its statistics (None for merges)."""
    kind = stats.kind
    if kind == "conv":
        conv = nn.Conv2d(
            stats.in_channels,
            stats.out_channels,
            stats.kernel_size,
            stride=stats.stride,
            dilation=stats.dilation,
            groups=stats.groups,
            bias=node.bias,
        )
        return _padded(stats.padding, conv)
    native = _native_pool_padding(stats)
    if kind == "maxpool":
        if native is not None:
            return nn.MaxPool2d(stats.kernel_size, stats.stride, padding=native, ceil_mode=stats.ceil_mode)
        pool: nn.Module = nn.MaxPool2d(
            stats.kernel_size, stats.stride, dilation=stats.dilation, ceil_mode=stats.ceil_mode
        )
        return _padded(stats.padding, pool, float("-inf"))
    if kind == "avgpool":
        if native is not None:
            return nn.AvgPool2d(stats.kernel_size, stats.stride, padding=native, ceil_mode=stats.ceil_mode)
        pool = (
            nn.AvgPool2d(stats.kernel_size, stats.stride, ceil_mode=stats.ceil_mode)
            if stats.dilation == (1, 1)
            else DilatedAvgPool(stats.kernel_size, stats.stride, stats.dilation)
        )
        return _padded(stats.padding, pool)
    if kind == "global_maxpool":
        return nn.AdaptiveMaxPool2d(1)
    if kind == "global_avgpool":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "linear":
        height, width = stats.input_size
        return Linear4d(stats.in_channels * height * width, stats.out_channels, node.bias)
    if kind == "relu":
        return nn.ReLU()
    if kind == "bn":
        return nn.BatchNorm2d(stats.out_channels)
    if kind == "dropout":
        return nn.Dropout(node.rate or 0.0)
    if kind == "select":
        return SelectChannels(stats.out_channels)
    return None  # add / concat


class GraphNet(nn.Module):
    """A layer graph as a module: nodes run in topological order; tensors are freed after last use."""

    def __init__(self, nodes: Sequence[Layer], analysis: Analysis) -> None:
        super().__init__()
        index_of = {node.name: i for i, node in enumerate(nodes)}
        self.order = topological_order(nodes)
        self.kinds = [node.kind for node in nodes]
        self.sources = [[-1 if name == INPUT else index_of[name] for name in node.inputs or ()] for node in nodes]
        self.nodes = nn.ModuleList(
            [layer_module(stats, node) or nn.Identity() for stats, node in zip(analysis.layers, nodes)]
        )
        consumed = {source for sources in self.sources for source in sources}
        sinks = [i for i in range(len(nodes)) if i not in consumed]
        self.output = sinks[-1]
        position = {node: step for step, node in enumerate(self.order)}
        self.last_use: dict[int, int] = {}
        for i in self.order:
            for source in self.sources[i]:
                self.last_use[source] = max(self.last_use.get(source, -1), position[i])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[int, torch.Tensor] = {-1: x}
        for step, i in enumerate(self.order):
            inputs = [values[source] for source in self.sources[i]]
            kind = self.kinds[i]
            if kind == "add":
                value = inputs[0]
                for other in inputs[1:]:
                    value = value + other
            elif kind == "concat":
                value = torch.cat(inputs, dim=1)
            else:
                value = self.nodes[i](inputs[0])
            for source in self.sources[i]:
                if self.last_use[source] == step and source != self.output:
                    values.pop(source, None)
            values[i] = value
        return torch.flatten(values[self.output], 1)


def analyse_architecture(
    architecture: Iterable[Layer | Mapping[str, object]], image_size: ImageSize, in_channels: int = 3
) -> tuple[tuple[Layer, ...], Analysis]:
    """The checked graph nodes and their analysis (no torch allocation: size things before building)."""
    nodes = as_graph(architecture)
    return nodes, analyse(nodes, image_size, in_channels)


def build_model(
    architecture: Iterable[Layer | Mapping[str, object]], image_size: ImageSize, in_channels: int = 3
) -> tuple[GraphNet, Analysis]:
    """The module for `architecture` on `image_size` images, and the solver's analysis it matches."""
    nodes, analysis = analyse_architecture(architecture, image_size, in_channels)
    return GraphNet(nodes, analysis), analysis


__all__ = ["GraphNet", "analyse_architecture", "build_model", "layer_module"]
