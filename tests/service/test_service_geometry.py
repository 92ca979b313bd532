"""Per-axis requests and answers (docs/geometry.md): answers that post back unchanged, repair over HTTP, and the
refusal of layers the theory does not cover."""

from __future__ import annotations

import itertools

import pytest
from service_helpers import assert_problem

from cnnplan.solver import preset_names

pytestmark = pytest.mark.anyio

COMPARED = ("valid", "depth", "top_receptive_field", "receptive_field_limit", "params", "flops", "depth_headroom")


def _same_answers(first: dict, second: dict) -> None:
    """Two validate/plan answers describe the same network: the summary and every layer's statistics."""
    for key in COMPARED:
        if key in first and key in second:
            assert first[key] == second[key], key
    assert first["layers"] == second["layers"]


@pytest.mark.parametrize("name", preset_names())
async def test_every_presets_answer_posts_back_as_layers_and_as_graph_nodes(client, name):
    report = (await client.post("/validate", json={"preset": name})).json()
    if "." in name:  # a zoo preset answers the module's parameter count (docs/importers.md: it can hold
        # parameters the traced graph never uses, GoogLeNet's auxiliary heads); posted back, its layers count
        # the graph's own parameters, so the round trip compares those
        report = {**report, "params": sum(layer["params"] for layer in report["layers"])}
    for body in ({"layers": report["layers"]}, {"graph": {"nodes": report["layers"]}}):
        again = await client.post("/validate", json={"image_size": report["image_size"], **body})
        assert again.status_code == 200, again.text
        _same_answers(report, again.json())
        assert [v["message"] for v in again.json()["violations"]] == [v["message"] for v in report["violations"]]
    nodes = (await client.get(f"/presets/{name}")).json()["nodes"]
    detail = (
        await client.post("/validate", json={"image_size": report["image_size"], "graph": {"nodes": nodes}})
    ).json()
    _same_answers(report, detail)


GRID = list(itertools.product([18, 36, 64, [96, 64]], [3, 5], ["1/6", "1/4"], ["maxpool", "avgpool", "conv"]))


@pytest.mark.parametrize(("z", "k", "t", "downsample"), GRID)
async def test_a_plans_own_layers_validate_to_the_same_numbers(client, z, k, t, downsample):
    body = {"image_size": z, "kernel_size": k, "min_c_value": t, "downsample": downsample}
    response = await client.post("/plan", json=body)
    if response.status_code == 422:  # no network of the family fits (e.g. k = 5 on 18 with t = 1/4)
        assert response.json()["code"] == "infeasible_plan"
        return
    plan = response.json()
    report = await client.post("/validate", json={"image_size": z, "min_c_value": t, "layers": plan["layers"]})
    assert report.status_code == 200, report.text
    report = report.json()
    assert report["valid"] and report["depth"] == plan["depth"] and report["depth_headroom"] == 0
    assert (report["top_receptive_field"], report["params"], report["flops"]) == (
        plan["top_receptive_field"], plan["params"], plan["flops"],
    )  # fmt: skip
    assert report["layers"] == plan["layers"]


async def test_a_misspelt_field_in_an_answer_layer_is_still_a_422_naming_it(client):
    plan = (await client.post("/plan", json={"image_size": 18})).json()
    layers = plan["layers"]
    layers[3] = {**layers[3], "recepive_field": [1, 1]}
    body = assert_problem(await client.post("/validate", json={"image_size": 18, "layers": layers}), 422)
    assert any(error["field"] == "layers[3].recepive_field" for error in body["errors"] or [body])


async def test_edit_and_revalidate(client):
    """The first thing users try: take a plan, make its last 3x3 conv a 1x7, post it back."""
    plan = (await client.post("/plan", json={"image_size": 36})).json()
    layers = plan["layers"]
    index = max(i for i, layer in enumerate(layers) if layer["type"] == "conv" and layer["level"] == "feature")
    layers[index] = {**layers[index], "kernel_size": [1, 7], "padding": [[0, 0], [3, 3]]}
    report = (await client.post("/validate", json={"image_size": 36, "layers": layers})).json()
    edited = report["layers"][index]
    # the plan is (7, 5): stage 2 at jump 2 reaches r = 32 before its last conv; the 1x7 adds 6 * 2 = 12 on
    # the width only. Its height c (2/32) is not compared (kernel 1 there); the width c is 14/44 = 7/22.
    assert edited["receptive_field"] == [32, 44] and edited["c_axis"] == "width"
    assert edited["c_value_exact"] == ["1/16", "7/22"]
    assert report["top_receptive_field"] == [32, 44] and report["top_axis"] == "width"
    assert [v["constraint"] for v in report["violations"]] == ["receptive_field"]
    assert report["violations"][0]["axis"] == "width"


async def test_repair_answers_in_the_input_format(client):
    layers = [{"type": "conv", "kernel_size": 3, "padding": "same"} for _ in range(10)]
    answer = (await client.post("/validate", json={"image_size": 64, "layers": layers, "repair": True})).json()
    repaired = answer["repair"]
    assert not answer["valid"] and repaired["valid"] and repaired["unresolved"] == []
    assert "layers" in repaired and "graph" not in repaired
    assert len(repaired["layers"]) == 8 and repaired["result"]["depth"] == 8
    assert [edit["action"] for edit in repaired["edits"]] == ["remove_layers", "remove_layers"]
    again = (await client.post("/validate", json={"image_size": 64, "layers": repaired["layers"]})).json()
    assert again["valid"] and again["layers"] == repaired["result"]["layers"]
    graph = (await client.post("/validate", json={"preset": "resnet18", "image_size": 96, "repair": True})).json()
    assert "graph" in graph["repair"] and graph["repair"]["valid"]
    nodes = graph["repair"]["graph"]["nodes"]
    again = (await client.post("/validate", json={"image_size": 96, "graph": {"nodes": nodes}})).json()
    assert again["valid"] and again["depth"] == graph["repair"]["result"]["depth"]
    plain = (await client.post("/validate", json={"preset": "vgg16"})).json()
    assert plain["repair"] is None


@pytest.mark.parametrize("kind", ["upsample", "conv_transpose", "attention"])
async def test_layers_outside_the_theory_are_refused_by_name(client, kind):
    layers = [{"type": "conv", "kernel_size": 3}, {"type": kind, "name": "up1"}]
    body = assert_problem(
        await client.post("/validate", json={"image_size": 32, "layers": layers}), 422, "layers[1].type"
    )
    assert "'up1'" in body["reason"] and "downsampling CNNs only" in body["reason"]


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"type": "conv", "kernel_size": [3, 0]}, "layers[0].kernel_size"),
        ({"type": "conv", "kernel_size": [3, 3, 3]}, "layers[0].kernel_size"),
        ({"type": "conv", "kernel_size": 3, "padding": [[1, 1], [1]]}, "layers[0].padding"),
        ({"type": "conv", "kernel_size": 3, "padding": "half"}, "layers[0].padding"),
        ({"type": "conv", "kernel_size": 3, "ceil_mode": True}, "layers[0].ceil_mode"),
    ],
)
async def test_bad_per_axis_fields_are_422s_naming_them(client, layer, field):
    response = await client.post("/validate", json={"image_size": 32, "layers": [layer]})
    body = assert_problem(response, 422)
    named = [body.get("field")] + [error["field"] for error in body.get("errors") or []]
    assert any(name and name.startswith(field) for name in named), body


async def test_rectangular_kernels_strides_and_pads_are_answered_per_axis(client):
    layers = [
        {"type": "conv", "kernel_size": [1, 7], "stride": [1, 2], "padding": [[0, 0], [2, 3]], "out_channels": 4},
        {"type": "maxpool", "kernel_size": [3, 2], "stride": 2, "ceil_mode": True},
    ]
    report = (await client.post("/validate", json={"image_size": [33, 40], "layers": layers})).json()
    conv, pool = report["layers"]
    assert conv["output_size"] == [33, 20] and conv["receptive_field"] == [1, 7] and conv["jump"] == [1, 2]
    assert conv["padding"] == [[0, 0], [2, 3]] and conv["effective_padding"] == [0, 2]
    assert conv["params"] == 7 * 3 * 4 + 4
    # ceil((33 - 3) / 2) + 1 = 16 rows; ceil((20 - 2) / 2) + 1 = 10 columns
    assert pool["output_size"] == [16, 10] and pool["receptive_field"] == [3, 9] and pool["ceil_mode"] is True
    assert report["receptive_field_limit"] == [33, 40] and report["rf_side"] == "axis"
