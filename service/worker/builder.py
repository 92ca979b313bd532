"""Build a `torch.nn.Module` from any layer graph the solver accepts (THEORY.md sections 6 and 7).

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
    """Constant padding of (left, right) on both spatial axes (asymmetric for even kernels)."""

    def __init__(self, left: int, right: int, value: float = 0.0) -> None:
        super().__init__()
        self.pads = (left, right, left, right)
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads, value=self.value)


class DilatedAvgPool(nn.Module):
    """Average of the k x k taps spaced `dilation` apart (nn.AvgPool2d has no dilation)."""

    def __init__(self, kernel_size: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, d = self.kernel_size, self.stride, self.dilation
        span = d * (k - 1) + 1
        out_h = (x.shape[-2] - span) // s + 1
        out_w = (x.shape[-1] - span) // s + 1
        total = None
        for i in range(k):
            for j in range(k):
                tap = x[..., i * d : i * d + s * (out_h - 1) + 1 : s, j * d : j * d + s * (out_w - 1) + 1 : s]
                total = tap if total is None else total + tap
        return total / (k * k)


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


def _padded(padding: tuple[int, int], module: nn.Module, value: float = 0.0) -> nn.Module:
    left, right = padding
    if left == 0 and right == 0:
        return module
    return nn.Sequential(Pad(left, right, value), module)


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
    if kind == "maxpool":
        pool = nn.MaxPool2d(stats.kernel_size, stats.stride, dilation=stats.dilation)
        return _padded(stats.padding, pool, float("-inf"))
    if kind == "avgpool":
        pool = (
            nn.AvgPool2d(stats.kernel_size, stats.stride)
            if stats.dilation == 1
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
