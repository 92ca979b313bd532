"""Independent reference implementations the solver tests compare against.

Nothing here uses the planner: candidates are evaluated layer by layer with `cnnplan.solver.arithmetic`
(one formula per function, docs/theory.md#layer-arithmetic), and optima are found by exhaustive search.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

from cnnplan.solver import arithmetic as ar

Best = tuple[int, int, int, tuple[int, ...]]
"""(depth added, top receptive field, -stages added, stage additions): larger is better, docs/theory.md#exact-model."""


def simulate_family(stages: tuple[int, ...], z: int, k: int, t: Fraction, downsample: str):
    """Walk the concrete chain of the planning family layer by layer; return (valid, top r, vanished).

    Stage i holds stages[i] k x k 'same' stride-1 convs; stages are joined by a 2x2 stride-2 pool, or
    (downsample='conv') the first conv of each later stage has stride 2. Valid = every conv has
    c >= t, the top receptive field is <= z and no map vanishes.
    """
    r, j, side = 1, 1, z
    valid, vanished = True, False
    for stage, count in enumerate(stages):
        for position in range(count):
            stride = 1
            if stage > 0 and position == 0:
                if downsample == "conv":
                    stride = 2
                else:
                    r = ar.next_receptive_field(r, 2, j)
                    side = ar.output_size(side, 2, 2, 0, 0)
                    j = ar.next_jump(j, 2)
                    vanished |= side < 1
            left, right = ar.same_padding(k)
            r_out = ar.next_receptive_field(r, k, j)
            valid &= ar.c_value(k, j, r_out) >= t
            side = ar.output_size(side, k, stride, left, right)
            vanished |= side < 1
            r, j = r_out, ar.next_jump(j, stride)
    return valid and not vanished and r <= z, r, vanished


def exact_optimum(
    z: int, k: int, t: Fraction, downsample: str, side: int | None = None
) -> tuple[tuple[int, ...], int] | None:
    """Exhaustive search of the exact family (memoised on the walk state (r, j, side)): the best
    (stages, top r) under the tie-break depth, top r, fewer stages, lexicographically larger stages.
    `z` bounds the top receptive field; the maps start at `side` (default z; the smaller image side)."""
    start_side = z if side is None else side
    left, right = ar.same_padding(k)

    @cache
    def best_after_conv(r: int, j: int, side: int) -> Best:
        """Best completion from just after a conv: stay (0 more), add a conv, or open a new stage."""
        options: list[Best] = [(0, r, 0, (0,))]
        r_next = ar.next_receptive_field(r, k, j)
        if r_next <= z and ar.c_value(k, j, r_next) >= t:
            depth, top, stages, rest = best_after_conv(r_next, j, ar.output_size(side, k, 1, left, right))
            options.append((depth + 1, top, stages, (rest[0] + 1,) + rest[1:]))
        if downsample == "conv":
            r_new, j_in, side_new = r, j, ar.output_size(side, k, 2, left, right)
        else:
            r_new, j_in = ar.next_receptive_field(r, 2, j), ar.next_jump(j, 2)
            side_new = ar.output_size(ar.output_size(side, 2, 2, 0, 0), k, 1, left, right)
        r_new = ar.next_receptive_field(r_new, k, j_in)
        j_out = ar.next_jump(j_in, 2) if downsample == "conv" else j_in
        if side_new >= 1 and r_new <= z and ar.c_value(k, j_in, r_new) >= t:
            depth, top, stages, rest = best_after_conv(r_new, j_out, side_new)
            options.append((depth + 1, top, stages - 1, (0, rest[0] + 1) + rest[1:]))
        return max(options)

    if k > z or k > start_side:
        return None
    _, top, _, rest = best_after_conv(k, 1, start_side)
    return (rest[0] + 1,) + rest[1:], top


def simplified_optimum(
    z: int, k: int, t: Fraction, pooled_side: int | None = None
) -> tuple[tuple[int, ...], int] | None:
    """Exhaustive search of the seed's simplified model: sum_{i<=l} a_i 2^(i-1) <= 2^(l-1)/t for every
    l and R = k sum a_i 2^(i-1) <= z; same tie-break, top receptive field R. With `pooled_side` (the
    smaller image side, for pool downsampling) stage l+1 also needs a map of side >= 2^l to pool."""

    @cache
    def best_after_stage(level: int, total: int) -> Best:
        options: list[Best] = [(0, k * total, 0, ())]
        weight = 2**level
        if level and pooled_side is not None and weight > pooled_side:
            return max(options)
        a = 1
        while k * (total + a * weight) <= z and (total + a * weight) <= Fraction(weight) / t:
            depth, top, stages, rest = best_after_stage(level + 1, total + a * weight)
            options.append((depth + a, top, stages - 1, (a,) + rest))
            a += 1
        return max(options)

    _, top, _, stages = best_after_stage(0, 0)
    return (stages, top) if stages else None
