"""Receptive-field arithmetic of docs/theory.md#layer-arithmetic: one small pure function per quantity.

All quantities are per spatial axis and exact integers (c-values are Fractions). A layer whose
kernel, stride, dilation or padding differs between height and width is walked once per axis
(`axis_pair`, `axis_paddings`); docs/geometry.md states the rules.
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


def axis_pair(value: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) of a per-axis quantity given as an int (both axes) or a pair [h, w]."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def tf_same_padding(size: int, kernel_effective: int, stride: int, upper: bool = True) -> tuple[int, int]:
    """TensorFlow's SAME (ONNX SAME_UPPER; SAME_LOWER with `upper` False): output ceil(size / stride), total
    padding max((ceil(size / stride) - 1) * stride + ke - size, 0), the smaller half first (last for LOWER).
    It depends on the input size: a stride-2 layer on an even map pads (ke - 2) // 2 first, not (ke - 1) // 2."""
    total = max((-(-size // stride) - 1) * stride + kernel_effective - size, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def axis_paddings(
    padding: object,
    kernel_effective: tuple[int, int],
    size: tuple[int, int] = (0, 0),
    stride: tuple[int, int] = (1, 1),
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) from any padding spelling: an int (every side), 'same', 'valid',
    'same_upper' / 'same_lower' (`tf_same_padding` of the input `size` and `stride`), [h, w] (symmetric
    per axis) or [[top, bottom], [left, right]]; 'same' splits each axis by `same_padding`."""
    if padding in ("same_upper", "same_lower"):
        upper = padding == "same_upper"
        return (
            tf_same_padding(size[0], kernel_effective[0], stride[0], upper),
            tf_same_padding(size[1], kernel_effective[1], stride[1], upper),
        )
    if isinstance(padding, (int, str)):
        return padding_pair(padding, kernel_effective[0]), padding_pair(padding, kernel_effective[1])
    assert isinstance(padding, (tuple, list)), padding
    height, width = padding
    return _side_pair(height), _side_pair(width)


def _side_pair(value: object) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])  # type: ignore[index]


def pooled_output_size(
    size: int, kernel_effective: int, stride: int, left_padding: int, right_padding: int, ceil_mode: bool
) -> int:
    """`output_size`, or with ceil_mode PyTorch's rule: ceil((s + p_l + p_r - ke) / stride) + 1, less one
    when the last window would start past the input and its left padding ((out - 1) * stride >= s + p_l)."""
    if not ceil_mode:
        return output_size(size, kernel_effective, stride, left_padding, right_padding)
    span = size + left_padding + right_padding - kernel_effective
    out = -(-span // stride) + 1
    if out > 1 and (out - 1) * stride >= size + left_padding:
        out -= 1
    return out


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
