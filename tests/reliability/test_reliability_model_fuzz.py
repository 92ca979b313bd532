"""Hypothesis against the request models and the solver, without HTTP: random (often nonsense) layer
lists, graphs and plan inputs end in a result or a typed error naming a field, never anything else.

Graphs get an independent oracle: a structural defect (self-loop, cycle, dangling or reserved name,
duplicate, wrong input count) must raise GraphStructureError, and a sound structure must not.
HTTP-level fuzzing of the same bodies is in tests/service/test_service_fuzz.py; the contract fuzz
(schemathesis) is in test_reliability_contract_fuzz.py.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cnnplan.service.convert import plan_body, report_dict, validate_body
from cnnplan.service.problems import ProblemError
from cnnplan.service.schemas import PlanRequestModel, PlanResponse, ValidateRequestModel, ValidateResponse
from cnnplan.solver import PlanRequest, analyse, make_plan, validate
from cnnplan.solver.errors import GraphStructureError, SolverError
from cnnplan.solver.limits import MAX_JUMP

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

huge_ints = st.integers(-(10**30), 10**30) | st.sampled_from([0, -1, 2**63, 2**64 + 1, 10**300, -(10**300)])
nonsense = st.recursive(
    st.none() | st.booleans() | huge_ints | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
small_ints = st.integers(-2, 40)
KINDS = [
    "conv",
    "maxpool",
    "avgpool",
    "global_maxpool",
    "global_avgpool",
    "linear",
    "add",
    "concat",
    "relu",
    "bn",
    "dropout",
]

layer_dicts = st.fixed_dictionaries(
    {"type": st.sampled_from(KINDS) | nonsense},
    optional={
        "kernel_size": small_ints | huge_ints | nonsense,
        "stride": small_ints | huge_ints | st.none() | nonsense,
        "dilation": small_ints | nonsense,
        "padding": small_ints | st.sampled_from(["same", "valid", "full", ""]) | huge_ints | nonsense,
        "groups": st.integers(0, 8) | nonsense,
        "out_channels": st.integers(-1, 70) | huge_ints | nonsense,
        "level": st.sampled_from(["feature", "classifier", "top"]) | nonsense,
        "rate": st.floats(-1, 2) | nonsense,
        "bias": st.booleans() | nonsense,
        "name": st.text(min_size=0, max_size=6) | nonsense,
        "unknown_field": nonsense,
    },
)
image_sizes = st.integers(-2, 600) | st.lists(st.integers(-2, 600), max_size=3) | huge_ints | nonsense


def assert_names_a_field(error: SolverError) -> None:
    assert isinstance(error.field, str) and error.field, error
    assert isinstance(error.reason, str) and error.reason, error
    assert len(str(error)) < 2000, "an error message that echoes a huge input"


def check_analysis(report) -> None:
    """What any successful analysis must satisfy, whatever the input was."""
    for layer in report.analysis.layers:
        assert min(layer.output_size) >= 1 and min(layer.receptive_field) >= 1, layer
        assert all(1 <= jump <= MAX_JUMP for jump in layer.jump), layer
        if layer.c_value is not None:
            assert all(0 < c <= 1 for c in layer.c_value), layer


@FUZZ
@given(layers=st.lists(layer_dicts, max_size=8) | nonsense, image_size=image_sizes, min_c_value=nonsense)
def test_the_solver_answers_any_layer_list_or_names_the_bad_field(layers, image_size, min_c_value):
    try:
        report = validate(layers, image_size, min_c_value=min_c_value)
    except SolverError as error:
        assert_names_a_field(error)
    else:
        check_analysis(report)


@FUZZ
@given(
    image_size=image_sizes,
    kernel_size=st.integers(-1, 40) | nonsense,
    min_c_value=st.sampled_from(["1/6", "1/64", "1/65", "2/3", "1", "0", "-1/6", "1/0", "x"]) | nonsense,
    model=st.sampled_from(["exact", "simplified", "other"]) | nonsense,
    downsample=st.sampled_from(["maxpool", "avgpool", "conv", "none"]) | nonsense,
    in_channels=st.integers(-1, 2_000_000) | nonsense,
    num_classes=st.integers(-1, 2_000_000) | nonsense,
    dropout=st.floats(-1, 2) | nonsense,
)
def test_the_planner_plans_or_names_the_bad_field(
    image_size, kernel_size, min_c_value, model, downsample, in_channels, num_classes, dropout
):
    request = PlanRequest(image_size=image_size, kernel_size=kernel_size, min_c_value=min_c_value, model=model,
                          downsample=downsample, in_channels=in_channels, num_classes=num_classes, dropout=dropout)  # fmt: skip
    try:
        plan = make_plan(request)
    except SolverError as error:
        assert_names_a_field(error)
    else:
        assert plan.report.valid and plan.depth == sum(plan.stages)


# -- graphs against an independent oracle ---------------------------------------------------------

NAMES = ["a", "b", "c", "d", "input", "zz"]
graph_nodes = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["relu", "conv", "add", "concat"]), "name": st.sampled_from(NAMES[:5])},
        optional={"inputs": st.lists(st.sampled_from(NAMES), max_size=4)},
    ),
    min_size=1,
    max_size=6,
)


def structural_defect(nodes: list[dict[str, Any]]) -> str | None:
    """THEORY-independent graph rules: names unique and not 'input'; a merge takes >= 2 distinct inputs,
    any other node exactly 1; every input names a node or 'input', not itself; no cycle."""
    names = [node["name"] for node in nodes]
    if "input" in names:
        return "reserved name"
    if len(set(names)) != len(names):
        return "duplicate name"
    edges: dict[str, list[str]] = {}
    previous = "input"
    for node in nodes:
        inputs = node.get("inputs", [previous])
        if node["type"] in ("add", "concat"):
            if len(inputs) < 2 or len(set(inputs)) != len(inputs):
                return "merge arity"
        elif len(inputs) != 1:
            return "arity"
        edges[node["name"]] = inputs
        previous = node["name"]
    for name, inputs in edges.items():
        if any(source == name for source in inputs):
            return "self-loop"
        if any(source not in edges and source != "input" for source in inputs):
            return "dangling"
    state: dict[str, int] = {}

    def on_cycle(name: str) -> bool:
        if name == "input" or state.get(name) == 2:
            return False
        if state.get(name) == 1:
            return True
        state[name] = 1
        found = any(on_cycle(source) for source in edges[name])
        state[name] = 2
        return found

    return "cycle" if any(on_cycle(name) for name in edges) else None


@settings(max_examples=300, deadline=None, database=None)
@given(nodes=graph_nodes)
def test_graph_defects_are_exactly_the_graph_errors(nodes):
    defect = structural_defect(nodes)
    try:
        analysis = analyse(nodes, 16)
    except GraphStructureError as error:
        assert defect is not None, f"refused a sound graph: {error}"
        assert re.fullmatch(r"layers\[\d+\](\.(name|inputs)(\[\d+\])?)?", error.field), error.field
    except SolverError as error:  # e.g. an add of different channel counts: the structure itself was sound
        assert defect is None, f"{defect} reported as {type(error).__name__}: {error}"
        assert_names_a_field(error)
    else:
        assert defect is None, f"accepted a graph with a {defect}"
        assert [layer.name for layer in analysis.layers] == [node["name"] for node in nodes]


def test_the_oracle_sees_each_defect():
    conv = {"type": "conv", "name": "a"}
    assert structural_defect([{**conv, "inputs": ["a"]}]) == "self-loop"
    assert structural_defect([{**conv, "inputs": ["b"]}, {"type": "relu", "name": "b", "inputs": ["a"]}]) == "cycle"
    assert structural_defect([{**conv, "inputs": ["zz"]}]) == "dangling"
    assert structural_defect([conv, {"type": "add", "name": "b", "inputs": ["a"]}]) == "merge arity"
    assert structural_defect([conv, {"type": "add", "name": "b", "inputs": ["a", "input"]}]) is None


# -- the request models and the service converters ------------------------------------------------

validate_bodies = st.fixed_dictionaries(
    {},
    optional={
        "image_size": image_sizes,
        "layers": st.lists(layer_dicts, max_size=6) | nonsense,
        "graph": st.fixed_dictionaries({"nodes": graph_nodes}) | nonsense,
        "preset": st.sampled_from(["vgg16", "resnet18", "mobilenet_v1", "nope"]) | nonsense,
        "min_c_value": nonsense,
        "in_channels": st.integers(-1, 70) | nonsense,
        "include_pointwise": st.booleans() | nonsense,
        "rf_side": st.sampled_from(["min", "max", "mid"]),
    },
)
plan_bodies = st.fixed_dictionaries(
    {"image_size": image_sizes},
    optional={
        "kernel_size": st.integers(1, 35) | nonsense,
        "min_c_value": st.sampled_from(["1/6", "1/3", "1/64", "0.2", "1/65"]) | nonsense,
        "downsample": st.sampled_from(["maxpool", "avgpool", "conv"]) | nonsense,
        "widths": st.fixed_dictionaries({}, optional={"base": st.integers(-1, 600), "multiplier": st.integers(-1, 20)})
        | nonsense,
        "dropout": st.floats(-1, 2) | nonsense,
    },
)


@FUZZ
@given(body=validate_bodies | nonsense)
def test_validate_bodies_give_a_conforming_report_or_a_client_error(body):
    try:
        report = validate_body(ValidateRequestModel.model_validate(body))
    except (ValidationError, SolverError, ProblemError) as error:
        if isinstance(error, ProblemError):
            assert 400 <= error.status < 500 and error.field
        if isinstance(error, SolverError):
            assert_names_a_field(error)
    else:
        check_analysis(report)
        ValidateResponse.model_validate(report_dict(report))


@FUZZ
@given(body=plan_bodies | nonsense)
def test_plan_bodies_give_a_conforming_plan_or_a_client_error(body):
    try:
        answer: dict[str, Any] = plan_body(PlanRequestModel.model_validate(body))
    except (ValidationError, SolverError) as error:
        if isinstance(error, SolverError):
            assert_names_a_field(error)
    else:
        PlanResponse.model_validate(answer)
        assert answer["depth"] == sum(answer["stages"])
