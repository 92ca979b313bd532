"""Fixes and repair (docs/geometry.md): every preset at 224 and 96 repairs to a valid network, every fix
applied alone removes its violation, Hypothesis-drawn invalid chains repair to valid ones, and the hints
count layers, not pixels."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnplan.solver import Layer, VanishingFeatureMapError, preset, preset_names, validate
from cnnplan.solver.repair import apply_fix, repair

HAND_WRITTEN = [name for name in preset_names() if "." not in name]  # chains and residual stages
ZOO = [name for name in preset_names() if "." in name]  # tv.*, timm.*: gates, dense and inverted blocks too
PRESET_SIZES = [(name, size) for name in HAND_WRITTEN for size in (224, 96)]


def _report(name: str, size: int):
    try:
        return validate(preset(name), size)
    except VanishingFeatureMapError:
        # alexnet_v2's fc6 is a 5x5 VALID conv: at 96 its input map is 1x1. That is an input error (422),
        # not a constraint violation, so there is nothing to repair.
        assert (name, size) == ("alexnet_v2", 96)
        pytest.skip("alexnet_v2 cannot be analysed at 96 (fc6 5x5 VALID on a 1x1 map)")


@pytest.mark.parametrize(("name", "size"), PRESET_SIZES)
def test_every_preset_repairs_to_a_valid_network(name, size) -> None:
    report = _report(name, size)
    repaired = repair(report)
    assert repaired.report.valid and not repaired.unresolved
    assert bool(repaired.edits) == (not report.valid)
    again = validate(repaired.nodes, size)  # the repaired layers, validated from scratch
    assert again.valid and again.depth == repaired.report.depth
    assert again.analysis.params == repaired.report.analysis.params


@pytest.mark.parametrize("name", ZOO)
def test_a_zoo_preset_repairs_or_says_why_per_violation(name) -> None:
    """Beyond plain chains and residual stages repair need not end valid, but it never guesses: what it leaves
    unresolved names the violation and the reason ("no safe edit" exactly when it carries no fix)."""
    report = validate(preset(name), 224)
    repaired = repair(report)
    assert repaired.report.valid == (not repaired.unresolved)
    for violation, reason in repaired.unresolved:
        assert reason and (reason == "no safe edit") == (violation.fix is None), (violation.layer, reason)


@pytest.mark.parametrize(("name", "size"), PRESET_SIZES)
def test_every_fix_applied_alone_removes_its_violation(name, size) -> None:
    report = _report(name, size)
    for violation in report.violations:
        for fix in (violation.fix, *violation.alternatives):
            assert fix is not None, violation.message
            after = validate(apply_fix(report.analysis.nodes, fix), size)
            names = {layer.name for layer in after.analysis.layers}
            left = [(v.constraint, v.layer) for v in after.violations]
            if violation.constraint == "receptive_field":
                assert "receptive_field" not in [constraint for constraint, _ in left], fix
            else:
                assert violation.layer not in names or ("c_value", violation.layer) not in left, fix


def test_the_resnet50_hint_counts_layers_not_pixels() -> None:
    """r = 427 > 224. The old hint said "remove at least 203 layers" (427 - 224 pixels); ResNet-50 has 53
    convolutions. The fix removes the fewest trailing blocks that bring r within 224: layer4 (3 blocks, 9
    convolutions + the 1x1 projection) and layer3.5, layer3.4 (6 convolutions): 16 convolutions, r 203."""
    report = validate(preset("resnet50"), 224)
    (violation,) = [v for v in report.violations if v.constraint == "receptive_field"]
    assert (violation.value, violation.limit) == (427, 224)
    assert violation.fix["convolutions"] == 16
    assert "remove the last 16 convolutions" in violation.message and "203" not in violation.message
    removed = validate(apply_fix(report.analysis.nodes, violation.fix), 224)
    assert removed.top_receptive_field == (203, 203) and removed.depth == 53 - 16


def test_a_stage_that_is_too_long_loses_exactly_the_layers_the_arithmetic_says() -> None:
    """Ten 3x3 convs at jump 1 with t = 1/6: conv n has r = 2n + 1, c = 3 / (2n + 1) < 1/6 from n = 9 on.
    The fix for conv8 (index 8, r 19) removes 1 earlier conv (r 17 <= 18); repair ends with 8 convs."""
    layers = [Layer(kind="conv", kernel_size=3, padding=1) for _ in range(10)]
    report = validate(layers, 64)
    assert [v.layer for v in report.violations] == ["conv8", "conv9"]
    first = report.violations[0]
    assert first.fix == {"action": "remove_layers", "stage_end": "conv8", "convolutions": 1, "nodes": ["conv7"]}
    assert "remove 1 convolution from the stage that ends at 'conv8'" in first.message
    repaired = repair(report)
    assert repaired.report.valid and repaired.report.depth == 8 and len(repaired.edits) == 2


@st.composite
def invalid_chains(draw):
    """Chains of 3x3 / 5x5 / 1x7 / 7x1 'same' convs (+ReLU) with 2x2/2 pools and stride-2 convs, under a t
    that makes long stages fail."""
    layers = []
    for _ in range(draw(st.integers(3, 24))):
        choice = draw(st.sampled_from(["k3", "k3", "k5", "1x7", "7x1", "pool", "s2"]))
        if choice == "pool":
            layers.append(Layer(kind="maxpool", kernel_size=2, stride=2))
            continue
        kernel = {"k3": 3, "k5": 5, "1x7": (1, 7), "7x1": (7, 1), "s2": 3}[choice]
        layers.append(Layer(kind="conv", kernel_size=kernel, stride=2 if choice == "s2" else 1, padding="same"))
        layers.append(Layer(kind="relu"))
    return layers


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(layers=invalid_chains(), side=st.integers(16, 128), t=st.sampled_from(["1/6", "1/4", "1/3"]))
def test_drawn_invalid_chains_repair_to_valid_chains(layers, side, t) -> None:
    try:
        report = validate(layers, side, t)
    except VanishingFeatureMapError:
        return
    repaired = repair(report)
    first_conv = next((s for s in report.analysis.layers if s.kind == "conv"), None)
    if first_conv is not None and max(first_conv.receptive_field) > side:
        # pools before the first conv already make it see more than the image: removing convolutions
        # cannot help, and the answer says so instead of guessing
        (left,) = repaired.unresolved
        assert left[0].constraint == "receptive_field" and left[0].fix is None and left[1] == "no safe edit"
        assert "No safe edit" in left[0].message
        return
    assert repaired.report.valid, [v.message for v in repaired.report.violations]
    assert validate(repaired.nodes, side, t).valid
    for violation in report.violations:  # each of the original fixes, alone, removes its own violation
        after = validate(apply_fix(report.analysis.nodes, violation.fix), side, t)
        left = {(v.constraint, v.layer) for v in after.violations}
        if violation.constraint == "c_value":
            assert (violation.constraint, violation.layer) not in left
        else:
            assert not any(constraint == "receptive_field" for constraint, _ in left)


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_a_walk_that_reuses_the_unedited_network_is_the_full_walk(name) -> None:
    """`walk_checked` with `reuse` (what the alternatives' checks run) gives every node the stats, and every
    edit the error, of a walk from scratch: for every fix and alternative edit of every violation at t = 1/2."""
    from cnnplan.solver.analysis import analyse_checked, walk_checked
    from cnnplan.solver.errors import SolverError
    from cnnplan.solver.layers import as_graph

    nodes = as_graph(preset(name))
    size = (224, 224)
    base = walk_checked(nodes, size, 3)
    report = validate(preset(name), size, min_c_value="1/2")
    edits = 0
    for violation in report.violations:
        for fix in (violation.fix, *violation.alternatives):
            if fix is None or fix.get("action") == "remove":
                continue
            edited = apply_fix(nodes, fix)
            try:
                expected = {layer.name: layer for layer in analyse_checked(edited, size, 3).layers}
            except SolverError as error:
                with pytest.raises(type(error)):
                    walk_checked(edited, size, 3, base)
                continue
            walked = walk_checked(edited, size, 3, base)
            assert {name: entry[2] for name, entry in walked.items()} == expected
            edits += 1
    assert edits > 0
