"""Receptive-field arithmetic of docs/theory.md#layer-arithmetic: one small pure function per quantity.

All quantities are per spatial axis and exact integers (c-values are Fractions).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def effective_kernel(kernel_size: int, dilation: int = 1) -> int:
    """ke = d * (k - 1) + 1."""
    return dilation * (kernel_size - 1) + 1


def same_padding(kernel_effective: int) -> tuple[int, int]:
    """'same' padding (left, right) = ((ke - 1) // 2, ke - 1 - left); with it, output = ceil(size / stride)."""
    left = (kernel_effective - 1) // 2
    return left, kernel_effective - 1 - left


def padding_pair(padding: int | str, kernel_effective: int) -> tuple[int, int]:
    """(left, right) padding for an int (both sides), 'valid' (0, 0) or 'same'."""
    if padding == "same":
        return same_padding(kernel_effective)
    if padding == "valid":
        return 0, 0
    return int(padding), int(padding)


def next_receptive_field(receptive_field: int, kernel_effective: int, jump: int) -> int:
    """r <- r + (ke - 1) * j."""
    return receptive_field + (kernel_effective - 1) * jump


def next_effective_padding(effective_padding: int, left_padding: int, jump: int) -> int:
    """P <- P + p_left * j."""
    return effective_padding + left_padding * jump


def next_jump(jump: int, stride: int) -> int:
    """j <- j * stride."""
    return jump * stride


def output_size(size: int, kernel_effective: int, stride: int, left_padding: int, right_padding: int) -> int:
    """s <- floor((s + p_left + p_right - ke) / stride) + 1 (may be < 1: the map vanishes)."""
    return (size + left_padding + right_padding - kernel_effective) // stride + 1


def real_filter_size(kernel_effective: int, jump_in: int) -> int:
    """Real filter size = ke * j_in: the effective kernel measured in input pixels."""
    return kernel_effective * jump_in


def c_value(kernel_effective: int, jump_in: int, receptive_field_out: int) -> Fraction:
    """c = ke * j_in / r_out, exact."""
    return Fraction(real_filter_size(kernel_effective, jump_in), receptive_field_out)


def merge_effective_padding(paddings: Sequence[int]) -> int:
    """P of a merge = max_i P_i."""
    return max(paddings)


def merge_receptive_field(receptive_fields: Sequence[int], paddings: Sequence[int]) -> int:
    """r of a merge = max_i (r_i - P_i) + max_i P_i (the union of the inputs' pixel ranges)."""
    return max(r - p for r, p in zip(receptive_fields, paddings)) + max(paddings)


def layers_to_remove(receptive_field: int, limit: Fraction | int, growth_per_layer: int) -> int:
    """Fewest layers of growth `growth_per_layer` whose removal brings `receptive_field` to <= limit."""
    excess = Fraction(receptive_field) - Fraction(limit)
    if excess <= 0:
        return 0
    return -(-excess.numerator // (excess.denominator * growth_per_layer))
