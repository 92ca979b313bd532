"""POST/GET /plan: the worked examples of docs/theory.md, exact c-values, echoed inputs and every documented error."""

from __future__ import annotations

from fractions import Fraction

import pytest
from service_helpers import assert_problem

pytestmark = pytest.mark.anyio


async def test_worked_example_18_is_one_stage_of_8(client):
    response = await client.post("/plan", json={"image_size": 18})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    plan = response.json()
    assert plan["stages"] == [8]
    assert plan["depth"] == 8
    assert plan["top_receptive_field"] == [17, 17]


async def test_worked_example_36_prefers_larger_receptive_field(client):
    plan = (await client.post("/plan", json={"image_size": 36, "kernel_size": 3, "min_c_value": "1/6"})).json()
    assert plan["stages"] == [7, 5]
    assert plan["depth"] == 12
    assert plan["top_receptive_field"] == [36, 36]


async def test_relaxed_optimum_at_z_equal_2_pow_n_minus_1_k_over_t(client):
    # z = 2^(3-1) * 3 / (1/6) = 72: a_1 = 1/t = 6, a_2 = a_3 = 1/(2t) = 3 (docs/theory.md#simplified-model)
    relaxed = (await client.post("/plan", json={"image_size": 72})).json()["relaxed"]
    assert relaxed["stages_exact"] == ["6", "3", "3"]
    assert relaxed["stages"] == [6.0, 3.0, 3.0]
    assert relaxed["depth_exact"] == "12"


async def test_layers_carry_exact_c_values_and_levels(client):
    plan = (await client.post("/plan", json={"image_size": 18})).json()
    layers = {layer["name"]: layer for layer in plan["layers"]}
    second = layers["s1.conv2"]
    assert (second["receptive_field"], second["jump"], second["effective_padding"]) == ([5, 5], [1, 1], [2, 2])
    assert (second["real_filter_size"], second["c_value_exact"], second["c_value"]) == (
        [3, 3], ["3/5", "3/5"], [0.6, 0.6],
    )  # fmt: skip
    assert layers["s1.conv8"]["c_value_exact"] == ["3/17", "3/17"] and layers["s1.conv8"]["c_axis"] == "both"
    assert layers["s1.relu1"]["c_value"] is None and layers["s1.relu1"]["c_value_exact"] is None
    assert {layer["level"] for layer in plan["layers"] if layer["name"].startswith("cls.")} == {"classifier"}
    assert plan["layers"][-1]["type"] == "linear" and plan["layers"][-1]["out_channels"] == 1000
    assert plan["params"] == sum(layer["params"] for layer in plan["layers"])
    assert plan["flops"] == sum(layer["flops"] for layer in plan["layers"])


@pytest.mark.parametrize("downsample", ["maxpool", "avgpool", "conv"])
@pytest.mark.parametrize("min_c_value", ["1/4", 0.125, "1/6"])
async def test_every_feature_conv_meets_t_exactly(client, downsample, min_c_value):
    body = {"image_size": [300, 200], "kernel_size": 5, "min_c_value": min_c_value, "downsample": downsample}
    plan = (await client.post("/plan", json=body)).json()
    t = Fraction(plan["inputs"]["min_c_value_exact"])
    assert t == Fraction(str(min_c_value))
    feature_convs = [layer for layer in plan["layers"] if layer["type"] == "conv" and layer["level"] == "feature"]
    assert len(feature_convs) == plan["depth"] == sum(plan["stages"])
    assert all(Fraction(c) >= t for layer in feature_convs for c in layer["c_value_exact"])
    assert max(plan["top_receptive_field"]) <= 200  # the smaller side
    assert plan["inputs"]["image_size"] == [300, 200] and plan["inputs"]["downsample"] == downsample


async def test_inputs_are_echoed_with_defaults(client):
    inputs = (await client.post("/plan", json={"image_size": 64, "widths": {"base": 8}})).json()["inputs"]
    assert inputs == {
        "image_size": [64, 64],
        "kernel_size": 3,
        "min_c_value": 0.166667,
        "min_c_value_exact": "1/6",
        "model": "exact",
        "downsample": "maxpool",
        "in_channels": 3,
        "num_classes": 1000,
        "dropout": 0.5,
        "widths": {"base": 8, "multiplier": 2, "max_width": 512},
        "batch_norm": True,
        "rf_side": "min",
        "block": "plain",
        "stem": "none",
        "expansion": None,
        "max_flops": None,
        "max_params": None,
    }


async def test_get_plan_matches_post(client):
    query = await client.get("/plan", params={"image_size": "36x40", "kernel_size": 3, "downsample": "conv"})
    body = await client.post("/plan", json={"image_size": [36, 40], "kernel_size": 3, "downsample": "conv"})
    assert query.status_code == body.status_code == 200
    assert query.json() == body.json()
    assert (await client.get("/plan?image_size=18")).json()["stages"] == [8]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"image_size": 2**20 + 1}, "image_size", "1048576"),
        ({"image_size": [224, 2**21]}, "image_size[1]", "1048576"),
        ({"image_size": 0}, "image_size", "at least 1"),
        ({"image_size": True}, "image_size", "integer"),
        ({}, "image_size", "required"),
        ({"image_size": 224, "kernel_size": 4}, "kernel_size", "odd"),
        ({"image_size": 224, "kernel_size": "3"}, "kernel_size", "integer"),
        ({"image_size": 224, "min_c_value": "x/y"}, "min_c_value", "p/q"),
        ({"image_size": 224, "min_c_value": 2}, "min_c_value", "0 < t <= 1"),
        ({"image_size": 224, "min_c_value": "1/100"}, "min_c_value", "1/64"),
        ({"image_size": 224, "model": "approx"}, "model", "exact"),
        ({"image_size": 224, "downsample": "stride"}, "downsample", "maxpool"),
        ({"image_size": 224, "dropout": 1.0}, "dropout", "less than 1"),
        ({"image_size": 224, "widths": {"base": 64, "max_width": 32}}, "widths.max_width", "at least base"),
        ({"image_size": 224, "imagesize": 3}, "imagesize", "not an accepted field"),
        ({"image_size": 2}, "image_size", "no network"),
    ],
)
async def test_bad_plan_inputs_are_422_problems_naming_the_field(client, body, field, words):
    problem = assert_problem(await client.post("/plan", json=body), 422, field)
    assert words in problem["reason"], problem


@pytest.mark.parametrize(
    ("query", "field"),
    [("image_size=224x", "image_size"), ("image_size=abc", "image_size"), ("kernel_size=3", "image_size"),
     ("image_size=224&kernel_size=three", "kernel_size"), ("image_size=2000000", "image_size")],
)  # fmt: skip
async def test_bad_plan_query_is_422(client, query, field):
    assert_problem(await client.get(f"/plan?{query}"), 422, field)


async def test_malformed_json_names_the_body(client):
    response = await client.post("/plan", content=b'{"image_size": 224,', headers={"content-type": "application/json"})
    problem = assert_problem(response, 422, "body")
    assert "JSON" in problem["reason"]


async def test_non_object_body_is_422(client):
    assert_problem(await client.post("/plan", json=[224]), 422)
