"""The deepest network under both constraints (THEORY.md sections 4 and 5).

Both models reduce to one integer program over T_l = sum_{i<=l} a_i 2^(i-1) (a_i >= 1): the
receptive field after stage l is affine in T_l, R_l = alpha_l + g T_l, so every constraint is an
upper bound on some T_l:

* exact model, 2x2 pool downsampling: alpha_l = 2^(l-1), g = k - 1;
* exact model, stride-2 conv downsampling: alpha_l = 1 + g - g 2^(l-1), g = k - 1, and stage l+1
  exists only if its stride-2 conv keeps c >= t, i.e. T_l <= cap_l - 2^(l-1);
* simplified model (the seed's): alpha_l = 0, g = k.

`cap_l` (c >= t for the last conv of stage l: R_l <= k 2^(l-1) / t), `final_l` (R_l <= image side if
stage l is the last) and `next_l` (stage l+1 may follow) bound T_l. The optimiser is a dynamic
programme over stages whose state is T_l reduced to its class under the future bounds: two values
with the same quotient T_l >> l and the same position of T_l mod 2^l among the bounds' residues
mod 2^l satisfy exactly the same future constraints, because every later increment is a multiple
of 2^l. There are O(n/t) classes per stage and O(1/t) choices of a_(l+1), so the cost is
polynomial in the number of stages n = O(log z); within a class only the lexicographically best
(depth, T_l, a_1..a_l) survives, which is exact because objectives add across the split. Moving
from stage l to l+1 keeps depth * 2^l - T invariant, so each reachable T_(l+1) is extended from its
single best source (see `_collect`): one sweep per residue of T_l mod 2^l instead of one move per
source and value of a_(l+1).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from .analysis import ImageSize, normalize_image_size
from .constraints import RfSide, receptive_field_limit
from .errors import InfeasiblePlanError, InvalidLayerError
from .limits import MAX_LAYERS, PLAN_KERNEL_SIZES, PLAN_MIN_C_VALUE_FLOOR
from .rational import format_fraction, parse_min_c_value

Model = Literal["exact", "simplified"]
Downsample = Literal["maxpool", "avgpool", "conv"]
MODELS = ("exact", "simplified")
DOWNSAMPLES = ("maxpool", "avgpool", "conv")


@dataclass(frozen=True)
class StagePlan:
    """The optimal stage lengths (a_1, ..., a_n), their depth and the top receptive field under the model."""

    stages: tuple[int, ...]
    depth: int
    top_receptive_field: int


@dataclass(frozen=True)
class RelaxedPlan:
    """The simplified model's optimum with real a_i > 0 (THEORY.md section 5)."""

    stages: tuple[Fraction, ...]
    depth: Fraction


@dataclass(frozen=True)
class _Family:
    """The bounds of one planning problem, tabulated by stage l = 1..max_stages (index 0 unused).

    ``next[l]`` is None when stage l+1 may always follow stage l.
    """

    cap: tuple[int, ...]
    next: tuple[int | None, ...]
    final: tuple[int, ...]
    alpha: tuple[int, ...]
    growth: int
    max_stages: int

    def radius(self, stage: int, total: int) -> int:
        """R_l = alpha_l + g T_l."""
        return self.alpha[stage] + self.growth * total


_MIN_C_VALUE_FLOOR = Fraction(PLAN_MIN_C_VALUE_FLOOR)


def check_plan_inputs(kernel_size: int, min_c_value: object, model: str, downsample: str) -> Fraction:
    """Validate the planner's scalar inputs and return t as a Fraction."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size not in PLAN_KERNEL_SIZES:
        raise InvalidLayerError(
            "kernel_size", f"the planner takes odd kernel sizes from 3 to {PLAN_KERNEL_SIZES[-1]}, got {kernel_size!r}"
        )
    if model not in MODELS:
        raise InvalidLayerError("model", f"must be one of {', '.join(MODELS)}, got {model!r}")
    if downsample not in DOWNSAMPLES:
        raise InvalidLayerError("downsample", f"must be one of {', '.join(DOWNSAMPLES)}, got {downsample!r}")
    t = parse_min_c_value(min_c_value)
    if t < _MIN_C_VALUE_FLOOR:
        raise InvalidLayerError(
            "min_c_value", f"the planner takes t >= {PLAN_MIN_C_VALUE_FLOOR}, got {format_fraction(t)}"
        )
    return t


def plan_stages(
    image_size: ImageSize,
    kernel_size: int = 3,
    min_c_value: object = None,
    model: Model = "exact",
    downsample: Downsample = "maxpool",
    rf_side: RfSide = "min",
) -> StagePlan:
    """Maximise D = sum a_i; ties go to the larger top receptive field, then fewer stages, then the
    lexicographically larger (a_1, a_2, ...)."""
    t = check_plan_inputs(kernel_size, min_c_value, model, downsample)
    return optimal_stages(normalize_image_size(image_size), kernel_size, t, model, downsample, rf_side)


def optimal_stages(
    size: tuple[int, int], kernel_size: int, t: Fraction, model: str, downsample: str, rf_side: RfSide
) -> StagePlan:
    """`plan_stages` on inputs already checked by `check_plan_inputs` and `normalize_image_size`."""
    family = _family(min(size), receptive_field_limit(size, rf_side), kernel_size, t, model, downsample)
    best = _optimise(family)
    if best is None:
        raise InfeasiblePlanError(
            "image_size",
            f"no network of the family fits a {size[0]}x{size[1]} image with kernel {kernel_size} and "
            f"t = {format_fraction(t)}: even one {kernel_size}x{kernel_size} convolution sees more than the image",
        )
    depth, radius, _, stages = best
    if depth > MAX_LAYERS:
        raise InfeasiblePlanError("min_c_value", f"the plan would have {depth} layers, more than {MAX_LAYERS}")
    return StagePlan(stages=stages, depth=depth, top_receptive_field=radius)


def _family(z_map: int, z_rf: int, k: int, t: Fraction, model: str, downsample: str) -> _Family:
    """Tabulate cap_l, next_l, final_l and alpha_l with integer arithmetic (t = p/q)."""
    p, q = t.numerator, t.denominator
    simplified = model == "simplified"
    growth = k if simplified else k - 1
    caps, nexts, finals, alphas = [0], [None], [0], [0]
    for stage in range(1, 64):
        weight = 2 ** (stage - 1)
        if simplified:
            alpha = 0
        elif downsample == "conv":
            alpha = 1 + growth - growth * weight
        else:
            alpha = weight
        # c >= t for the last conv of the stage: t (alpha + g T) <= k 2^(l-1)
        cap = (k * weight * q - alpha * p) // (p * growth)
        if downsample == "conv":
            # the simplified model has no per-layer view of the stride-2 conv: it only needs the map,
            # which a stride-2 'same' conv never empties
            following: int | None = None if simplified else cap - weight
        else:  # a 2x2 pool needs a map of side >= 2 (both models: the concrete network must exist)
            following = None if 2 * weight <= z_map else -1
        caps.append(cap)
        nexts.append(following)
        finals.append((z_rf - alpha) // growth)
        alphas.append(alpha)
        if 2 * weight - 1 > finals[-1]:  # T_l >= 2^l - 1 outgrows final_l for good from here on
            break
    max_stages = max(
        (stage for stage in range(1, len(caps)) if 2**stage - 1 <= min(caps[stage], finals[stage])), default=0
    )
    return _Family(
        cap=tuple(caps),
        next=tuple(nexts),
        final=tuple(finals),
        alpha=tuple(alphas),
        growth=growth,
        max_stages=max_stages,
    )


def _residues(family: _Family, level: int) -> list[int]:
    """Sorted distinct residues mod 2^level of every bound checked at this level or later."""
    modulus = 1 << level
    bounds: set[int] = set()
    for stage in range(level, family.max_stages + 1):
        bounds.add(family.final[stage] % modulus)
        if stage > level:
            bounds.add(family.cap[stage] % modulus)
        following = family.next[stage]
        if following is not None:
            bounds.add(following % modulus)
    return sorted(bounds)


def _optimise(family: _Family) -> tuple[int, int, int, tuple[int, ...]] | None:
    """Best (depth, top radius, -stages, stages) over all feasible stage lists, or None."""
    if family.max_stages == 0:
        return None
    final_suffix_max = [0] * (family.max_stages + 2)
    running = -1
    for stage in range(family.max_stages, 0, -1):
        running = max(running, family.final[stage])
        final_suffix_max[stage] = running
    best: tuple[int, int, int, tuple[int, ...]] | None = None
    first = min(family.cap[1], final_suffix_max[1])
    states = _collect(family, 1, [(0, 0, ())], 1, first, None)
    level = 1
    while states:
        stop_bound = family.final[level]
        alpha, growth = family.alpha[level], family.growth
        for depth, total, stages in states:
            if total <= stop_bound and (best is None or depth >= best[0]):
                candidate = (depth, alpha + growth * total, -level, stages)  # R_l = alpha_l + g T_l
                if best is None or candidate > best:
                    best = candidate
        if level == family.max_stages:
            break
        ceiling = min(family.cap[level + 1], final_suffix_max[level + 1])
        level += 1
        states = _collect(family, level, states, 1 << (level - 1), ceiling, family.next[level - 1])
    return best


def _collect(
    family: _Family,
    level: int,
    states: list[tuple[int, int, tuple[int, ...]]],
    step: int,
    ceiling: int,
    continue_bound: int | None,
) -> list[tuple[int, int, tuple[int, ...]]]:
    """Extend the states (depth, T, stages) allowed to continue (T <= continue_bound) by a_level = a,
    T' = T + a * step <= ceiling, and keep the lexicographically best (depth, T', stages) of each
    equivalence class of T' at `level` (its quotient by 2^level and its slot among the residues).

    Only the best source of each T' is extended: sources with T = T' (mod step) reach T' with depth
    depth + (T' - T) / step, so the best is the one with T < T' maximising (depth * step - T, stages)
    (the move leaves depth * step - T unchanged; equal values tie on depth and T', and the stages of
    one level all have the same length, so the lexicographic order of the prefixes decides). One
    sweep per residue class of T mod step then makes O(ceiling / step) moves instead of one per
    source and value of a.
    """
    residues = _residues(family, level)
    slots = len(residues) + 1
    mask = (1 << level) - 1
    groups: dict[int, list[tuple[int, int, tuple[int, ...]]]] = {}
    for state in states:
        if continue_bound is None or state[1] <= continue_bound:
            groups.setdefault(state[1] % step, []).append(state)
    kept: dict[int, tuple[int, int, tuple[int, ...]]] = {}
    get = kept.get
    for group in groups.values():
        group.sort(key=_total)
        size = len(group)
        best_potential, best_stages, best_depth, best_total = None, (), 0, 0
        admitted = 0
        target = group[0][1] + step
        while target <= ceiling:
            while admitted < size and group[admitted][1] < target:
                depth, total, stages = group[admitted]
                potential = depth * step - total
                if (
                    best_potential is None
                    or potential > best_potential
                    or (potential == best_potential and stages > best_stages)
                ):
                    best_potential, best_stages, best_depth, best_total = potential, stages, depth, total
                admitted += 1
            a = (target - best_total) // step
            new_depth = best_depth + a
            key = (target >> level) * slots + bisect_left(residues, target & mask)
            current = get(key)
            if (
                current is None
                or new_depth > current[0]
                or (
                    new_depth == current[0]
                    and (target > current[1] or (target == current[1] and best_stages + (a,) > current[2]))
                )
            ):
                kept[key] = (new_depth, target, best_stages + (a,))
            target += step
    return list(kept.values())


def _total(state: tuple[int, int, tuple[int, ...]]) -> int:
    return state[1]


def relaxed_optimum(
    image_size: ImageSize, kernel_size: int = 3, min_c_value: object = None, rf_side: RfSide = "min"
) -> RelaxedPlan:
    """Simplified model with real a_i > 0: fill T_l = 2^(l-1)/t stage by stage while 2^(l-1)/t < z/k;
    the last stage takes the rest, a_n = (z/k - 2^(n-2)/t) / 2^(n-1). At z = 2^(n-1) k / t this is
    a_1 = 1/t, a_i = 1/(2t)."""
    t = check_plan_inputs(kernel_size, min_c_value, "simplified", "maxpool")
    return relaxed_stages(normalize_image_size(image_size), kernel_size, t, rf_side)


def relaxed_stages(size: tuple[int, int], kernel_size: int, t: Fraction, rf_side: RfSide) -> RelaxedPlan:
    """`relaxed_optimum` on checked inputs, in integers until the end: with t = p/q and z/k the budget,
    stage l is the last once 2^(l-1) q k >= z p; a_1 = q/p, a_l = q/(2p) before it, a_n = (z/k - 2^(n-2) q/p) / 2^(n-1)."""
    p, q = t.numerator, t.denominator
    z = receptive_field_limit(size, rf_side)
    stages: list[Fraction] = []
    filled = Fraction(0)  # T_(l-1) = 2^(l-2) q / p
    weight = 1
    while weight * q * kernel_size < z * p:
        stages.append(Fraction(q, p) if weight == 1 else Fraction(q, 2 * p))
        filled = Fraction(weight * q, p)
        weight *= 2
    stages.append((Fraction(z, kernel_size) - filled) / weight)
    return RelaxedPlan(stages=tuple(stages), depth=sum(stages, Fraction(0)))
