"""Experiments end to end with real processes: `cnnplan serve` with its embedded worker and `cnnplan
experiment run`, an API restart, a Celery worker SIGKILLed mid-run under Redis (its run re-run by the
next worker); and the request checks (422 naming the field, API key, rate limit, cancel, delete)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from worker_procs import ROOT, Processes, free_port, wait_for, worker_env

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings

NO_VARIANTS = {"baseline": True, "stage_scales": [], "too_deep": [], "too_long": [], "t_sweep": []}
TINY = {
    "image_size": 16, "train_samples": 200, "test_samples": 100, "epochs": 1, "seeds": [0],
    "widths": {"base": 4, "multiplier": 2, "max_width": 8}, "variants": NO_VARIANTS,
}  # fmt: skip
"""Two architectures (the plan and one conv per stage) x one seed: a few seconds of CPU."""
FIVE_SCORES = [
    {"type": "conv", "kernel_size": 3, "padding": "same", "out_channels": 4}, {"type": "relu"},
    {"type": "global_maxpool", "level": "classifier"}, {"type": "linear", "out_channels": 5, "level": "classifier"},
]  # fmt: skip
LONG = {**TINY, "train_samples": 256, "epochs": 150}
"""Long enough to be caught running, short enough to re-run."""


def api(data_dir: Path, redis_url: str | None = None, **settings: object) -> TestClient:
    values = {"data_dir": data_dir, "redis_url": redis_url, "embedded_worker": False, "job_lease_seconds": 3,
              "job_rate_limit": "100000/minute", **settings}  # fmt: skip
    return TestClient(create_app(Settings(**values)))


def experiment_in(client: TestClient | httpx.Client, job_id: str, *statuses: str) -> dict | None:
    job = client.get(f"/experiments/{job_id}").json()
    return job if job["status"] in statuses else None


def check_result(job: dict, architectures: int, seeds: int) -> None:
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["error"] is None
    result = job["result"]
    assert len(result["runs"]) == architectures * seeds == len(job["runs"])
    for run in result["runs"]:
        assert run["status"] == "succeeded" and 0 <= run["test_accuracy"] <= 1 and 0 <= run["train_accuracy"] <= 1
        assert run["depth"] >= 1 and isinstance(run["valid"], bool) and run["params"] > 0 and run["wall_seconds"] > 0
    plan = result["architectures"][0]
    assert "planned" in plan["groups"] and plan["valid"] and plan["test_accuracy"]["n"] == seeds
    assert result["environment"]["cpus"] >= 1


def test_embedded_serve_experiment_cli_and_api_restart(tmp_path: Path, processes: Processes) -> None:
    """`cnnplan serve` trains through its embedded worker; the CLI writes JSON + SVG; a restart keeps it."""
    port = free_port()
    env = worker_env(tmp_path, CNNPLAN_PORT=str(port))
    serve = [sys.executable, "-m", "cnnplan.service.cli.main", "serve"]
    server = processes.start(serve, env, "serve")
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, timeout=60)

    def up() -> bool:
        try:
            return http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, "cnnplan serve")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    output, figure = tmp_path / "result.json", tmp_path / "figure.svg"
    cli = subprocess.run(
        [sys.executable, "-m", "cnnplan.service.cli.main", "experiment", "run", "--config", str(config),
         "--output", str(output), "--figure", str(figure), "--url", base, "--poll", "0.3"],
        capture_output=True, text=True, timeout=280, cwd=ROOT, env=env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "training" in cli.stderr and "2 runs" in cli.stderr  # the progress bar, one task per run
    assert "| plan (" in cli.stdout  # the table
    written = json.loads(output.read_text())
    assert [run["architecture"] for run in written["runs"]] == ["plan (7)", "(1)"]  # z = 16: the plan is one stage
    svg = figure.read_text()
    assert svg.lstrip().startswith("<?xml") and "planner's depth D" in svg
    listing = http.get("/experiments").json()
    assert listing["total"] == 1
    job_id = listing["items"][0]["id"]
    before = http.get(f"/experiments/{job_id}").json()
    check_result(before, 2, 1)

    processes.stop(server)
    processes.start(serve, env, "serve-again")
    wait_for(up, "cnnplan serve after the restart")
    after = http.get(f"/experiments/{job_id}").json()
    assert after["status"] == "succeeded" and after["result"] == before["result"]
    image = http.get(f"/experiments/{job_id}", params={"format": "svg"})
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/svg+xml")


def test_sigkilled_worker_run_is_rerun_under_redis(tmp_path: Path, processes: Processes, redis_server) -> None:
    client = api(tmp_path, redis_server.url)
    first = processes.worker(worker_env(tmp_path, redis_server.url), "worker-a")
    answer = client.post("/experiments", json=LONG)
    assert answer.status_code == 202 and answer.headers["location"] == f"/experiments/{answer.json()['id']}"
    job_id = answer.json()["id"]

    def running_run() -> dict | None:
        job = client.get(f"/experiments/{job_id}").json()
        return next((run for run in job["runs"] if run["status"] == "running" and run["progress"] > 0), None)

    caught = wait_for(running_run, "a run to be training", timeout=240)
    processes.kill(first)
    stuck = client.get(f"/experiments/{job_id}").json()
    assert stuck["status"] == "running"  # its worker is gone; the record still says running
    processes.worker(worker_env(tmp_path, redis_server.url), "worker-b")
    done = wait_for(lambda: experiment_in(client, job_id, "succeeded", "failed"), "the re-run", timeout=280)
    check_result(done, 2, 1)
    rerun = next(run for run in done["runs"] if run["id"] == caught["id"])
    assert rerun["attempts"] == 2


def test_bad_requests_name_the_field_and_cancel_works(tmp_path: Path) -> None:
    client = api(tmp_path, max_experiment_runs=3, max_experiment_image_size=64, max_experiment_dataset_bytes=2**20)
    cases = [
        ({"dataset": "cifar10"}, "dataset"),
        ({"epochs": 10**6}, "epochs"),
        ({"image_size": 128}, "image_size"),
        ({"image_size": 4}, "image_size"),
        ({"train_samples": 10**7}, "train_samples"),
        ({**TINY, "train_samples": 5000}, "train_samples"),  # 5100 x 16^2 x 4 bytes > 1 MiB
        ({**TINY, "variants": {}, "seeds": [0, 1]}, "seeds"),  # the default variants x 2 seeds > 3 runs
        ({**TINY, "seeds": [0, 0]}, "seeds"),
        ({**TINY, "dataset_options": {"parts": 3}}, "dataset_options.parts"),
        ({**TINY, "variants": {**NO_VARIANTS, "stage_scales": ["0"]}}, "variants.stage_scales[0]"),
        ({**TINY, "architectures": [{"name": "mine", "layers": FIVE_SCORES}]}, "architectures[0]"),  # 8 classes
        ({**TINY, "architectures": [{"name": "vgg", "preset": "vgg16"}]}, "architectures[0].layers[30]"),  # 16 px
        (
            {**TINY, "architectures": [{"name": "two", "layers": FIVE_SCORES, "preset": "vgg16"}]},
            "architectures[0].layers",
        ),
        ({**TINY, "dataset": "image_folder"}, "dataset"),  # no CNNPLAN_EXPERIMENT_DATA_ROOT configured
    ]
    for body, field in cases:
        answer = client.post("/experiments", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["field"] == field, (body, answer.json())
    queued = client.post("/experiments", json=TINY)  # no worker: it stays queued
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    job_id = queued.json()["id"]
    cancelled = client.post(f"/experiments/{job_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and all(run["status"] == "cancelled" for run in cancelled["runs"])
    assert client.post(f"/experiments/{job_id}/cancel").json() == cancelled  # idempotent
    assert client.get("/experiments/no-such-id").status_code == 404
    assert client.get(f"/experiments/{job_id}", params={"format": "svg"}).status_code == 409  # nothing trained
    assert client.delete(f"/experiments/{job_id}").status_code == 204
    assert client.get(f"/experiments/{job_id}").status_code == 404


@pytest.mark.parametrize("with_key", [True, False])
def test_same_api_key_and_rate_limit_as_benchmarks(tmp_path: Path, with_key: bool) -> None:
    client = api(tmp_path, api_key="secret" if with_key else None, job_rate_limit="2/minute")
    headers = {"X-API-Key": "secret"} if with_key else {}
    if with_key:
        assert client.post("/experiments", json=TINY).status_code == 401
        assert client.get("/experiments").status_code == 401
    assert [client.post("/experiments", json=TINY, headers=headers).status_code for _ in range(3)] == [202, 202, 429]
