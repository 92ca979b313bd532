"""The deepest network under both constraints (docs/theory.md#exact-model and #simplified-model).

Both models reduce to one integer program over T_l = sum_{i<=l} a_i 2^(i-1) (a_i >= 1): the
receptive field after stage l is affine in T_l, R_l = alpha_l + g T_l, so every constraint is an
upper bound on some T_l:

* exact model, 2x2 pool downsampling: alpha_l = 2^(l-1), g = k - 1;
* exact model, stride-2 conv downsampling: alpha_l = 1 + g - g 2^(l-1), g = k - 1, and stage l+1
  exists only if its stride-2 conv keeps c >= t, i.e. T_l <= cap_l - 2^(l-1);
* simplified model (the seed's): alpha_l = 0, g = k.

A stem (a stride-2 k x k conv, optionally followed by a 2x2 stride-2 pool) leaves the receptive field
r0 and the jump j0 at stage 1's input; every stage then sees j0 times the jumps above and the bounds
generalise to alpha_l = r0 + j0 (2^(l-1) - 1) (pools) or r0 + g j0 (1 - 2^(l-1)) (stride-2 convs), with
growth g j0 and real filter size k j0 2^(l-1) (r0 = j0 = 1 without a stem gives the forms above).
A block style whose blocks hold m spatial convolutions (m = 2 for `basic`) plans a_i = m b_i: the
same programme over T'_l = sum b_i 2^(i-1) with every bound divided by m (rounded down) and growth m g.

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

The programme's cost does not depend on how close the optimum is to its bound; for the usual plans (up to
~10 stages) a branch and bound over a_1, a_2, ... that uses D = sum_(l<n) T_l / 2^l + T_n / 2^(n-1) (increasing
in every T_l) as its bound settles in a few dozen nodes, about twice as fast; `_optimise` runs it first, with a
node budget, and the programme past it (`_branch_and_bound`, `_optimise_dp`: both exact, compared in
tests/solver/test_solver_planner_search.py).
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
Block = Literal["plain", "basic", "bottleneck", "inverted_residual"]
Stem = Literal["none", "conv", "conv_pool"]
MODELS = ("exact", "simplified")
DOWNSAMPLES = ("maxpool", "avgpool", "conv")
BLOCKS = ("plain", "basic", "bottleneck", "inverted_residual")
STEMS = ("none", "conv", "conv_pool")

SPATIAL_CONVS_PER_BLOCK = {"plain": 1, "basic": 2, "bottleneck": 1, "inverted_residual": 1}
"""Spatial (k x k) convolutions in one block of each style: a stage's length is a multiple of it."""


@dataclass(frozen=True)
class StemState:
    """The receptive-field state at stage 1's input after the stem: r0, j0, the map (height, width)
    and the number of spatial convolutions the stem holds."""

    receptive_field: int
    jump: int
    size: tuple[int, int]
    convs: int


def stem_state(stem: str, kernel_size: int, size: tuple[int, int]) -> StemState:
    """Section 1's arithmetic on the stem: a k x k stride-2 'same' conv gives r = k, j = 2 and the map
    ceil(s / 2); a 2x2 stride-2 pool after it gives r = k + 2, j = 4 and floor(ceil(s / 2) / 2).

    Raises InfeasiblePlanError (field image_size) when the stem's pool would empty the map."""
    if stem == "none":
        return StemState(1, 1, size, 0)
    height, width = (-(-side // 2) for side in size)
    if stem == "conv":
        return StemState(kernel_size, 2, (height, width), 1)
    if min(height, width) < 2:
        raise InfeasiblePlanError(
            "image_size", f"the stem's 2x2 pool gets a {height}x{width} map from the stem conv and would empty it"
        )
    return StemState(kernel_size + 2, 4, (height // 2, width // 2), 1)


@dataclass(frozen=True)
class StagePlan:
    """The optimal stage lengths (a_1, ..., a_n), their depth and the top receptive field under the model."""

    stages: tuple[int, ...]
    depth: int
    top_receptive_field: int


@dataclass(frozen=True)
class RelaxedPlan:
    """The simplified model's optimum with real a_i > 0 (docs/theory.md#simplified-model)."""

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


def check_plan_inputs(
    kernel_size: int, min_c_value: object, model: str, downsample: str, block: str = "plain", stem: str = "none"
) -> Fraction:
    """Validate the planner's scalar inputs and return t as a Fraction (the simplified model has no stem)."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size not in PLAN_KERNEL_SIZES:
        raise InvalidLayerError(
            "kernel_size", f"the planner takes odd kernel sizes from 3 to {PLAN_KERNEL_SIZES[-1]}, got {kernel_size!r}"
        )
    if model not in MODELS:
        raise InvalidLayerError("model", f"must be one of {', '.join(MODELS)}, got {model!r}")
    if downsample not in DOWNSAMPLES:
        raise InvalidLayerError("downsample", f"must be one of {', '.join(DOWNSAMPLES)}, got {downsample!r}")
    if block not in BLOCKS:
        raise InvalidLayerError("block", f"must be one of {', '.join(BLOCKS)}, got {block!r}")
    if stem not in STEMS:
        raise InvalidLayerError("stem", f"must be one of {', '.join(STEMS)}, got {stem!r}")
    if stem != "none" and model == "simplified":
        raise InvalidLayerError("stem", "the simplified model has no stem (it counts stages only); use model 'exact'")
    t = parse_min_c_value(min_c_value)
    if t.numerator * _MIN_C_VALUE_FLOOR.denominator < _MIN_C_VALUE_FLOOR.numerator * t.denominator:  # t < floor
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
    block: Block = "plain",
    stem: Stem = "none",
) -> StagePlan:
    """Maximise D = sum a_i (each a_i a multiple of the block's spatial convolutions); ties go to the
    larger top receptive field, then fewer stages, then the lexicographically larger (a_1, a_2, ...)."""
    t = check_plan_inputs(kernel_size, min_c_value, model, downsample, block, stem)
    return optimal_stages(normalize_image_size(image_size), kernel_size, t, model, downsample, rf_side, block, stem)


def optimal_stages(
    size: tuple[int, int],
    kernel_size: int,
    t: Fraction,
    model: str,
    downsample: str,
    rf_side: RfSide,
    block: str = "plain",
    stem: str = "none",
) -> StagePlan:
    """`plan_stages` on inputs already checked by `check_plan_inputs` and `normalize_image_size`.
    The stages exclude the stem; `depth` is their sum."""
    start = stem_state(stem, kernel_size, size)
    family = _family(
        min(start.size),
        receptive_field_limit(size, rf_side),
        kernel_size,
        t,
        model,
        downsample,
        start.receptive_field,
        start.jump,
    )
    group = SPATIAL_CONVS_PER_BLOCK[block]
    if group > 1:
        family = _grouped(family, group)
    best = _optimise(family)
    if best is None:
        raise InfeasiblePlanError(
            "image_size",
            f"no network of the family fits a {size[0]}x{size[1]} image with kernel {kernel_size} and "
            f"t = {format_fraction(t)}: even one {kernel_size}x{kernel_size} convolution sees more than the image",
        )
    depth, radius, _, stages = best
    if group > 1:
        depth, stages = depth * group, tuple(a * group for a in stages)
    if depth > MAX_LAYERS:
        raise InfeasiblePlanError("min_c_value", f"the plan would have {depth} layers, more than {MAX_LAYERS}")
    return StagePlan(stages=stages, depth=depth, top_receptive_field=radius)


def _family(
    z_map: int, z_rf: int, k: int, t: Fraction, model: str, downsample: str, r0: int = 1, j0: int = 1
) -> _Family:
    """Tabulate cap_l, next_l, final_l and alpha_l with integer arithmetic (t = p/q); stage 1 starts
    from receptive field r0 and jump j0 on a map of side z_map (the stem's output)."""
    p, q = t.numerator, t.denominator
    simplified = model == "simplified"
    conv = downsample == "conv"
    growth = k if simplified else (k - 1) * j0
    scale, divisor = k * j0 * q, p * growth
    caps, finals, alphas = [0], [0], [0]
    nexts: list[int | None] = [None]
    max_stages = 0
    weight = 1  # 2^(l-1)
    for stage in range(1, 64):
        if simplified:
            alpha = 0
        elif conv:
            alpha = r0 + growth - growth * weight
        else:
            alpha = r0 + j0 * (weight - 1)
        # c >= t for the last conv of the stage: t (alpha + G T) <= k j0 2^(l-1)
        cap = (scale * weight - alpha * p) // divisor
        if conv:
            # the simplified model has no per-layer view of the stride-2 conv: it only needs the map,
            # which a stride-2 'same' conv never empties
            following: int | None = None if simplified else cap - weight
        else:  # a 2x2 pool needs a map of side >= 2 (both models: the concrete network must exist)
            following = None if 2 * weight <= z_map else -1
        final = (z_rf - alpha) // growth
        caps.append(cap)
        nexts.append(following)
        finals.append(final)
        alphas.append(alpha)
        if 2 * weight - 1 <= min(cap, final):  # T_l >= 2^l - 1: stage l can be the last
            max_stages = stage
        if 2 * weight - 1 > final:  # T_l >= 2^l - 1 outgrows final_l for good from here on
            break
        weight *= 2
    return _Family(
        cap=tuple(caps),
        next=tuple(nexts),
        final=tuple(finals),
        alpha=tuple(alphas),
        growth=growth,
        max_stages=max_stages,
    )


def _grouped(family: _Family, group: int) -> _Family:
    """The family over T' = T / group (every a_i a multiple of `group`): each bound T_l <= B becomes
    T'_l <= floor(B / group) and R_l = alpha_l + (group g) T'_l."""
    caps = tuple(cap // group for cap in family.cap)
    finals = tuple(final // group for final in family.final)
    nexts = tuple(None if following is None else following // group for following in family.next)
    max_stages = max(
        (stage for stage in range(1, len(caps)) if 2**stage - 1 <= min(caps[stage], finals[stage])), default=0
    )
    return _Family(
        cap=caps, next=nexts, final=finals, alpha=family.alpha, growth=family.growth * group, max_stages=max_stages
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


BRANCH_AND_BOUND_NODES = 512
"""Nodes `_branch_and_bound` may visit before `_optimise` hands the problem to the dynamic programme: plans
of up to ~10 stages (images up to ~2,000 pixels at the usual t) need a few dozen; deeper searches, where
the bound is loose by several layers, are cheaper as the programme's O(n^2 / t) sweep."""


def _optimise(family: _Family) -> tuple[int, int, int, tuple[int, ...]] | None:
    """Best (depth, top radius, -stages, stages) over all feasible stage lists, or None: by branch and
    bound where it settles within `BRANCH_AND_BOUND_NODES` nodes, else by the dynamic programme (both exact;
    tests/solver/test_solver_planner_search.py compares them)."""
    found = _branch_and_bound(family, BRANCH_AND_BOUND_NODES)
    return _optimise_dp(family) if found is _GAVE_UP else found  # type: ignore[return-value]


_GAVE_UP = object()
"""What `_branch_and_bound` answers when it ran out of nodes."""


def _branch_and_bound(family: _Family, budget: int | None) -> object:
    """`_optimise` by depth-first search over a_1, a_2, ... for each stage count n, or `_GAVE_UP` after
    `budget` nodes (None: no limit).

    With n stages the constraints are upper bounds on the T_l: T_l <= cap_l (l <= n), T_l <= next_l (l < n),
    T_n <= final_n; and a_(l+1) >= 1 gives T_l <= T_(l+1) - 2^l, so the cascaded U_n = min(cap_n, final_n),
    U_l = min(cap_l, next_l, U_(l+1) - 2^l) state them all (n is feasible iff U_1 >= 1). The depth is
    D = sum_(l<n) T_l / 2^l + T_n / 2^(n-1), increasing in every T_l, so a node at level l (T_l, depth d_l)
    can reach at most d_l - T_l / 2^l + sum_(l<i<n) U_i / 2^i + U_n / 2^(n-1) (evaluated in integers scaled by
    2^(n-1)), less the part of U_(l+1) that T_(l+1) = T_l (mod 2^l) must leave; and its top radius is at most
    alpha_n + g (U_n - ((U_n - T_l) mod 2^l)). A node is pruned when (its depth bound, its radius bound, -n)
    cannot beat the best (depth, radius, -n) found; the first bound falls by 1/2 per unit less of a_l, so the
    values of a_l are tried from the largest down and the first pruned by it ends the loop. Children are
    visited in the lexicographic order of the stages, largest first, so of two equal objectives the one found
    first is the lexicographically larger, and a node (l, T_l) met again with no larger depth is skipped
    (its future is the same). Stage counts are tried by decreasing depth bound."""
    if family.max_stages == 0:
        return None
    cap, following, final, alpha, growth = family.cap, family.next, family.final, family.alpha, family.growth
    problems: list[_Problem] = []
    for n in range(1, family.max_stages + 1):
        # bounds[l] = U_l; suffix[l] = sum_(l<i<n) U_i 2^(n-1-i) + U_n, the largest scaled depth after stage l
        bound = min(cap[n], final[n])
        bounds = [0] * (n + 1)
        suffix = [0] * n
        bounds[n] = running = bound
        for level in range(n - 1, 0, -1):
            suffix[level] = running
            bound -= 1 << level
            if cap[level] < bound:
                bound = cap[level]
            limit = following[level]
            if limit is not None and limit < bound:
                bound = limit
            bounds[level] = bound
            running += bound << (n - 1 - level)
        if bound < 1:
            continue
        suffix[0] = running
        problems.append((running >> (n - 1), alpha[n] + growth * bounds[n], -n, bounds, suffix))
    problems.sort(key=_bounds_order, reverse=True)
    best: tuple[int, int, int, tuple[int, ...]] | None = None
    # best[:3] as scalars (no depth bound is negative, so -1 admits anything): a node is pruned when
    # (its depth bound, its radius bound, -n) <= (best_depth, best_radius, best_rank), compared inline
    best_depth = best_radius = best_rank = -1
    nodes = 0
    for upper, top, rank, bounds, suffix in problems:
        if upper < best_depth or (
            upper == best_depth and (top < best_radius or (top == best_radius and rank <= best_rank))
        ):
            break  # and every later problem: they are sorted by these bounds
        n = -rank
        shift = n - 1
        top_bound, top_radius = bounds[n], alpha[n]
        seen: dict[tuple[int, int], int] = {}
        stack: list[tuple[int, int, int, tuple[int, ...]]] = [(1, 0, 0, ())]
        while stack:
            level, total, depth, stages = stack.pop()
            key = (level, total)
            if seen.get(key, -1) >= depth:
                continue
            seen[key] = depth
            nodes += 1
            if budget is not None and nodes > budget:
                return _GAVE_UP
            weight = 1 << (level - 1)
            a = (bounds[level] - total) // weight
            if level == n:  # (only with n = 1: the last stage is otherwise evaluated below, with its parent)
                if a >= 1:
                    best = _better(best, (depth + a, top_radius + growth * (total + a * weight), rank, (a,)))
                    best_depth, best_radius, best_rank = best[0], best[1], best[2]
                continue
            rest, scale, modulus = suffix[level], shift - level, weight << 1
            below = scale - 1 if scale else 0
            following_bound = bounds[level + 1]
            last = level + 1 == n
            children = []
            while a >= 1:
                total_next, depth_next = total + a * weight, depth + a
                a -= 1
                if best is not None:
                    scaled = rest - (total_next << scale)
                    bound = depth_next + (scaled >> shift)
                    if bound < best_depth or (
                        bound == best_depth and (top < best_radius or (top == best_radius and rank <= best_rank))
                    ):
                        break  # and every smaller a_l
                    bound = depth_next + ((scaled - (((following_bound - total_next) % modulus) << below)) >> shift)
                    radius = top_radius + growth * (top_bound - (top_bound - total_next) % modulus)
                    if bound < best_depth or (
                        bound == best_depth and (radius < best_radius or (radius == best_radius and rank <= best_rank))
                    ):
                        continue
                if last:  # the largest a_n is best: deepest and widest
                    nodes += 1
                    a_n = (top_bound - total_next) >> level
                    if a_n >= 1:
                        best = _better(best, (depth_next + a_n, top_radius + growth * (total_next + (a_n << level)),
                                              rank, (*stages, a + 1, a_n)))  # fmt: skip
                        best_depth, best_radius, best_rank = best[0], best[1], best[2]
                else:
                    children.append((level + 1, total_next, depth_next, (*stages, a + 1)))
            children.reverse()
            stack.extend(children)
    return best


def _better(
    best: tuple[int, int, int, tuple[int, ...]] | None, candidate: tuple[int, int, int, tuple[int, ...]]
) -> tuple[int, int, int, tuple[int, ...]]:
    return candidate if best is None or candidate > best else best


_Problem = tuple[int, int, int, list[int], list[int]]
"""One stage count's (depth bound, radius bound, -n, U_1..U_n, scaled suffix sums) in `_branch_and_bound`."""


def _bounds_order(problem: _Problem) -> tuple[int, int, int]:
    return problem[0], problem[1], problem[2]


def _optimise_dp(family: _Family) -> tuple[int, int, int, tuple[int, ...]] | None:
    """`_optimise` by the dynamic programme over stages of the module docstring."""
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
        best_stages: tuple[int, ...] = ()
        best_potential, best_depth, best_total = None, 0, 0
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
