"""/benchmarks input checks and unknown ids, in process (no job is queued by these requests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

PLAN = {"image_size": 32, "widths": {"base": 4, "multiplier": 2, "max_width": 8}, "num_classes": 10}


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path, embedded_worker=False, max_benchmark_batch_size=64, max_benchmark_iterations=50)
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
        ({"architecture": {"layers": [{"type": "conv", "kernel_size": 3}, {"type": "warp"}], "image_size": 8}},
         "architecture.layers[1].type"),
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
    for method in ("GET", "DELETE"):
        answer = client.request(method, "/benchmarks/does-not-exist")
        assert answer.status_code == 404 and answer.json()["field"] == "id"
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_list_limits(client: TestClient) -> None:
    assert client.get("/benchmarks").json() == {"items": [], "total": 0, "limit": 20, "offset": 0}
    assert client.get("/benchmarks", params={"limit": 101}).status_code == 422
    assert client.get("/benchmarks", params={"offset": -1}).status_code == 422


def test_readyz_reports_the_embedded_broker(client: TestClient) -> None:
    broker = client.get("/readyz").json()["components"]["broker"]
    assert broker["ok"] is True and "sqlite" in broker["detail"]
