"""Machine-readable fixes of violations, and the repair of an architecture by applying them (docs/geometry.md).

A fix is a JSON-ready dict, one of:

- ``{"action": "remove_layers", "stage_end": L, "convolutions": N, "nodes": [...]}``: delete the named
  nodes (whole blocks: a convolution with its batch norm and activation, or a residual block), rewiring
  their consumers to the block's input; N counts the feature-level convolutions removed;
- ``{"action": "insert_downsampling", "before": L, "insert": {...}}``: a 2x2 stride-2 max pool feeding L;
- ``{"action": "change_layer", "layer": L, "set": {"kernel_size": [h, w]}}``: the smallest larger kernel
  that restores c >= t at L.

Blocks are the segments of the graph between cut points (nodes every path from the image passes),
so removing one never leaves a dangling merge. A removal in front of a layer lowers its receptive field
by exactly the removed blocks' growth (their receptive field is additive through cut points) and
changes no jump, so it never breaks another constraint; repairs prefer it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from . import arithmetic as ar
from .analysis import Analysis, LayerStats, Pair, Walk, analyse_checked, is_feature_conv, walk_checked
from .constraints import (
    C_VALUE,
    ValidationReport,
    Violation,
    binding_axis,
    check_constraints,
    constrained_axes,
)
from .errors import SolverError
from .layers import ADD, ELEMENTWISE_KINDS, FEATURE, INPUT, Layer, as_graph, topological_order
from .limits import MAX_KERNEL_SIZE

REMOVE = "remove_layers"
INSERT = "insert_downsampling"
CHANGE = "change_layer"
MAX_FIXES = 100
"""Most c-value violations of one report that get a fix (each names the nodes it removes, so a degenerate
10,000-layer chain would otherwise answer millions of names); the receptive-field violation always does."""
MAX_EDITS = 256
"""Most edits one repair applies (each re-validates the whole architecture); beyond, it says so."""
_VERIFY_BUDGET = 200_000
"""Most (nodes x violations) for which alternative fixes are checked by re-analysis (else left out)."""


@dataclass(frozen=True)
class _Block:
    entry: str
    names: tuple[str, ...]
    convs: tuple[str, ...]
    removable: bool
    """All feature level, holds a feature conv, keeps the jump (and the channels, when an add follows):
    removing it lowers r downstream and changes nothing else the constraints or merges see."""
    feature_only: bool
    jump_in: Pair
    jump_out: Pair
    rf_in: Pair
    rf_out: Pair


@dataclass(frozen=True)
class Repair:
    """The repaired architecture's report, the edits applied in order, and the violations left with why."""

    report: ValidationReport
    edits: tuple[dict[str, Any], ...]
    unresolved: tuple[tuple[Violation, str], ...]

    @property
    def nodes(self) -> tuple[Layer, ...]:
        """The repaired, named layers."""
        return self.report.analysis.nodes


def blocks(analysis: Analysis) -> list[_Block]:
    """The architecture cut at every node that all later nodes reach only through it, in topological
    order; a segment of element-wise layers joins the block before it (a conv with its BN and ReLU)."""
    nodes = analysis.nodes
    order = topological_order(nodes)
    position = {nodes[i].name: p for p, i in enumerate(order)}
    position[INPUT] = -1
    earliest_after = [len(order)] * (len(order) + 1)
    for p in range(len(order) - 1, -1, -1):
        sources = nodes[order[p]].inputs or ()
        reach = min((position[s] for s in sources), default=p)
        earliest_after[p] = min(earliest_after[p + 1], reach)
    stats = {layer.name: layer for layer in analysis.layers}
    segments: list[list[str]] = []
    current: list[str] = []
    for p, i in enumerate(order):
        current.append(_name(nodes[i]))
        if p + 1 == len(order) or earliest_after[p + 1] >= p:
            segments.append(current)
            current = []
    grouped: list[list[str]] = []
    for segment in segments:
        elementwise = all(stats[name].kind in ELEMENTWISE_KINDS for name in segment)
        same_level = grouped and stats[grouped[-1][-1]].level == stats[segment[0]].level
        if grouped and elementwise and same_level:
            grouped[-1].extend(segment)
        else:
            grouped.append(list(segment))
    adds_after = [False] * len(grouped)  # an add merge later on needs the channel count kept
    seen_add = False
    for index in range(len(grouped) - 1, -1, -1):
        adds_after[index] = seen_add
        seen_add = seen_add or any(stats[name].kind == ADD for name in grouped[index])
    result = []
    entry = INPUT
    for index, names in enumerate(grouped):
        last = stats[names[-1]]
        entry_stats = stats.get(entry)
        jump_in = entry_stats.jump if entry_stats is not None else (1, 1)
        rf_in = entry_stats.receptive_field if entry_stats is not None else (1, 1)
        channels_in = entry_stats.out_channels if entry_stats is not None else analysis.in_channels
        convs = tuple(name for name in names if is_feature_conv(stats[name]))
        feature_only = all(stats[name].level == FEATURE for name in names)
        keeps = jump_in == last.jump and (channels_in == last.out_channels or not adds_after[index])
        result.append(
            _Block(
                entry, tuple(names), convs, feature_only and bool(convs) and keeps,
                feature_only, jump_in, last.jump, rf_in, last.receptive_field,
            )
        )  # fmt: skip
        entry = names[-1]
    return result


def _name(node: Layer) -> str:
    """The name of a named node (`as_graph` names every node; `_named` makes a report's nodes named)."""
    assert node.name is not None
    return node.name


def _named(report: ValidationReport) -> ValidationReport:
    """`report` whose analysis holds checked, named nodes (`analyse_chain` keeps the layers as given)."""
    nodes = report.analysis.nodes
    if all(node.name is not None and node.inputs is not None for node in nodes):
        return report
    return replace(report, analysis=replace(report.analysis, nodes=as_graph(nodes)))


def attach_fixes(report: ValidationReport, alternatives: bool = True) -> ValidationReport:
    """`report` with every violation's ``fix`` (None when no safe edit exists, and the message says so),
    its ``alternatives`` (when asked; each checked by re-analysis) and a message that states the fix in
    layers. Needs ``report.analysis.nodes``."""
    if report.valid or not report.analysis.nodes:
        return report
    report = _named(report)
    analysis = report.analysis
    found = blocks(analysis)
    block_of = {name: index for index, block in enumerate(found) for name in block.names}
    run_start = _run_starts(found)
    stats = {layer.name: layer for layer in analysis.layers}
    verify = alternatives and len(analysis.nodes) * len(report.violations) <= _VERIFY_BUDGET
    # the walk of the network as it is: each alternative's check re-walks only what its edit reaches
    base = walk_checked(analysis.nodes, analysis.image_size, analysis.in_channels) if verify else None
    fixed = []
    for position, violation in enumerate(report.violations):
        if position >= MAX_FIXES and violation.constraint == C_VALUE:
            note = f" Fix: not computed (only the first {MAX_FIXES} violations get one; a repair finds the rest)."
            fixed.append(replace(violation, message=violation.message + note))
        elif violation.constraint == C_VALUE:
            fixed.append(_fix_c_value(report, violation, stats, found, block_of, run_start, base))
        else:
            fixed.append(_fix_receptive_field(report, violation, stats, found))
    return replace(report, violations=tuple(fixed))


def _run_starts(found: list[_Block]) -> list[int]:
    """For each block, the first block of the run of consecutive removable blocks at its jump that ends there."""
    starts: list[int] = []
    for index, block in enumerate(found):
        previous = found[index - 1] if index else None
        joined = block.removable and previous is not None and previous.removable and previous.jump_out == block.jump_in
        starts.append(starts[-1] if joined else index)
    return starts


def _satisfies(layer: LayerStats, axes: tuple[int, ...], drop: Pair, t: Fraction) -> bool:
    """c >= t on every axis of `axes` once the receptive field entering `layer` is `drop` smaller."""
    p, q = t.numerator, t.denominator
    real = layer.real_filter_size or (0, 0)
    return all(real[a] * q >= p * (layer.receptive_field[a] - drop[a]) for a in axes)


def _fix_c_value(
    report: ValidationReport,
    violation: Violation,
    stats: dict[str, LayerStats],
    found: list[_Block],
    block_of: dict[str, int],
    run_start: list[int],
    verify: Walk | None,
) -> Violation:
    layer = stats[violation.layer]
    t = report.min_c_value
    axes = constrained_axes(layer, report.include_pointwise)
    here = block_of[layer.name]
    fix = None
    last = here - 1
    if last >= 0 and found[last].removable:  # any jump: removing it lowers r_L and changes no jump
        first = run_start[last]
        exit_rf = found[last].rf_out
        # the fewest blocks last, last - 1, ... whose removal restores c: monotone in the count, so bisect
        low, high = 0, last - first + 1  # remove blocks last - n .. last for the smallest good n
        if _satisfies(layer, axes, _drop(exit_rf, found[first].rf_in), t):
            while low < high:
                middle = (low + high) // 2
                if _satisfies(layer, axes, _drop(exit_rf, found[last - middle].rf_in), t):
                    high = middle
                else:
                    low = middle + 1
            chosen = low
        else:
            chosen = None
        if chosen is not None:
            fix = _removal(layer.name, [found[last - n] for n in range(chosen + 1)])
    if fix is None and found[here].removable:
        fix = _removal(layer.name, [found[here]])
    alternatives = _c_alternatives(report, layer, axes, t, verify) if verify is not None else []
    sentence = None
    if fix is None and alternatives:
        fix, alternatives = alternatives[0], alternatives[1:]
    if fix is None and found[here].feature_only and found[here].convs:
        last_resort = _removal(layer.name, [found[here]])  # it changes the jump (or channels): check it
        if _analyses(report, last_resort):
            fix = last_resort
    if fix is not None:
        same_stage = fix["action"] != REMOVE or stats[fix["nodes"][0]].jump_in == layer.jump_in
        sentence = _describe(fix, layer.name, "the stage" if same_stage else "the stage before")
    else:
        sentence = (
            f"No safe edit: no block before {layer.name!r} can be removed and no downsampling or kernel change "
            "restores it; shorten the stages before it by hand."
        )
    others = "".join(f" Or: {_describe(alt, layer.name)}" for alt in alternatives)
    return replace(
        violation, fix=fix, alternatives=tuple(alternatives), message=f"{violation.message} Fix: {sentence}{others}"
    )


def _drop(exit_rf: Pair, entry_rf: Pair) -> Pair:
    return exit_rf[0] - entry_rf[0], exit_rf[1] - entry_rf[1]


def _analyses(report: ValidationReport, fix: dict[str, Any]) -> bool:
    """Whether the architecture with `fix` applied can still be analysed (no misaligned or vanished map)."""
    try:
        analyse_checked(apply_fix(report.analysis.nodes, fix), report.analysis.image_size, report.analysis.in_channels)
    except SolverError:
        return False
    return True


def _removal(stage_end: str, removed: list[_Block]) -> dict[str, Any]:
    """The removal fix of `removed` (given nearest-first), its nodes in network order."""
    names = [name for block in removed[::-1] for name in block.names]
    return {
        "action": REMOVE,
        "stage_end": stage_end,
        "convolutions": sum(len(block.convs) for block in removed),
        "nodes": names,
    }


def _c_alternatives(
    report: ValidationReport, layer: LayerStats, axes: tuple[int, ...], t: Fraction, base: Walk
) -> list[dict[str, Any]]:
    """Downsampling before `layer`, then the smallest larger kernel: each kept only when re-analysis shows
    that `layer` then has c >= t on every constrained axis (the edited network walked from `base`, the walk
    of the unedited one: the same verdict and errors as `analyse_checked` of it)."""
    nodes = report.analysis.nodes
    names = {node.name for node in nodes}
    pool_name = f"{layer.name}.pool"
    while pool_name in names:
        pool_name += "_"
    candidates = [
        {
            "action": INSERT,
            "before": layer.name,
            "insert": {"type": "maxpool", "kernel_size": 2, "stride": 2, "name": pool_name},
        }
    ]
    kernel = list(layer.kernel_size)
    for axis in axes:
        kernel[axis] = _smallest_kernel(layer, axis, t) or kernel[axis]
    if kernel != list(layer.kernel_size):
        candidates.append({"action": CHANGE, "layer": layer.name, "set": {"kernel_size": kernel}})
    kept = []
    for candidate in candidates:
        try:
            edited = apply_fix(nodes, candidate)
            after = walk_checked(edited, report.analysis.image_size, report.analysis.in_channels, base)[layer.name][2]
        except SolverError:
            continue
        bound = binding_axis(after, report.include_pointwise)
        if bound is None or after.c_value[bound] >= t:  # type: ignore[index]
            kept.append(candidate)
    return kept


def _smallest_kernel(layer: LayerStats, axis: int, t: Fraction) -> int | None:
    """Smallest k > current with ke j / (r_in + (ke - 1) j) >= t on `axis` (ke = d (k - 1) + 1)."""
    j = layer.jump_in[axis]
    d = layer.dilation[axis]
    r_in = layer.receptive_field[axis] - (layer.kernel_effective[axis] - 1) * j
    for k in range(layer.kernel_size[axis] + 1, MAX_KERNEL_SIZE + 1):
        ke = ar.effective_kernel(k, d)
        if Fraction(ke * j, r_in + (ke - 1) * j) >= t:
            return k
    return None


def _fix_receptive_field(
    report: ValidationReport, violation: Violation, stats: dict[str, LayerStats], found: list[_Block]
) -> Violation:
    """Remove the fewest trailing conv blocks of the feature level that bring every axis within its limit."""
    limits = report.receptive_field_limit
    conv_blocks = [i for i, block in enumerate(found) if block.convs]
    # before[i]: the largest receptive field (h, w) of the feature convs in blocks 0 .. i - 1
    before: list[Pair | None] = [None]
    for block in found:
        top = before[-1]
        for name in block.convs:
            rf = stats[name].receptive_field
            top = rf if top is None else (max(top[0], rf[0]), max(top[1], rf[1]))
        before.append(top)
    fix = None
    removed: list[_Block] = []
    for count in range(1, len(conv_blocks) + 1):
        block = found[conv_blocks[-count]]
        if not block.feature_only:
            break
        removed.append(block)
        top = before[conv_blocks[-count]]
        if top is None:
            break
        if top[0] <= limits[0] and top[1] <= limits[1]:
            fix = _removal(violation.layer, removed)
            break
    if fix is not None:
        sentence = _describe(fix, violation.layer, "the feature level") + ", or analyse a larger image."
    else:
        sentence = "No safe edit: removing trailing blocks cannot bring the receptive field within the image."
    return replace(violation, fix=fix, message=f"{violation.message} Fix: {sentence}")


def _describe(fix: dict[str, Any], layer: str, scope: str = "the stage") -> str:
    """The fix in words, counted in layers (convolutions), never in pixels."""
    if fix["action"] == REMOVE:
        count = fix["convolutions"]
        noun = "convolution" if count == 1 else "convolutions"
        shown = ", ".join(repr(name) for name in fix["nodes"][:6]) + (", ..." if len(fix["nodes"]) > 6 else "")
        if scope == "the stage":
            return f"remove {count} {noun} from the stage that ends at {fix['stage_end']!r} (nodes {shown})"
        if scope == "the stage before":
            return (
                f"remove {count} {noun} from the end of the stage before {fix['stage_end']!r}, whose receptive "
                f"field it inherits (nodes {shown})"
            )
        last = "the last convolution" if count == 1 else f"the last {count} {noun}"
        return f"remove {last} of the feature level, up to {fix['stage_end']!r} (nodes {shown})"
    if fix["action"] == INSERT:
        return f"insert a 2x2 stride-2 max pool before {fix['before']!r}"
    kernel = fix["set"]["kernel_size"]
    return f"set the kernel of {fix['layer']!r} to {kernel[0]}x{kernel[1]}"


def apply_fix(nodes: tuple[Layer, ...], fix: dict[str, Any]) -> tuple[Layer, ...]:
    """`nodes` with one fix applied. A removed node's consumers read what fed it (its first input, followed
    through removed nodes), which is the block's input for a single-entry block."""
    action = fix.get("action")
    if action == REMOVE:
        gone = set(fix["nodes"])
        first_input = {node.name: (node.inputs or (INPUT,))[0] for node in nodes}

        def resolve(name: str) -> str:
            while name in gone:
                name = first_input[name]
            return name

        kept = []
        for node in nodes:
            if node.name in gone:
                continue
            inputs = tuple(resolve(source) for source in node.inputs or ())
            kept.append(replace(node, inputs=inputs) if inputs != node.inputs else node)
        return tuple(kept)
    if action == INSERT:
        spec = fix["insert"]
        result = []
        for node in nodes:
            if node.name == fix["before"]:
                pool = Layer(
                    kind=spec["type"], kernel_size=spec["kernel_size"], stride=spec["stride"], name=spec["name"],
                    inputs=node.inputs, level=node.level,
                )  # fmt: skip
                result.append(pool)
                node = replace(node, inputs=(_name(pool),))
            result.append(node)
        return tuple(result)
    if action == CHANGE:
        values: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in fix["set"].items()
        }
        return tuple(replace(node, **values) if node.name == fix["layer"] else node for node in nodes)
    raise SolverError("fix.action", f"unknown fix {action!r}")


def repair(report: ValidationReport) -> Repair:
    """Apply one violation's fix (the receptive field's first, then the c-values' in order), re-validate, and
    repeat until valid or no violation has a safe fix, at most `MAX_EDITS` times: the edits in order, and
    the violations left with why."""
    raw = _named(replace(report, violations=_plain(report.violations)))
    current = attach_fixes(raw, alternatives=False)
    edits: list[dict[str, Any]] = []
    limit = min(len(report.analysis.nodes) + 8, MAX_EDITS)
    stop_reason = None
    while not current.valid and len(edits) < limit:
        # the receptive-field fix first: it removes trailing blocks only (no new violation), often the very
        # layers whose c-values are too small; then the c-value fixes in network order
        fixable = [v for v in current.violations if v.fix is not None]
        chosen = next((v for v in fixable if v.constraint != C_VALUE), fixable[0] if fixable else None)
        if chosen is None:
            break
        try:
            nodes = apply_fix(current.analysis.nodes, chosen.fix)  # type: ignore[arg-type]
            analysis = analyse_checked(nodes, current.analysis.image_size, current.analysis.in_channels)
        except SolverError as error:
            stop_reason = f"its fix would make the architecture invalid ({error.field}: {error.reason})"
            break
        edits.append(chosen.fix)  # type: ignore[arg-type]
        raw = check_constraints(analysis, current.min_c_value, current.include_pointwise, current.rf_side)  # type: ignore[arg-type]
        current = attach_fixes(raw, alternatives=False)
    current = attach_fixes(raw)
    unresolved = tuple(
        (v, stop_reason or ("no safe edit" if v.fix is None else "the edit limit was reached"))
        for v in current.violations
    )
    return Repair(report=current, edits=tuple(edits), unresolved=unresolved)


def _plain(violations: tuple[Violation, ...]) -> tuple[Violation, ...]:
    """Violations as `check_constraints` made them (a report given with fixes attached gets them anew)."""
    return tuple(replace(v, message=v.message.split(" Fix: ")[0], fix=None, alternatives=()) for v in violations)


__all__ = ["CHANGE", "INSERT", "REMOVE", "Repair", "apply_fix", "attach_fixes", "blocks", "repair"]
