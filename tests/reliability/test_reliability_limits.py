"""Every documented limit, one test each: past it, a 4xx problem+json that names the field and states the limit.

Deeply nested and huge JSON are refused before Python's parser sees them (no RecursionError, no
5,000-digit integer conversion); elapsed times are printed, never asserted.
"""

from __future__ import annotations

import time

import httpx
import pytest
from reliability_helpers import AppClient, Uvicorn, assert_problem

from cnnplan.service.api.app import create_app
from cnnplan.service.api.middleware.json_limits import MAX_JSON_DEPTH, MAX_JSON_NUMBER_DIGITS
from cnnplan.service.settings import MIB, Settings
from cnnplan.solver import analyse
from cnnplan.solver.errors import LimitExceededError
from cnnplan.solver.limits import MAX_FAN_IN, MAX_IMAGE_SIDE, MAX_JUMP, MAX_LAYERS

JSON = {"content-type": "application/json"}
RELU = {"type": "relu"}


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> AppClient:
    data_dir = tmp_path_factory.mktemp("limits-data")
    return AppClient(create_app(Settings(data_dir=data_dir, redis_url=None, embedded_worker=False)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real uvicorn process on loopback, for the limits that involve the HTTP server itself."""
    workdir = tmp_path_factory.mktemp("limits-uvicorn")
    with Uvicorn(workdir / "data", workdir / "uvicorn.log") as running:
        yield running


# -- request bodies -------------------------------------------------------------------------------


def test_a_body_over_1_mib_is_413(client):
    body = b'{"image_size": 18, "pad": "' + b"a" * MIB + b'"}'
    assert_problem(client.post("/plan", content=body, headers=JSON), 413, "body", [str(MIB)])


def test_a_streamed_body_over_1_mib_is_413_on_a_real_server(server):
    """Chunked transfer, no Content-Length: the limit counts bytes as they arrive."""

    def chunks():
        yield b'{"image_size": 18, "pad": "'
        for _ in range(20):
            yield b"a" * 65536
        yield b'"}'

    response = httpx.post(f"{server.url}/validate", content=chunks(), headers=JSON, timeout=60)
    assert_problem(response, 413, "body", [str(MIB)])
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "path, item", [("/plan/batch", {"image_size": 18}), ("/validate/batch", {"image_size": 18, "layers": [RELU]})]
)
def test_a_batch_over_1000_requests_is_422(client, path, item):
    assert_problem(client.post(path, json={"requests": [item] * 1001}), 422, "requests", ["1000"])


def test_a_batch_of_1000_requests_is_answered_item_by_item(client):
    response = client.post("/validate/batch", json={"requests": [{"image_size": 18, "layers": [RELU]}] * 1000})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1000


def test_a_plan_batch_stops_planning_past_its_layer_budget(tmp_path):
    """Each plan at z = 2^20, t = 1/64 has over 2,000 layers: 1000 of them would be ~700 MB of JSON."""
    budget = 5_000
    app = create_app(Settings(data_dir=tmp_path, redis_url=None, embedded_worker=False, max_batch_layers=budget))
    heavy = {"image_size": MAX_IMAGE_SIDE, "min_c_value": "1/64"}
    response = AppClient(app).post("/plan/batch", json={"requests": [{"image_size": 18}, *[heavy] * 999]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 1000
    planned = [item for item in results if item["ok"]]
    assert planned[0]["index"] == 0 and planned[0]["result"]["stages"] == [8]
    assert 1 < len(planned) < 5 and sum(len(item["result"]["layers"]) for item in planned) <= budget
    refused = results[len(planned)]
    assert refused["problem"]["status"] == 422 and refused["problem"]["field"] == f"requests[{len(planned)}]"
    assert str(budget) in refused["problem"]["detail"]
    assert all(not item["ok"] and item["problem"]["code"] == "limit_exceeded" for item in results[len(planned) :])


def test_a_validate_batch_of_presets_stops_past_its_layer_budget(tmp_path):
    """A preset name is a few bytes of request and hundreds of layers of answer."""
    app = create_app(Settings(data_dir=tmp_path, redis_url=None, embedded_worker=False, max_batch_layers=1_000))
    response = AppClient(app).post("/validate/batch", json={"requests": [{"preset": "resnet50"}] * 1000})
    assert response.status_code == 200
    results = response.json()["results"]
    planned = [item for item in results if item["ok"]]
    assert 1 <= len(planned) < 10 and sum(len(item["result"]["layers"]) for item in planned) <= 1_000
    assert all(item["problem"]["code"] == "limit_exceeded" for item in results[len(planned) :])
    assert results[-1]["problem"]["field"] == "requests[999]"


# -- architectures --------------------------------------------------------------------------------


def test_more_than_10000_layers_is_422(client):
    response = client.post("/validate", json={"image_size": 18, "layers": [RELU] * (MAX_LAYERS + 1)})
    assert_problem(response, 422, "layers", [str(MAX_LAYERS)])


def test_more_than_10000_graph_nodes_is_422(client):
    nodes = [{"type": "relu", "name": f"n{i}"} for i in range(MAX_LAYERS + 1)]
    assert_problem(
        client.post("/validate", json={"image_size": 18, "graph": {"nodes": nodes}}),
        422,
        "graph.nodes",
        [str(MAX_LAYERS)],
    )


def test_the_solver_refuses_more_than_10000_layers():
    with pytest.raises(LimitExceededError) as raised:
        analyse([{"type": "relu"}] * (MAX_LAYERS + 1), 18)
    assert raised.value.field == "layers" and str(MAX_LAYERS) in raised.value.reason


def _fan_in_graph(fan_in: int) -> list[dict]:
    branches = [{"type": "conv", "kernel_size": 1, "name": f"b{i}", "inputs": ["input"]} for i in range(fan_in)]
    return branches + [{"type": "concat", "name": "cat", "inputs": [f"b{i}" for i in range(fan_in)]}]


def test_a_merge_of_more_than_64_inputs_is_422(client):
    response = client.post("/validate", json={"image_size": 18, "graph": {"nodes": _fan_in_graph(MAX_FAN_IN + 1)}})
    assert_problem(response, 422, f"graph.nodes[{MAX_FAN_IN + 1}].inputs", [str(MAX_FAN_IN)])


def test_a_merge_of_64_inputs_is_analysed(client):
    response = client.post("/validate", json={"image_size": 18, "graph": {"nodes": _fan_in_graph(MAX_FAN_IN)}})
    assert response.status_code == 200, response.text
    assert (
        response.json()["layers"][-1]["in_channels"] == 3
        and response.json()["layers"][-1]["out_channels"] == 3 * MAX_FAN_IN
    )


def test_the_solver_refuses_a_merge_of_more_than_64_inputs():
    with pytest.raises(LimitExceededError) as raised:
        analyse(_fan_in_graph(MAX_FAN_IN + 1), 18)
    assert raised.value.field == f"layers[{MAX_FAN_IN + 1}].inputs" and str(MAX_FAN_IN) in raised.value.reason


@pytest.mark.parametrize(
    "method, path, payload, field",
    [
        ("POST", "/plan", {"image_size": MAX_IMAGE_SIDE + 1}, "image_size"),
        ("POST", "/plan", {"image_size": [224, MAX_IMAGE_SIDE + 1]}, "image_size[1]"),
        ("POST", "/validate", {"image_size": MAX_IMAGE_SIDE + 1, "layers": [RELU]}, "image_size"),
        ("GET", "/plan", {"image_size": str(MAX_IMAGE_SIDE + 1)}, "image_size"),
        ("GET", "/plan", {"image_size": f"224x{MAX_IMAGE_SIDE + 1}"}, "image_size[1]"),
    ],
)
def test_an_image_side_over_2_20_is_422(client, method, path, payload, field):
    response = client.get(path, params=payload) if method == "GET" else client.post(path, json=payload)
    assert_problem(response, 422, field, [str(MAX_IMAGE_SIDE)])


def test_a_jump_over_2_64_is_422_not_a_long_big_integer_walk(client):
    """Padding keeps a stride-1024 chain alive; without the limit its integers grow to 30,000 digits."""
    layer = {"type": "conv", "kernel_size": 3, "stride": 1024, "padding": 1024, "out_channels": 1}
    started = time.perf_counter()
    response = client.post("/validate", json={"image_size": MAX_IMAGE_SIDE, "layers": [layer] * MAX_LAYERS})
    print(f"10,000-layer padded stride chain refused in {time.perf_counter() - started:.2f} s")
    # 1024^7 = 2^70 is the first jump past 2^64: the seventh layer (index 6).
    assert_problem(response, 422, "layers[6].stride", ["2^64", str(MAX_JUMP)])


def test_counts_past_64_bits_are_rendered_exactly(client):
    """Parameters and FLOPs of a huge (but in-limits) layer exceed 2^64 and still come back exact."""
    side, kernel, channels = MAX_IMAGE_SIDE, 1024, 1_000_000
    layer = {"type": "conv", "kernel_size": kernel, "padding": "same", "out_channels": channels}
    response = client.post("/validate", json={"image_size": side, "layers": [layer]})
    assert response.status_code == 200, response.text
    flops = 2 * kernel * kernel * 3 * channels * side * side
    assert flops > 2**64 and response.json()["flops"] == flops


# -- benchmark jobs (the worker's limits: service.settings max_benchmark_*) -----------------------


@pytest.mark.parametrize(
    "options, field, limit",
    [
        ({"batch_sizes": [1025]}, "batch_sizes[0]", "1024"),
        ({"batch_sizes": list(range(1, 10))}, "batch_sizes", "8"),
        ({"iterations": 1001}, "iterations", "1000"),
        ({"warmup": 101}, "warmup", "100"),
    ],
)
def test_benchmark_options_past_their_limits_are_422(client, options, field, limit):
    response = client.post("/benchmarks", json={"plan": {"image_size": 32}, **options})
    assert_problem(response, 422, field, [limit])


# -- strings and numbers of single fields ---------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, payload, field, limit",
    [
        ("POST", "/validate", {"image_size": 18, "layers": [{"type": "relu", "name": "x" * 129}]}, "layers[0].name", "128"),
        ("POST", "/validate", {"image_size": 18, "graph": {"nodes": [{"type": "relu", "name": "a", "inputs": ["y" * 129]}]}},
         "graph.nodes[0].inputs[0]", "128"),
        ("POST", "/validate", {"preset": "v" * 65}, "preset", "64"),
        ("POST", "/plan", {"image_size": 18, "min_c_value": "1/6" + " " * 62}, "min_c_value", "64"),
        ("GET", "/plan", {"image_size": "18", "min_c_value": "1" * 65}, "min_c_value", "64"),
        ("GET", "/presets/" + "p" * 65, None, "name", "64"),
        ("GET", "/benchmarks/" + "j" * 65, None, "job_id", "64"),
    ],
)  # fmt: skip
def test_strings_past_their_length_limits_are_422(client, method, path, payload, field, limit):
    response = client.get(path, params=payload) if method == "GET" else client.post(path, json=payload)
    assert_problem(response, 422, field, [limit])


@pytest.mark.parametrize(
    "path, payload, field, limit",
    [
        ("/validate", {"layers": [{"type": "conv", "kernel_size": 1025}]}, "layers[0].kernel_size", "1024"),
        ("/validate", {"layers": [{"type": "conv", "stride": 1025}]}, "layers[0].stride", "1024"),
        ("/validate", {"layers": [{"type": "conv", "dilation": 1025}]}, "layers[0].dilation", "1024"),
        ("/validate", {"layers": [{"type": "conv", "padding": 1025}]}, "layers[0].padding", "1024"),
        ("/validate", {"layers": [{"type": "conv", "out_channels": 1_000_001}]}, "layers[0].out_channels", "1000000"),
        ("/validate", {"layers": [RELU], "in_channels": 1_000_001}, "in_channels", "1000000"),
        ("/plan", {"num_classes": 1_000_001}, "num_classes", "1000000"),
        ("/plan", {"kernel_size": 33}, "kernel_size", "31"),
        ("/plan", {"widths": {"multiplier": 17}}, "widths.multiplier", "16"),
        ("/plan", {"min_c_value": "1/1000001"}, "min_c_value", "1000000"),
        ("/plan", {"min_c_value": "1/65"}, "min_c_value", "1/64"),
    ],
)
def test_numbers_past_their_limits_are_422(client, path, payload, field, limit):
    assert_problem(client.post(path, json={"image_size": 18, **payload}), 422, field, [limit])


# -- hostile JSON ---------------------------------------------------------------------------------

DEEP = 100_000


@pytest.mark.parametrize(
    "body",
    [
        b"[" * DEEP + b"]" * DEEP,
        b'{"image_size": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        b'{"a":' * DEEP + b"1" + b"}" * DEEP,
        b"[" * DEEP,  # never closed
    ],
    ids=["arrays", "inside-a-field", "objects", "unclosed"],
)
def test_json_nested_100000_deep_is_a_fast_422(client, body):
    started = time.perf_counter()
    response = client.post("/validate", content=body, headers=JSON)
    print(f"{len(body)} bytes nested {DEEP} deep refused in {1000 * (time.perf_counter() - started):.1f} ms")
    assert_problem(response, 422, "body", [str(MAX_JSON_DEPTH)])


def test_json_nested_exactly_32_deep_passes_the_depth_check(client):
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    problem = assert_problem(client.post("/plan", content=body, headers=JSON), 422, "body")
    assert "deep" not in problem["detail"]  # refused by the model (not an object), not by the depth limit


@pytest.mark.parametrize(
    "body",
    [
        b'{"image_size": 1' + b"0" * 5000 + b"}",  # 10**5000
        b"-1" + b"0" * 5000,
        b'{"image_size": 18, "min_c_value": 0.' + b"1" * (MAX_JSON_NUMBER_DIGITS + 1) + b"}",
    ],
    ids=["10**5000", "top-level", "101-digit-fraction"],
)
def test_json_numbers_over_100_digits_are_a_fast_422(client, body):
    started = time.perf_counter()
    response = client.post("/plan", content=body, headers=JSON)
    print(f"{len(body)}-byte number refused in {1000 * (time.perf_counter() - started):.1f} ms")
    assert_problem(response, 422, "body", [str(MAX_JSON_NUMBER_DIGITS)])


def test_digits_inside_strings_are_not_numbers(client):
    response = client.post("/validate", json={"image_size": 18, "layers": [{"type": "relu", "name": "9" * 128}]})
    assert response.status_code == 200, response.text


def test_hostile_json_leaves_a_real_server_answering(server):
    """Over a real socket: deep nesting and a huge number get their 422, and the process keeps serving."""
    deep = httpx.post(f"{server.url}/plan", content=b"[" * DEEP + b"]" * DEEP, headers=JSON, timeout=60)
    assert_problem(deep, 422, "body", [str(MAX_JSON_DEPTH)])
    huge = httpx.post(f"{server.url}/plan", content=b'{"image_size": 1' + b"0" * 5000 + b"}", headers=JSON, timeout=60)
    assert_problem(huge, 422, "body", [str(MAX_JSON_NUMBER_DIGITS)])
    assert httpx.post(f"{server.url}/plan", json={"image_size": 18}, timeout=60).json()["stages"] == [8]


def test_a_body_that_is_not_utf8_is_422_naming_the_body(client):
    assert_problem(client.post("/plan", content=b'{"image_size": "\xff"}', headers=JSON), 422, "body", ["utf-8"])
