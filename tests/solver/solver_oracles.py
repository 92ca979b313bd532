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


def _walk_conv(state: tuple[int, int, int, int], k: int, stride: int) -> tuple[tuple[int, int, int, int], int]:
    """(r, j, P, side) after a k x k 'same' conv (1x1: padding 0) of `stride`, and its input jump."""
    r, j, p, side = state
    left, right = ar.same_padding(k) if k > 1 else (0, 0)
    out = (
        ar.next_receptive_field(r, k, j),
        ar.next_jump(j, stride),
        ar.next_effective_padding(p, left, j),
        ar.output_size(side, k, stride, left, right),
    )
    return out, j


def _walk_merge(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """Section 1's union of two aligned inputs; None when jumps or sides differ (misaligned)."""
    if a[1] != b[1] or a[3] != b[3]:
        return None
    return (ar.merge_receptive_field([a[0], b[0]], [a[2], b[2]]), a[1], ar.merge_effective_padding([a[2], b[2]]), a[3])


def walk_block(state, k: int, t: Fraction, style: str, stride: int):
    """Walk one block of `style` layer by layer: (state after it, its top conv r, all its k x k convs have
    c >= t and no map vanished), or None when a merge is misaligned. The shortcut is the identity or a
    1x1 conv of the block's stride (the inverted residual has none when it strides)."""
    ok = True
    if style == "plain":
        spatial = [(k, stride)]
    elif style == "basic":
        spatial = [(k, stride), (k, 1)]
    else:  # bottleneck and inverted_residual: 1x1, k x k (the stride), 1x1
        spatial = [(1, 1), (k, stride), (1, 1)]
    current, top = state, 0
    for kernel, s in spatial:
        current, jump_in = _walk_conv(current, kernel, s)
        top = max(top, current[0])
        if kernel > 1:
            ok &= ar.c_value(kernel, jump_in, current[0]) >= t
        ok &= current[3] >= 1
    if style == "plain" or (style == "inverted_residual" and stride != 1):
        return current, top, ok
    shortcut = state if stride == 1 else _walk_conv(state, 1, stride)[0]
    merged = _walk_merge(current, shortcut)
    return None if merged is None else (merged, top, ok)


def walk_stem(z_side: int, k: int, stem: str):
    """(r, j, P, side) after the stem ('none', 'conv': a k x k stride-2 'same' conv, 'conv_pool': and a 2x2
    stride-2 pool), or None when the map vanishes."""
    state = (1, 1, 0, z_side)
    if stem == "none":
        return state
    state, _ = _walk_conv(state, k, 2)
    if stem == "conv_pool":
        r, j, p, side = state
        state = (ar.next_receptive_field(r, 2, j), ar.next_jump(j, 2), p, ar.output_size(side, 2, 2, 0, 0))
    return state if state[3] >= 1 else None


def styled_optimum(z: int, k: int, t: Fraction, downsample: str, style: str, stem: str, side: int | None = None):
    """Exhaustive search over stage lists of whole blocks of `style` after `stem`, every block walked layer by
    layer (its 1x1 convs, shortcut and merge included): the best (stages in spatial convs, top r) under
    depth, top r, fewer stages, lexicographically larger stages; None when nothing is valid. The top r
    (the last block's top conv) must be <= z; maps start at `side` (default z)."""
    per_block = 2 if style == "basic" else 1
    start = walk_stem(z if side is None else side, k, stem)
    if start is None:
        return None

    def step(state, stride):
        walked = walk_block(state, k, t, style, stride)
        if walked is None:
            return None
        after, top, ok = walked
        return (after, top) if ok and top <= z else None

    @cache
    def best_after_block(state, top_r) -> Best:
        options: list[Best] = [(0, top_r, 0, (0,))]
        same = step(state, 1)
        if same is not None:
            depth, top, stages, rest = best_after_block(*same)
            options.append((depth + per_block, top, stages, (rest[0] + per_block,) + rest[1:]))
        if downsample == "conv":
            opened = step(state, 2)
        else:
            r, j, p, map_side = state
            pooled = (ar.next_receptive_field(r, 2, j), ar.next_jump(j, 2), p, ar.output_size(map_side, 2, 2, 0, 0))
            opened = step(pooled, 1) if pooled[3] >= 1 else None
        if opened is not None:
            depth, top, stages, rest = best_after_block(*opened)
            options.append((depth + per_block, top, stages - 1, (0, rest[0] + per_block) + rest[1:]))
        return max(options)

    first = step(start, 1)
    if first is None:
        return None
    _, top, _, rest = best_after_block(*first)
    return (rest[0] + per_block,) + rest[1:], top
