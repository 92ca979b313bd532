"""The stage-wise closed form of the /plan answer (`cnnplan.service.plan_answer`) against the generic path
(`plan_dict(make_plan(...))`: build the layers, walk them with the generic analysis, check the constraints),
value for value on a grid of plans; the summary view against the full answer and the generic report."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnplan.service.api._responses import render_json
from cnnplan.service.convert import plan_dict, report_summary_dict
from cnnplan.service.plan_answer import plan_answer, plan_answer_json, plan_summary
from cnnplan.solver import PlanRequest, WidthRule, make_plan
from cnnplan.solver.errors import SolverError

SIZES = (9, 18, 36, 57, 100, 224, (224, 160), (97, 513), 1024, 3001)
GRID = list(
    itertools.product(
        SIZES, (3, 5, 7), ("1/4", "1/6", "1/8"), ("exact", "simplified"), ("maxpool", "avgpool", "conv"), (True, False)
    )
)


def _request(size, kernel, t, model, downsample, batch_norm, **extra) -> PlanRequest:
    return PlanRequest(
        image_size=size, kernel_size=kernel, min_c_value=t, model=model, downsample=downsample,
        batch_norm=batch_norm, **extra,
    )  # fmt: skip


def _generic(request: PlanRequest):
    try:
        return make_plan(request), None
    except SolverError as error:
        return None, error


@pytest.mark.parametrize("rf_side", ["min", "max"])
def test_the_closed_form_equals_the_generic_analysis_on_a_grid_of_plans(rf_side):
    compared = 0
    for case in GRID:
        request = _request(*case, rf_side=rf_side)
        plan, error = _generic(request)
        if error is not None:  # infeasible (tiny images, large kernels): the same error, same field
            with pytest.raises(type(error)) as raised:
                plan_answer(request)
            assert raised.value.field == error.field
            continue
        assert plan_answer(request) == plan_dict(plan), case
        assert plan_answer_json(request) == render_json(plan_dict(plan)), case  # byte for byte
        compared += 1
    assert compared > 0.8 * len(GRID)


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(8, 5000),
    width=st.integers(8, 5000),
    kernel=st.sampled_from([3, 5, 7, 9]),
    t=st.sampled_from(["1/3", "1/4", "1/6", "0.1", "1/12"]),
    model=st.sampled_from(["exact", "simplified"]),
    downsample=st.sampled_from(["maxpool", "avgpool", "conv"]),
    batch_norm=st.booleans(),
    rf_side=st.sampled_from(["min", "max"]),
    in_channels=st.integers(1, 16),
    num_classes=st.integers(1, 2000),
    dropout=st.floats(0, 0.9),
    base=st.integers(1, 96),
    multiplier=st.integers(1, 3),
    cap=st.integers(0, 600),
)
def test_the_closed_form_equals_the_generic_analysis_on_random_requests(
    height, width, kernel, t, model, downsample, batch_norm, rf_side, in_channels, num_classes, dropout, base,
    multiplier, cap,
):  # fmt: skip
    request = _request(
        (height, width), kernel, t, model, downsample, batch_norm, rf_side=rf_side, in_channels=in_channels,
        num_classes=num_classes, dropout=dropout, widths=WidthRule(base, multiplier, base + cap),
    )  # fmt: skip
    plan, error = _generic(request)
    if error is None:
        assert plan_answer(request) == plan_dict(plan)
        assert plan_answer_json(request) == render_json(plan_dict(plan))
    else:
        with pytest.raises(type(error)):
            plan_answer(request)


SUMMARY_FIELDS = ("depth", "stages", "top_receptive_field", "depth_headroom", "params", "flops")


@pytest.mark.parametrize("rf_side", ["min", "max"])
def test_the_summary_holds_the_full_answers_values_and_the_generic_verdict(rf_side):
    """On the whole grid: the summary's violations are computed stage-wise too, so the invalid plans (the
    simplified model's stride-2 convs can break c >= t) are compared with the generic report as well."""
    invalid = 0
    for case in GRID:
        request = _request(*case, rf_side=rf_side)
        plan, error = _generic(request)
        if error is not None:
            with pytest.raises(type(error)):
                plan_summary(request)
            continue
        summary, full = plan_summary(request), plan_dict(plan)
        assert set(summary) == {*SUMMARY_FIELDS, "valid", "violations"}
        assert {name: summary[name] for name in SUMMARY_FIELDS} == {name: full[name] for name in SUMMARY_FIELDS}
        report = report_summary_dict(plan.report)
        assert summary["valid"] is report["valid"], case
        assert summary["violations"] == report["violations"], case
        invalid += not report["valid"]
    assert invalid > 20


def test_a_bad_width_rule_or_classifier_input_is_the_same_error_as_the_generic_path():
    for extra in ({"num_classes": 0}, {"dropout": 1.0}, {"in_channels": 0}, {"batch_norm": "yes"}):
        fields = {"batch_norm": True, **extra}
        request = _request(224, 3, Fraction(1, 6), "exact", "maxpool", **fields)
        _, error = _generic(request)
        assert error is not None
        with pytest.raises(type(error)) as raised:
            plan_answer(request)
        assert raised.value.field == error.field


CHAIN_GRID = list(
    itertools.product(
        ([1], [4], [3, 3], [7, 1, 5], [2] * 8, [10, 10, 10, 10]), (1, 3, 5, 7), ("maxpool", "avgpool", "conv"),
        (False, True), (5, 36, (64, 40), 224),
    )
)  # fmt: skip


@pytest.mark.parametrize("t", ["1/4", "1/6"])
def test_the_chain_summary_equals_the_generic_report_of_its_layers(t):
    from cnnplan.service.convert import report_summary_dict, summary_of_validate_body, validate_body
    from cnnplan.service.plan_answer import chain_summary
    from cnnplan.service.schemas import ValidateRequestModel

    closed_form = 0
    for stages, kernel, downsample, batch_norm, size in CHAIN_GRID:
        chain = {
            "stages": stages,
            "kernel_size": kernel,
            "downsample": downsample,
            "width": 24,
            "batch_norm": batch_norm,
        }
        body = ValidateRequestModel.model_validate({"image_size": size, "min_c_value": t, "chain": chain})
        try:
            generic = report_summary_dict(validate_body(body))
        except SolverError as error:  # a map emptied by the pools: the generic error, whichever path
            with pytest.raises(type(error)):
                summary_of_validate_body(body)
            continue
        fast = chain_summary(tuple(stages), kernel, downsample, 24, batch_norm, body.image_size, body.min_c_value,
                             3, body.rf_side)  # fmt: skip
        closed_form += fast is not None
        assert summary_of_validate_body(body) == generic, (stages, kernel, downsample, size)
        assert fast is None or fast == generic
    assert closed_form > len(CHAIN_GRID) // 2


@pytest.mark.parametrize("image_size", [None, 64, (300, 200), 8])
def test_a_preset_through_its_checked_graph_is_the_generic_analysis(image_size):
    from cnnplan.service.convert import report_dict, validate_body
    from cnnplan.service.schemas import ValidateRequestModel
    from cnnplan.solver import validate
    from cnnplan.solver.presets import preset, preset_info, preset_names

    for name in preset_names():
        size = image_size if image_size is not None else preset_info(name)["default_image_size"]
        body = ValidateRequestModel.model_validate(
            {"preset": name, **({} if image_size is None else {"image_size": size})}
        )
        try:
            generic = report_dict(validate(preset(name), size, field="preset"))
        except SolverError as error:  # a map emptied at 8x8: the same error at the same node
            with pytest.raises(type(error)) as raised:
                validate_body(body)
            assert raised.value.field == error.field
            continue
        assert report_dict(validate_body(body)) == generic, name
