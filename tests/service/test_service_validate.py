"""POST /validate: constraint verdicts with exact values, published receptive fields, graphs, presets, errors."""

from __future__ import annotations

import pytest
from service_helpers import assert_problem

pytestmark = pytest.mark.anyio


def convs(count: int, kernel: int = 3) -> list[dict]:
    return [{"type": "conv", "kernel_size": kernel, "padding": "same", "out_channels": 8} for _ in range(count)]


async def test_ninth_3x3_conv_breaks_the_c_value(client):
    # r after m stride-1 3x3 convs is 2m + 1; c = 3 / r >= 1/6 holds up to m = 8, the 9th has c = 3/19
    report = (await client.post("/validate", json={"image_size": 19, "layers": convs(9)})).json()
    assert report["valid"] is False
    assert report["depth"] == 9 and report["top_receptive_field"] == [19, 19]
    [violation] = report["violations"]
    assert violation["constraint"] == "c_value"
    assert violation["layer"] == "conv8"
    assert (violation["value_exact"], violation["limit_exact"]) == ("3/19", "1/6")
    assert "remove 1 convolution from the stage that ends at 'conv8'" in violation["message"]
    assert violation["fix"] == {"action": "remove_layers", "stage_end": "conv8", "convolutions": 1,
                                "nodes": ["conv7"]}  # fmt: skip


async def test_receptive_field_beyond_the_image_is_a_violation(client):
    report = (await client.post("/validate", json={"image_size": 16, "layers": convs(8)})).json()
    assert report["valid"] is False
    [violation] = report["violations"]
    assert (violation["constraint"], violation["value"], violation["limit"]) == ("receptive_field", 17, 16)


async def test_valid_architecture_reports_depth_headroom(client):
    # 5 convs: r = 11; up to 3 more fit (r = 17 <= 17 and c = 3/17 >= 1/6)
    report = (await client.post("/validate", json={"image_size": 17, "layers": convs(5)})).json()
    assert report["valid"] is True and report["violations"] == []
    assert (report["depth"], report["depth_headroom"], report["top_layer"]) == (5, 3, "conv4")
    full = (await client.post("/validate", json={"image_size": 17, "layers": convs(8)})).json()
    assert (full["valid"], full["depth_headroom"]) == (True, 0)


async def test_stride_defaults_follow_pytorch(client):
    layers = [{"type": "conv", "kernel_size": 3}, {"type": "maxpool", "kernel_size": 2}]
    stats = (await client.post("/validate", json={"image_size": 32, "layers": layers})).json()["layers"]
    assert [layer["stride"] for layer in stats] == [[1, 1], [2, 2]]
    assert [layer["output_size"] for layer in stats] == [[30, 30], [15, 15]]


async def test_vgg16_preset_reproduces_published_receptive_fields(client):
    report = (await client.post("/validate", json={"preset": "vgg16"})).json()
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert report["image_size"] == [224, 224]
    for name, expected in (("pool1", (6, 2, 2)), ("pool5", (212, 32, 90))):
        got = (layers[name]["receptive_field"], layers[name]["jump"], layers[name]["effective_padding"])
        assert got == tuple([value, value] for value in expected)  # [h, w], the same on both axes
    assert report["depth"] == 13


async def test_residual_graph_merges_receptive_fields(client):
    nodes = [
        {"name": "proj", "type": "conv", "kernel_size": 1, "out_channels": 8, "inputs": ["input"]},
        {"name": "a", "type": "conv", "kernel_size": 3, "padding": "same", "out_channels": 8, "inputs": ["input"]},
        {"name": "b", "type": "conv", "kernel_size": 3, "padding": "same", "out_channels": 8, "inputs": ["a"]},
        {"name": "sum", "type": "add", "inputs": ["proj", "b"]},
    ]
    report = (await client.post("/validate", json={"image_size": 32, "graph": {"nodes": nodes}})).json()
    merged = report["layers"][-1]
    # P = max(0, 2) = 2, r = max(1 - 0, 5 - 2) + 2 = 5 (docs/theory.md#layer-arithmetic)
    assert (merged["name"], merged["receptive_field"], merged["effective_padding"]) == ("sum", [5, 5], [2, 2])
    assert merged["inputs"] == ["proj", "b"]


async def test_misaligned_merge_is_422(client):
    nodes = [
        {"name": "a", "type": "conv", "kernel_size": 3, "stride": 2, "padding": 1, "inputs": ["input"]},
        {"name": "b", "type": "conv", "kernel_size": 3, "padding": 1, "inputs": ["input"]},
        {"name": "sum", "type": "add", "inputs": ["a", "b"]},
    ]
    problem = assert_problem(await client.post("/validate", json={"image_size": 32, "graph": {"nodes": nodes}}), 422)
    assert problem["code"] == "misaligned_merge" and problem["field"] == "graph.nodes[2].inputs"


async def test_cycle_is_422(client):
    nodes = [{"name": "a", "type": "relu", "inputs": ["b"]}, {"name": "b", "type": "relu", "inputs": ["a"]}]
    problem = assert_problem(await client.post("/validate", json={"image_size": 8, "graph": {"nodes": nodes}}), 422)
    assert problem["code"] == "invalid_graph" and "cycle" in problem["reason"]


async def test_more_than_10000_layers_is_422_with_the_limit(client):
    body = {"image_size": 8, "layers": [{"type": "relu"}] * 10_001}
    problem = assert_problem(await client.post("/validate", json=body), 422, "layers")
    assert "10000" in problem["reason"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"image_size": 8, "layers": [{"type": "conv", "kernal_size": 3}]}, "layers[0].kernal_size", "not an accepted"),
        ({"image_size": 8, "layers": [{"type": "cnv"}]}, "layers[0].type", "'conv'"),
        ({"image_size": 8, "layers": [{"type": "conv", "padding": -1}]}, "layers[0].padding", "'same'"),
        ({"image_size": 8, "layers": [{"type": "conv", "kernel_size": 2000}]}, "layers[0].kernel_size", "1024"),
        ({"image_size": 8, "layers": [{"type": "conv", "kernel_size": 9}]}, "layers[0]", "would produce"),
        ({"image_size": 8, "layers": [{"type": "relu", "rate": 0.5}]}, "layers[0].rate", "dropout"),
        ({"image_size": 8, "layers": [{"type": "conv", "name": "x" * 129}]}, "layers[0].name", "128"),
        ({"image_size": 8, "layers": []}, "layers", "at least 1"),
        ({"layers": convs(1)}, "image_size", "required"),
        ({"image_size": 8}, "layers", "exactly one"),
        ({"image_size": 8, "layers": convs(1), "preset": "vgg16"}, "layers", "exactly one"),
        ({"preset": "vgg17"}, "preset", "vgg16"),
        ({"image_size": 8, "layers": convs(1), "min_c_value": "1/0"}, "min_c_value", "p/q"),
        ({"image_size": 8, "graph": {"nodes": [{"name": "a", "type": "relu", "inputs": ["zz"]}]}},
         "graph.nodes[0].inputs[0]", "unknown node"),
    ],
)  # fmt: skip
async def test_bad_validate_inputs_are_422_problems_naming_the_field(client, body, field, words):
    problem = assert_problem(await client.post("/validate", json=body), 422, field)
    assert words in problem["reason"], problem
