"""Benchmark jobs carry a duration estimate made before they run, and every cancelled job says who
cancelled it; `cnnplan bench`'s wording of both. In process: no job is run by these tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cnnplan.service.api.app import create_app
from cnnplan.service.cli import jobs as cli
from cnnplan.service.settings import Settings
from cnnplan.service.worker.store import SqlJobStore

PLAN = {"image_size": 64, "widths": {"base": 8, "multiplier": 2, "max_width": 32}, "num_classes": 10}


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path, embedded_worker=False, job_rate_limit="10000/minute")))


def test_a_job_is_estimated_from_its_flops_and_a_measured_device_rate(client):
    forward = client.post("/plan", json=PLAN).json()["flops"]
    body = {"plan": PLAN, "device": "cpu", "batch_sizes": [1, 4], "warmup": 1, "iterations": 3}
    job = client.post("/benchmarks", json=body).json()
    estimate = job["estimate"]
    assert estimate["flops"] == (1 + 4) * (1 + 3) * forward
    assert estimate["device"] == "cpu" and estimate["basis"] == "measured" and estimate["device_flops_per_second"] > 0
    assert estimate["seconds"] == pytest.approx(estimate["flops"] / estimate["device_flops_per_second"] + 2.0, abs=0.1)
    assert client.get(f"/benchmarks/{job['id']}").json()["estimate"] == estimate  # stored with the job
    training = client.post("/benchmarks", json={**body, "mode": "training"}).json()["estimate"]
    assert training["flops"] == 3 * estimate["flops"]


def test_a_cancelled_job_says_who_cancelled_it(client):
    job_id = client.post("/benchmarks", json={"plan": PLAN, "device": "cpu"}).json()["id"]
    cancelled = client.post(f"/benchmarks/{job_id}/cancel", json={"reason": "superseded by a smaller plan"}).json()
    assert cancelled["status"] == "cancelled"
    assert (cancelled["reason"], cancelled["cancelled_by"]) == ("superseded by a smaller plan", "anonymous")
    again = client.get(f"/benchmarks/{job_id}").json()
    assert (again["reason"], again["cancelled_by"]) == (cancelled["reason"], cancelled["cancelled_by"])
    line = cli.end_reason(cancelled)
    assert line == "job cancelled by anonymous: superseded by a smaller plan"
    assert cli.end_reason({"status": "cancelled", "error": None}).endswith(
        "no reason was recorded (a record from an older service)"
    )
    failed = {
        "status": "failed",
        "error": {"type": "does_not_fit", "field": "batch_sizes[0]", "message": "needs 9 GiB"},
    }
    assert cli.end_reason(failed) == "job failed: does_not_fit (batch_sizes[0]): needs 9 GiB"


def test_a_job_file_from_before_estimates_gets_the_column(tmp_path):
    path = tmp_path / "jobs.sqlite"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE cnnplan_jobs (id VARCHAR(36) PRIMARY KEY, request TEXT NOT NULL, status VARCHAR(16) NOT NULL,"
            " progress FLOAT NOT NULL, created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, started_at FLOAT,"
            " finished_at FLOAT, attempts INTEGER NOT NULL, lease_expires_at FLOAT, worker VARCHAR(255), result TEXT,"
            " error TEXT)"
        )
        old.execute(
            "INSERT INTO cnnplan_jobs VALUES ('old', '{}', 'queued', 0, 1, 1, NULL, NULL, 0, NULL, NULL, NULL, NULL)"
        )
    store = SqlJobStore.in_data_dir(tmp_path)
    assert store.get("old").estimate is None
    new = store.create({"plan": PLAN}, estimate={"seconds": 1.0})
    assert store.get(new.id).estimate == {"seconds": 1.0}


def test_the_cli_warns_past_two_minutes_and_counts_down():
    estimate = {"seconds": 1000.0, "flops": 7_700_000_000_000, "device": "cpu", "device_flops_per_second": 10**10,
                "basis": "measured"}  # fmt: skip
    assert cli.estimate_line(estimate) == "estimated 16 min 40 s: 7.70 TFLOP at 10.0 GFLOP/s on cpu (measured)"
    assert "more than 2 min 00 s" in cli.long_job_warning(estimate, "http://x/benchmarks/1")
    assert cli.long_job_warning({**estimate, "seconds": 119.0}, "u") is None
    assert cli.remaining_seconds(estimate, 0.0, None) == 1000.0  # queued: the estimate
    assert cli.remaining_seconds(estimate, 0.01, 100.0) == 900.0  # too little progress to extrapolate yet
    assert cli.remaining_seconds(estimate, 0.5, 300.0) == pytest.approx(300.0)  # from the progress so far
    assert cli.remaining_seconds(None, 0.0, None) is None
    assert [cli.format_duration(s) for s in (42, 185, 3720)] == ["42 s", "3 min 05 s", "1 h 02 min"]
