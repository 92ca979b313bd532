"""The two constraints of docs/theory.md#constraints, checked exactly and per axis, with diagnostics and headroom.

Per axis (docs/theory.md#real-networks, docs/geometry.md): constraint 1 holds on every axis of a constrained
convolution whose effective kernel is larger than 1 (every axis when 1x1 convolutions are opted in);
constraint 2 compares each axis's topmost receptive field with that axis's limit (`receptive_field_limits`).
The machine-readable fixes are attached by `cnnplan.solver.repair.attach_fixes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from . import arithmetic as ar
from .analysis import Analysis, ImageSize, LayerStats, Pair, analyse, is_feature_conv
from .errors import SolverError
from .layers import Layer
from .rational import format_fraction, parse_min_c_value

C_VALUE = "c_value"
RECEPTIVE_FIELD = "receptive_field"
RfSide = Literal["axis", "min", "max"]
AXIS_NAMES = ("height", "width")
"""Names of the two spatial axes, in the order of every (h, w) pair."""


@dataclass(frozen=True)
class Violation:
    """One broken constraint: which layer, on which axis, the value found, the limit, a fix in words and,
    once `attach_fixes` ran, the same fix as an edit (``fix``, None when no safe edit exists) and other
    edits that also remove it (``alternatives``)."""

    constraint: str
    layer: str
    value: Fraction | int
    limit: Fraction | int
    message: str
    axis: str = "height"
    fix: dict[str, Any] | None = None
    alternatives: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on an architecture; ``depth_headroom`` counts layers the last stage could still take.

    ``receptive_field_limit`` and ``top_receptive_field`` are (h, w) pairs; ``top_axis`` is the axis
    whose receptive field is closest to (or furthest past) its limit, the one that binds constraint 2.
    """

    analysis: Analysis
    min_c_value: Fraction
    receptive_field_limit: Pair
    include_pointwise: bool
    violations: tuple[Violation, ...]
    top_layer: str | None
    top_receptive_field: Pair | None
    depth: int
    depth_headroom: int
    rf_side: str = "axis"
    top_axis: str | None = None

    @property
    def valid(self) -> bool:
        """True when no constraint is violated."""
        return not self.violations

    def is_constrained(self, layer: LayerStats) -> bool:
        """Whether constraint 1 applies to `layer` (feature-level conv, 1x1 only if opted in)."""
        return is_constrained(layer, self.include_pointwise)


def constrained_axes(layer: LayerStats, include_pointwise: bool = False) -> tuple[int, ...]:
    """Axes on which constraint 1 applies to `layer`: a feature-level conv's axes with effective kernel > 1
    (all axes when `include_pointwise`); none for any other layer."""
    if not is_feature_conv(layer):
        return ()
    if include_pointwise:
        return (0, 1)
    ke = layer.kernel_effective
    return tuple(axis for axis in (0, 1) if ke[axis] > 1)


def is_constrained(layer: LayerStats, include_pointwise: bool = False) -> bool:
    """Feature-level convolutions with a kernel larger than 1 on some axis (1x1 ones only if opted in)."""
    return bool(constrained_axes(layer, include_pointwise))


def binding_axis(layer: LayerStats, include_pointwise: bool = False) -> int | None:
    """The constrained axis with the smallest c-value (height on ties), the one constraint 1 compares."""
    axes = constrained_axes(layer, include_pointwise)
    if not axes or layer.c_value is None:
        return None
    c = layer.c_value
    return min(axes, key=lambda axis: c[axis])


def receptive_field_limits(image_size: Pair, rf_side: RfSide = "axis") -> Pair:
    """The (h, w) limits of constraint 2: each axis's own side ('axis', the default), or the smaller
    ('min') or larger ('max') side on both axes. For square kernels 'axis' gives the 'min' verdict."""
    if rf_side == "axis":
        return image_size[0], image_size[1]
    side = receptive_field_limit(image_size, rf_side)
    return side, side


def receptive_field_limit(image_size: Pair, rf_side: RfSide = "min") -> int:
    """One image side for a square family (the planner): the smaller side ('min', 'axis') or the larger."""
    if rf_side not in ("axis", "min", "max"):
        raise SolverError("rf_side", f"must be 'axis', 'min' or 'max', got {rf_side!r}")
    return max(image_size) if rf_side == "max" else min(image_size)


def validate(
    architecture: Iterable[Layer | Mapping[str, object]],
    image_size: ImageSize,
    min_c_value: object = None,
    in_channels: int = 3,
    include_pointwise: bool = False,
    rf_side: RfSide = "axis",
    field: str = "layers",
) -> ValidationReport:
    """Analyse `architecture`, check both constraints with t = `min_c_value` (default exactly 1/6) and
    attach a machine-readable fix to every violation."""
    from .repair import attach_fixes  # repair re-validates edited architectures with this module

    t = parse_min_c_value(min_c_value)
    analysis = analyse(architecture, image_size, in_channels, field)
    return attach_fixes(check_constraints(analysis, t, include_pointwise, rf_side))


def check_constraints(
    analysis: Analysis, t: Fraction, include_pointwise: bool = False, rf_side: RfSide = "axis"
) -> ValidationReport:
    """Constraint 1: c >= t on every constrained axis of every constrained conv; constraint 2: on each axis,
    the largest receptive field of a feature conv <= that axis's limit."""
    if not isinstance(t, Fraction):  # a number or "p/q" given directly: read it exactly, as validate does
        t = parse_min_c_value(t)
    limits = receptive_field_limits(analysis.image_size, rf_side)
    feature_convs = [layer for layer in analysis.layers if is_feature_conv(layer)]
    violations: list[Violation] = []
    p, q = t.numerator, t.denominator
    for layer in feature_convs:
        axis = binding_axis(layer, include_pointwise)
        if axis is None:
            continue
        c = layer.c_value[axis]  # type: ignore[index]
        if c.numerator * q < p * c.denominator:  # c < t, exactly, without Fraction overhead
            violations.append(_c_value_violation(layer, axis, t))
    top, top_rf, top_axis = _topmost(feature_convs, limits)
    if top is not None and top_rf is not None and top_axis is not None and top_rf[top_axis] > limits[top_axis]:
        violations.append(_receptive_field_violation(top, top_axis, top_rf, limits))
    headroom = 0 if violations or top is None else depth_headroom(top, t, limits, top_rf, include_pointwise)
    return ValidationReport(
        analysis=analysis,
        min_c_value=t,
        receptive_field_limit=limits,
        include_pointwise=include_pointwise,
        violations=tuple(violations),
        top_layer=None if top is None else top.name,
        top_receptive_field=top_rf,
        depth=len(feature_convs),
        depth_headroom=headroom,
        rf_side=rf_side,
        top_axis=None if top_axis is None else AXIS_NAMES[top_axis],
    )


def _topmost(feature_convs: list[LayerStats], limits: Pair) -> tuple[LayerStats | None, Pair | None, int | None]:
    """(top layer, (max r_h, max r_w) over the feature convs, binding axis): the binding axis has the largest
    r / limit (height on ties); the top layer is the last one given with the largest r on that axis."""
    if not feature_convs:
        return None, None, None
    top_rf = (
        max(layer.receptive_field[0] for layer in feature_convs),
        max(layer.receptive_field[1] for layer in feature_convs),
    )
    axis = 0 if top_rf[0] * limits[1] >= top_rf[1] * limits[0] else 1
    top = None
    for layer in feature_convs:
        if layer.receptive_field[axis] == top_rf[axis]:
            top = layer
    return top, top_rf, axis


def depth_headroom(
    top: LayerStats, t: Fraction, limits: Pair, top_rf: Pair | None = None, include_pointwise: bool = False
) -> int:
    """How many stride-1 copies of the topmost conv fit after it: the largest m with, on every axis a whose
    effective kernel is > 1, ke_a j_a / (r_a + m (ke_a - 1) j_a) >= t, and r_a + m (ke_a - 1) j_a <= limit_a."""
    ke = top.kernel_effective
    rf = top.receptive_field if top_rf is None else top_rf
    bounds = []
    for axis in (0, 1):
        growth = (ke[axis] - 1) * top.jump[axis]
        if growth == 0:
            continue
        if ke[axis] > 1 or include_pointwise:
            real = ar.real_filter_size(ke[axis], top.jump[axis])
            bounds.append((Fraction(real) / t - top.receptive_field[axis]) // growth)
        bounds.append((limits[axis] - rf[axis]) // growth)
    if not bounds:
        return 0
    return max(0, int(min(bounds)))


def _c_value_violation(layer: LayerStats, axis: int, t: Fraction) -> Violation:
    """Diagnose c = ke j / r < t on `axis`: the receptive field exceeds real filter size / t."""
    c_values, real_sizes = layer.c_value, layer.real_filter_size
    assert c_values is not None and real_sizes is not None, "a c-value violation is on a windowed layer"
    c, real = c_values[axis], real_sizes[axis]
    r = layer.receptive_field[axis]
    name = AXIS_NAMES[axis]
    shown = format_fraction(c) if c_values[0] == c_values[1] else _both(c_values)
    message = (
        f"c-value of {layer.name!r} is {shown} < t = {format_fraction(t)} (binding axis: {name}): its receptive "
        f"field {r} exceeds real filter size {real} / t = {format_fraction(Fraction(real) / t)}; the stage "
        f"at jump {layer.jump_in[axis]} is too long for it."
    )
    return Violation(C_VALUE, layer.name, c, t, message, name)


def _both(values: tuple[Fraction, Fraction]) -> str:
    return f"[{format_fraction(values[0])}, {format_fraction(values[1])}] (height, width)"


def _receptive_field_violation(top: LayerStats, axis: int, top_rf: Pair, limits: Pair) -> Violation:
    name = AXIS_NAMES[axis]
    message = (
        f"the topmost feature convolution {top.name!r} has receptive field {top_rf[axis]} > {name} limit "
        f"{limits[axis]}: layers past the point where the receptive field covers the image learn no new patterns."
    )
    return Violation(RECEPTIVE_FIELD, top.name, top_rf[axis], limits[axis], message, name)
