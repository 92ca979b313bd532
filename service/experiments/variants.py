"""The architectures an experiment trains: the plan, depth variants around it, constraint breakers,
a t-sweep and the user's own networks, each with its exact verdict (pure solver: no torch).

All planned-family variants are built by `cnnplan.solver.plan.network_for_stages` (the planner's own
layer generator: k x k 'same' convolutions + BN + ReLU, 2x2 max pools between stages, the fixed
classifier level), so they differ from the plan only in their stage lengths:

- ``planned``: the planner's stages for t.
- ``baseline``: one convolution per stage of the plan.
- ``scaled xS``: every stage ``max(1, round_half_up(a_i * S))``.
- ``too deep +m`` (constraint 2): m layers past the plan, each added to the last stage while its
  c-value stays >= t, else opening a new stage (so the variant breaks the receptive-field bound, and
  constraint 1 only where it must).
- ``too_long s`` (constraint 1): the plan's depth with s layers moved from the last stages into stage 1
  (a stage emptied is dropped: s >= the later stages' total gives the one-stage network); only the
  moves that break constraint 1 are kept.
- ``t=p/q``: the plan for each t of the sweep.

Identical layer lists are trained once: an architecture lists every group it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from cnnplan.solver import Layer, WidthRule, check_constraints, format_fraction, make_plan
from cnnplan.solver.analysis import LayerStats, analyse, analyse_chain
from cnnplan.solver.constraints import C_VALUE, RECEPTIVE_FIELD, ValidationReport, binding_axis
from cnnplan.solver.plan import PlanRequest, network_for_stages

PLANNED, BASELINE, SCALED, TOO_DEEP, TOO_LONG, T_SWEEP, USER = (
    "planned", "baseline", "scaled", "too_deep", "too_long", "t_sweep", "user",
)  # fmt: skip


@dataclass(frozen=True)
class VariantOptions:
    """Which variants to make around the plan (defaults: the issue's set)."""

    stage_scales: tuple[Fraction, ...] = (Fraction(1, 4), Fraction(1, 2), Fraction(3, 2), Fraction(2))
    too_deep: tuple[int, ...] = (1, 2, 4)
    too_long: tuple[int, ...] = (2, 3)
    baseline: bool = True
    t_sweep: tuple[Fraction, ...] = (Fraction(1, 4), Fraction(1, 5), Fraction(1, 6), Fraction(1, 7), Fraction(1, 8))


@dataclass
class Architecture:
    """One distinct network to train, its groups (``planned``, ``scaled x1/2``, ``t=1/5``...) and verdict."""

    name: str
    groups: list[str]
    layers: tuple[Layer, ...]
    stages: tuple[int, ...] | None
    report: ValidationReport
    t_values: list[Fraction] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts: depth, verdict, broken constraints, c-values of the feature convs, top r."""
        report = self.report
        broken = sorted({violation.constraint for violation in report.violations})
        c_values = [
            format_fraction(_binding_c_value(layer, report.include_pointwise))
            for layer in report.analysis.layers
            if report.is_constrained(layer)
        ]
        return {
            "name": self.name,
            "groups": list(self.groups),
            "stages": None if self.stages is None else list(self.stages),
            "depth": report.depth,
            "valid": report.valid,
            "breaks": broken,
            "breaks_capacity": C_VALUE in broken,
            "breaks_necessity": RECEPTIVE_FIELD in broken,
            "min_c_value": format_fraction(min(Fraction(c) for c in c_values)) if c_values else None,
            "c_values": c_values,
            "top_receptive_field": report.top_receptive_field,
            "receptive_field_limit": report.receptive_field_limit,
            "t_values": [format_fraction(t) for t in self.t_values],
            "params": report.analysis.params,
            "flops": report.analysis.flops,
        }


def round_half_up(value: Fraction) -> int:
    """floor(value + 1/2), exactly (Python's round() rounds halves to even)."""
    return int((value + Fraction(1, 2)) // 1)


def scaled_stages(stages: Sequence[int], scale: Fraction) -> tuple[int, ...]:
    """Each stage ``max(1, round_half_up(a_i * scale))``."""
    return tuple(max(1, round_half_up(count * scale)) for count in stages)


def _report(request: PlanRequest, stages: tuple[int, ...], t: Fraction) -> tuple[tuple[Layer, ...], ValidationReport]:
    layers = network_for_stages(request, stages)
    analysis = analyse_chain(layers, request.image_size, request.in_channels)
    return layers, check_constraints(analysis, t)


def _breaks(report: ValidationReport, constraint: str) -> bool:
    return any(violation.constraint == constraint for violation in report.violations)


def too_deep_stages(request: PlanRequest, stages: tuple[int, ...], extra: int, t: Fraction) -> tuple[int, ...]:
    """`extra` layers past `stages`: each on the last stage while constraint 1 holds, else a new stage."""
    current = list(stages)
    for _ in range(extra):
        longer = (*current[:-1], current[-1] + 1)
        if not _breaks(_report(request, longer, t)[1], C_VALUE):
            current = list(longer)
        else:
            current.append(1)
    return tuple(current)


def too_long_stages(stages: tuple[int, ...], moved: int) -> tuple[int, ...]:
    """The plan's depth with `moved` layers taken from the last stages (the last first; a stage emptied
    is dropped) and added to stage 1."""
    later = list(stages[1:])
    left = moved
    for position in range(len(later) - 1, -1, -1):
        taken = min(left, later[position])
        later[position] -= taken
        left -= taken
    return (stages[0] + moved - left, *(count for count in later if count > 0))


def _label(stages: tuple[int, ...]) -> str:
    return "(" + ",".join(str(count) for count in stages) + ")"


class _Collector:
    """Deduplicates architectures by their layer list, keeping every group each one belongs to."""

    def __init__(self) -> None:
        self.items: list[Architecture] = []
        self._index: dict[tuple[Layer, ...], Architecture] = {}

    def add(self, group: str, layers: tuple[Layer, ...], stages: tuple[int, ...] | None, report: ValidationReport,
            name: str, t: Fraction | None = None) -> None:  # fmt: skip
        existing = self._index.get(layers)
        if existing is None:
            existing = Architecture(name, [], layers, stages, report)
            self._index[layers] = existing
            self.items.append(existing)
        if group not in existing.groups:
            existing.groups.append(group)
        if t is not None and t not in existing.t_values:
            existing.t_values.append(t)


def _binding_c_value(layer: LayerStats, include_pointwise: bool) -> Fraction:
    """The c-value constraint 1 compares on a constrained layer: its binding axis' (`binding_axis`)."""
    axis = binding_axis(layer, include_pointwise)
    assert axis is not None and layer.c_value is not None
    return layer.c_value[axis]


def experiment_architectures(
    image_size: int,
    num_classes: int,
    in_channels: int,
    widths: WidthRule,
    t: Fraction,
    options: VariantOptions,
    user: Iterable[tuple[str, Sequence[Layer]]] = (),
) -> list[Architecture]:
    """The plan for (image_size, t), its variants (module docstring) and the user's `(name, layers)`,
    each judged against t; deduplicated, in that order. Raises the solver's errors on bad input."""
    request = PlanRequest(
        image_size=image_size, min_c_value=t, in_channels=in_channels, num_classes=num_classes, widths=widths
    )
    plan = make_plan(request)
    collect = _Collector()
    collect.add(PLANNED, plan.layers, plan.stages, plan.report, f"plan {_label(plan.stages)}", t)
    candidates: list[tuple[str, tuple[int, ...]]] = []
    if options.baseline:
        candidates.append((BASELINE, tuple(1 for _ in plan.stages)))
    candidates += [
        (f"{SCALED} x{format_fraction(scale)}", scaled_stages(plan.stages, scale)) for scale in options.stage_scales
    ]
    candidates += [
        (f"{TOO_DEEP} +{extra}", too_deep_stages(request, plan.stages, extra, t)) for extra in options.too_deep
    ]
    for group, stages in candidates:
        layers, report = _report(request, stages, t)
        collect.add(group, layers, stages, report, _label(stages))
    for moved in options.too_long:
        stages = too_long_stages(plan.stages, moved)
        layers, report = _report(request, stages, t)
        if _breaks(report, C_VALUE):
            collect.add(f"{TOO_LONG} {moved}", layers, stages, report, _label(stages))
    for sweep_t in options.t_sweep:
        swept = make_plan(PlanRequest(**{**request.__dict__, "min_c_value": sweep_t}))
        report = check_constraints(swept.report.analysis, t)
        collect.add(f"{T_SWEEP}", swept.layers, swept.stages, report, _label(swept.stages), sweep_t)
    for name, given in user:
        nodes = tuple(given)
        report = check_constraints(analyse(nodes, image_size, in_channels), t)
        collect.add(USER, nodes, None, report, name)
    return collect.items


__all__ = [
    "BASELINE", "PLANNED", "SCALED", "TOO_DEEP", "TOO_LONG", "T_SWEEP", "USER", "Architecture", "VariantOptions",
    "experiment_architectures", "round_half_up", "scaled_stages", "too_deep_stages", "too_long_stages",
]  # fmt: skip
