"""The two constraints of docs/theory.md#constraints, checked exactly, with diagnostics and depth headroom."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from . import arithmetic as ar
from .analysis import Analysis, ImageSize, LayerStats, analyse, is_feature_conv
from .errors import SolverError
from .layers import Layer
from .rational import format_fraction, parse_min_c_value

C_VALUE = "c_value"
RECEPTIVE_FIELD = "receptive_field"
RfSide = Literal["min", "max"]


@dataclass(frozen=True)
class Violation:
    """One broken constraint: which layer, the value found, the limit, and a fix in words."""

    constraint: str
    layer: str
    value: Fraction | int
    limit: Fraction | int
    message: str


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on an architecture; ``depth_headroom`` counts layers the last stage could still take."""

    analysis: Analysis
    min_c_value: Fraction
    receptive_field_limit: int
    include_pointwise: bool
    violations: tuple[Violation, ...]
    top_layer: str | None
    top_receptive_field: int | None
    depth: int
    depth_headroom: int

    @property
    def valid(self) -> bool:
        """True when no constraint is violated."""
        return not self.violations

    def is_constrained(self, layer: LayerStats) -> bool:
        """Whether constraint 1 applies to `layer` (feature-level conv, 1x1 only if opted in)."""
        return is_constrained(layer, self.include_pointwise)


def is_constrained(layer: LayerStats, include_pointwise: bool = False) -> bool:
    """Feature-level convolutions, except 1x1 ones unless `include_pointwise`."""
    return is_feature_conv(layer) and (include_pointwise or layer.kernel_size > 1)


def receptive_field_limit(image_size: tuple[int, int], rf_side: RfSide = "min") -> int:
    """The image side the topmost receptive field is compared with: the smaller side by default."""
    if rf_side not in ("min", "max"):
        raise SolverError("rf_side", f"must be 'min' or 'max', got {rf_side!r}")
    return min(image_size) if rf_side == "min" else max(image_size)


def validate(
    architecture: Iterable[Layer | Mapping[str, object]],
    image_size: ImageSize,
    min_c_value: object = None,
    in_channels: int = 3,
    include_pointwise: bool = False,
    rf_side: RfSide = "min",
    field: str = "layers",
) -> ValidationReport:
    """Analyse `architecture` and check both constraints with t = `min_c_value` (default exactly 1/6)."""
    t = parse_min_c_value(min_c_value)
    analysis = analyse(architecture, image_size, in_channels, field)
    return check_constraints(analysis, t, include_pointwise, rf_side)


def check_constraints(
    analysis: Analysis, t: Fraction, include_pointwise: bool = False, rf_side: RfSide = "min"
) -> ValidationReport:
    """Constraint 1: c >= t for every constrained conv; constraint 2: r(topmost feature conv) <= image side."""
    if not isinstance(t, Fraction):  # a number or "p/q" given directly: read it exactly, as validate does
        t = parse_min_c_value(t)
    limit = receptive_field_limit(analysis.image_size, rf_side)
    feature_convs = [layer for layer in analysis.layers if is_feature_conv(layer)]
    constrained = [layer for layer in feature_convs if is_constrained(layer, include_pointwise)]
    stage_of = _stage_numbers(constrained)
    stage_sizes = Counter(layer.jump_in for layer in constrained)
    violations: list[Violation] = []
    p, q = t.numerator, t.denominator
    for layer in constrained:
        c = layer.c_value
        if c is not None and c.numerator * q < p * c.denominator:  # c < t, exactly, without Fraction overhead
            violations.append(_c_value_violation(layer, t, stage_of, stage_sizes))
    top = _topmost(feature_convs)
    if top is not None and top.receptive_field > limit:
        violations.append(_receptive_field_violation(top, limit))
    headroom = 0 if violations or top is None else depth_headroom(top, t, limit)
    return ValidationReport(
        analysis=analysis,
        min_c_value=t,
        receptive_field_limit=limit,
        include_pointwise=include_pointwise,
        violations=tuple(violations),
        top_layer=None if top is None else top.name,
        top_receptive_field=None if top is None else top.receptive_field,
        depth=len(feature_convs),
        depth_headroom=headroom,
    )


def _topmost(feature_convs: list[LayerStats]) -> LayerStats | None:
    """The feature-level conv with the largest receptive field (the last one given, on ties)."""
    top = None
    for layer in feature_convs:
        if top is None or layer.receptive_field >= top.receptive_field:
            top = layer
    return top


def depth_headroom(top: LayerStats, t: Fraction, limit: int) -> int:
    """How many stride-1 copies of the topmost conv fit after it: max m with
    ke*j / (r + m (ke-1) j) >= t and r + m (ke-1) j <= limit."""
    kernel_effective = ar.effective_kernel(top.kernel_size, top.dilation)
    if kernel_effective == 1:
        return 0
    growth = (kernel_effective - 1) * top.jump
    by_capacity = (Fraction(ar.real_filter_size(kernel_effective, top.jump)) / t - top.receptive_field) // growth
    by_necessity = (limit - top.receptive_field) // growth
    return max(0, int(min(by_capacity, by_necessity)))


def _stage_numbers(constrained: list[LayerStats]) -> dict[int, int]:
    """Stage of each constrained conv: the rank of its input jump among all input jumps (1-based)."""
    jumps = sorted({layer.jump_in for layer in constrained})
    rank = {jump: position + 1 for position, jump in enumerate(jumps)}
    return {layer.jump_in: rank[layer.jump_in] for layer in constrained}


def _c_value_violation(
    layer: LayerStats, t: Fraction, stage_of: dict[int, int], stage_sizes: Counter[int]
) -> Violation:
    """Diagnose c = ke j / r < t: the stage must lose ceil((r - ke j / t) / ((ke - 1) j)) layers, or a 2x2
    stride-2 downsampling before the layer would give it c = 2 ke j / (r - (ke - 1) j + j + 2 (ke - 1) j)."""
    kernel_effective = ar.effective_kernel(layer.kernel_size, layer.dilation)
    jump = layer.jump_in
    real = layer.real_filter_size or 0
    p, q = t.numerator, t.denominator
    r = layer.receptive_field
    r_limit = Fraction(real * q, p)
    growth = (kernel_effective - 1) * jump
    if growth:
        remove = -(-(r * p - real * q) // (p * growth))  # ceil((r - real / t) / growth), exact
        shorten = f"remove at least {remove} of its layers up to this one"
    else:  # a 1x1 conv (constrained on request) adds nothing: the stage before it is what is too long
        shorten = f"shorten it until the receptive field entering {layer.name!r} is at most {format_fraction(r_limit)}"
    r_after_pool = r - growth + jump + 2 * growth
    c_after_pool = Fraction(2 * real, r_after_pool)
    still_below = c_after_pool.numerator * q < p * c_after_pool.denominator
    assert layer.c_value is not None
    message = (
        f"c-value of {layer.name!r} is {format_fraction(layer.c_value)} < t = {format_fraction(t)}: its receptive "
        f"field {r} exceeds real filter size {real} / t = {format_fraction(r_limit)}. "
        f"Stage {stage_of[jump]} ({stage_sizes[jump]} constrained convolutions at jump {jump}) is too long: "
        f"{shorten}, or insert a 2x2 stride-2 downsampling before "
        f"{layer.name!r} (its c-value would become {format_fraction(c_after_pool)}"
        f"{', still below t' if still_below else ''})."
    )
    return Violation(C_VALUE, layer.name, layer.c_value, t, message)


def _receptive_field_violation(top: LayerStats, limit: int) -> Violation:
    kernel_effective = ar.effective_kernel(top.kernel_size, top.dilation)
    growth = max(1, (kernel_effective - 1) * top.jump_in)
    remove = ar.layers_to_remove(top.receptive_field, limit, growth)
    message = (
        f"the topmost feature convolution {top.name!r} has receptive field {top.receptive_field} > image side "
        f"{limit}: layers past the point where the receptive field covers the image learn no new patterns. "
        f"Remove at least {remove} layers from the last stage (jump {top.jump_in}), or analyse a larger image."
    )
    return Violation(RECEPTIVE_FIELD, top.name, top.receptive_field, limit, message)
