"""/benchmarks input checks and unknown ids, in process (no job is queued by these requests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings

NO_RATE_LIMIT = "100000/minute"
"""These tests are about the worker, not the per-client submission rate limit (tested by the service)."""
PLAN = {"image_size": 32, "widths": {"base": 4, "multiplier": 2, "max_width": 8}, "num_classes": 10}


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(
        data_dir=tmp_path,
        embedded_worker=False,
        max_benchmark_batch_size=64,
        max_benchmark_iterations=50,
        job_rate_limit=NO_RATE_LIMIT,
    )
    return TestClient(create_app(settings))


@pytest.mark.parametrize(
    "body,field",
    [
        ({"plan": PLAN, "batch_sizes": [0]}, "batch_sizes[0]"),
        ({"plan": PLAN, "batch_sizes": [8, 65]}, "batch_sizes[1]"),
        ({"plan": PLAN, "batch_sizes": [8, 8]}, "batch_sizes[1]"),
        ({"plan": PLAN, "batch_sizes": list(range(1, 10))}, "batch_sizes"),
        ({"plan": PLAN, "batch_sizes": []}, "batch_sizes"),
        ({"plan": PLAN, "iterations": 51}, "iterations"),
        ({"plan": PLAN, "iterations": 0}, "iterations"),
        ({"plan": PLAN, "warmup": 101}, "warmup"),
        ({"plan": PLAN, "warmup": -1}, "warmup"),
        ({"plan": PLAN, "device": "tpu"}, "device"),
        ({"plan": PLAN, "dtype": "float64"}, "dtype"),
        ({"plan": PLAN, "mode": "eval"}, "mode"),
        ({"plan": PLAN, "compile": "yes"}, "compile"),
        ({"plan": PLAN, "shell": "rm -rf /"}, "shell"),
        ({}, "plan"),
        ({"plan": PLAN, "architecture": {"preset": "alexnet"}}, "plan"),
        ({"plan": {**PLAN, "image_size": 0}}, "plan.image_size"),
        (
            {"architecture": {"layers": [{"type": "conv", "kernel_size": 3}, {"type": "warp"}], "image_size": 8}},
            "architecture.layers[1].type",
        ),
        ({"architecture": {"layers": [{"type": "conv", "kernel_size": 9}], "image_size": 4}}, "architecture.layers[0]"),
        ({"architecture": {"preset": "nope"}}, "preset"),
    ],
)
def test_bad_options_are_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    answer = client.post("/benchmarks", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["field"].startswith(field) or field.startswith(problem["field"]), problem
    assert problem["detail"]


def test_unknown_job_is_404(client: TestClient) -> None:
    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/cancel")):
        answer = client.request(method, f"/benchmarks/does-not-exist{path}")
        assert answer.status_code == 404 and answer.json()["field"] == "id"
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_list_limits(client: TestClient) -> None:
    assert client.get("/benchmarks").json() == {"items": [], "total": 0, "limit": 20, "offset": 0}
    assert client.get("/benchmarks", params={"limit": 101}).status_code == 422
    assert client.get("/benchmarks", params={"offset": -1}).status_code == 422


def test_readyz_reports_the_embedded_broker(client: TestClient) -> None:
    broker = client.get("/readyz").json()["components"]["broker"]
    assert broker["ok"] is True and "sqlite" in broker["detail"]


def test_fuzzed_benchmark_bodies_never_get_a_5xx(tmp_path: Path) -> None:
    """Random option values and networks: a 202 or a 4xx problem naming a field, never a 5xx."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    client = TestClient(create_app(Settings(data_dir=tmp_path, embedded_worker=False, job_rate_limit=NO_RATE_LIMIT)))
    anything = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8)
    plans = st.fixed_dictionaries(
        {"image_size": st.integers(-2, 5000) | anything}, optional={"kernel_size": st.integers(-1, 40)}
    )
    nets = st.fixed_dictionaries(
        {},
        optional={
            "plan": plans | anything,
            "architecture": st.fixed_dictionaries(
                {"preset": st.sampled_from(["vgg11", "resnet18", "nope"])},
                optional={"image_size": st.integers(-1, 300)},
            )
            | anything,
        },
    )
    options = st.fixed_dictionaries({}, optional={
        "device": st.sampled_from(["auto", "cpu", "cuda", "tpu"]) | anything,
        "dtype": st.sampled_from(["float32", "bfloat16", "float16", "int8"]) | anything,
        "mode": st.sampled_from(["inference", "training", "x"]) | anything,
        "channels_last": anything, "compile": anything,
        "batch_sizes": st.lists(st.integers(-2, 5000), max_size=10) | anything,
        "warmup": st.integers(-2, 500) | anything, "iterations": st.integers(-2, 5000) | anything,
    })  # fmt: skip

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(nets, options)
    def check(net: dict, option: dict) -> None:
        # json.dumps writes NaN and Infinity as Python does: the service must refuse them with a 4xx too
        body = json.dumps({**net, **option})
        answer = client.post("/benchmarks", content=body, headers={"content-type": "application/json"})
        assert answer.status_code in (202, 422), answer.text
        if answer.status_code == 422:
            assert answer.json()["field"]
        else:
            assert answer.headers["location"] == f"/benchmarks/{answer.json()['id']}"

    check()
