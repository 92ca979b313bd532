"""Compute budgets (max_flops, max_params): the widest width rule of a family whose network fits, and a
counter of FLOPs and parameters fast enough to size many candidate networks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import arithmetic as ar
from .errors import InfeasiblePlanError
from .layers import AxisValue, Layer, Padding
from .network import WidthRule

Counts = Callable[[WidthRule], tuple[int, int]]
"""(FLOPs, parameters) of the network built with a width rule."""


@dataclass(frozen=True)
class BudgetChoice:
    """The widest width rule whose network fits the budgets, and the next wider one (None when the
    chosen rule is the requested one) with its counts, which break a budget."""

    widths: WidthRule
    next_wider: WidthRule | None
    next_wider_flops: int | None
    next_wider_params: int | None


def network_counts(layers: tuple[Layer, ...], size: tuple[int, int], in_channels: int) -> tuple[int, int]:
    """(FLOPs, parameters) of generated, valid, named, square layers in topological order, by the analysis'
    formulas (conv: k^2 (c_in / groups) c_out weights + bias, 2 FLOPs per weight per output pixel;
    BN: 2 c; linear: c h w c_out + bias, 2 FLOPs per weight) without the receptive-field bookkeeping.
    Equal to `analyse(...).flops, .params` (tested)."""
    shapes: dict[str, tuple[int, int, int]] = {"input": (in_channels, *size)}
    previous = "input"
    flops = params = 0
    for layer in layers:
        channels, height, width = shapes[layer.inputs[0] if layer.inputs else previous]
        kind = layer.kind
        if kind in ("conv", "maxpool", "avgpool"):
            side = _square(layer.kernel_size)
            kernel = ar.effective_kernel(side, _square(layer.dilation))
            left, right = ar.padding_pair(_square_padding(layer.padding), kernel)
            stride = _square(layer.effective_stride)
            height = ar.output_size(height, kernel, stride, left, right)
            width = ar.output_size(width, kernel, stride, left, right)
            if kind == "conv":
                out = channels if layer.out_channels is None else layer.out_channels
                weights = side**2 * (channels // layer.groups) * out
                params += weights + (out if layer.bias else 0)
                flops += 2 * weights * height * width
                channels = out
        elif kind == "linear":
            out = channels if layer.out_channels is None else layer.out_channels
            weights = channels * height * width * out
            params += weights + (out if layer.bias else 0)
            flops += 2 * weights
            channels, height, width = out, 1, 1
        elif kind in ("global_maxpool", "global_avgpool"):
            height = width = 1
        elif kind == "bn":
            params += 2 * channels
        name = layer.name
        assert name is not None
        shapes[name] = (channels, height, width)
        previous = name
    return flops, params


def _square(value: AxisValue) -> int:
    """The side of a square kernel, stride or dilation: an int, or a pair [h, h]. The planner's layers are
    square; raises ValueError on a pair whose sides differ."""
    if isinstance(value, int):
        return value
    if value[0] != value[1]:
        raise ValueError(f"network_counts takes square layers, got {list(value)}")
    return value[0]


def _square_padding(padding: Padding) -> int | str:
    """The padding of a square layer: an int or a word ('same', 'valid'), or a symmetric pair [p, p];
    raises ValueError on padding that differs between axes or sides."""
    if isinstance(padding, (int, str)):
        return padding
    height, width = padding
    if isinstance(height, int) and height == width:
        return height
    raise ValueError(f"network_counts takes square, symmetric padding, got {padding!r}")


def _over_budget(budgets: Mapping[str, int | None], flops: int, params: int) -> list[tuple[str, int]]:
    """The budgets (field, count needed) that these counts break."""
    needed = {"max_flops": flops, "max_params": params}
    return [(name, needed[name]) for name, limit in budgets.items() if limit is not None and needed[name] > limit]


def choose_widths(widths: WidthRule, budgets: Mapping[str, int | None], counts: Counts) -> BudgetChoice:
    """The widest rule `widths.scaled(b)`, b = 1..widths.base, whose counts fit every budget
    (``{"max_flops": ..., "max_params": ...}``, None for no budget).

    Every stage width is non-decreasing in b (`WidthRule.scaled`) and the counts are non-decreasing in
    every width, so the fitting b form a prefix of 1..base: binary search finds its end.
    Raises InfeasiblePlanError naming the budget field and the smallest budget that would fit (the
    counts of the b = 1 network) when even b = 1 breaks it."""
    over = _over_budget(budgets, *counts(widths.scaled(1)))
    if over:
        reason = "; ".join(
            f"{name} = {budgets[name]} is too small: the narrowest width rule (base 1) needs {value}, the "
            f"smallest {name} that fits"
            for name, value in over
        )
        raise InfeasiblePlanError(over[0][0], reason)
    low, high = 1, widths.base  # invariant: b = low fits, every b > high breaks a budget
    while low < high:
        middle = (low + high + 1) // 2
        if _over_budget(budgets, *counts(widths.scaled(middle))):
            high = middle - 1
        else:
            low = middle
    if low == widths.base:
        return BudgetChoice(widths, None, None, None)
    wider = widths.scaled(low + 1)
    wider_flops, wider_params = counts(wider)
    return BudgetChoice(widths.scaled(low), wider, wider_flops, wider_params)


__all__ = ["BudgetChoice", "choose_widths", "network_counts"]
