"""Benchmark jobs end to end with real processes: Celery workers, a redis-server, `cnnplan serve`.

Faults (issue 5): a worker SIGKILLed mid-job leaves the job to be re-run to success by the next
worker; an API restart keeps every job and result; with the broker down the job endpoints answer
503 with Retry-After while /plan and /validate keep working and /readyz names the broker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from worker_procs import ROOT, Processes, RedisServer, free_port, wait_for, worker_env

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings

TINY = {"image_size": 32, "widths": {"base": 4, "multiplier": 2, "max_width": 8}, "num_classes": 10}
QUICK = {"plan": TINY, "device": "cpu", "batch_sizes": [1, 2], "warmup": 1, "iterations": 2}
LONG = {"plan": TINY, "device": "cpu", "batch_sizes": [1], "warmup": 0, "iterations": 1000}
"""Seconds of work on one core: long enough to be caught running, short enough to re-run."""
UNENDING = {"plan": {**TINY, "image_size": 64}, "device": "cpu", "batch_sizes": [64], "warmup": 0, "iterations": 1000}
"""Minutes of work on one core, on any machine: a run that ends while the test looks on was stopped, not done.
(LONG finished inside one heartbeat on a fast CI machine, so its deletion was never noticed.)"""


def api(data_dir: Path, redis_url: str | None = None) -> TestClient:
    settings = Settings(
        data_dir=data_dir,
        redis_url=redis_url,
        embedded_worker=False,
        job_lease_seconds=3,
        job_rate_limit="100000/minute",
    )
    return TestClient(create_app(settings))


def job_in(client: TestClient | httpx.Client, job_id: str, *statuses: str) -> dict | None:
    job = client.get(f"/benchmarks/{job_id}").json()
    return job if job["status"] in statuses else None


def check_result(job: dict, batch_sizes: list[int]) -> None:
    result = job["result"]
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["error"] is None
    assert result["params"] > 0 and result["flops"] > 0 and result["environment"]["device"] == "cpu"
    assert [row["batch_size"] for row in result["results"]] == batch_sizes
    for row in result["results"]:
        assert 0 < row["latency_ms_p50"] <= row["latency_ms_p90"] and row["images_per_second"] > 0
        assert row["peak_memory_bytes"] > 0


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_sigkilled_worker_job_is_rerun_to_success(
    backend: str, tmp_path: Path, processes: Processes, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_server").url if backend == "redis" else None
    client = api(tmp_path, redis_url)
    first = processes.worker(worker_env(tmp_path, redis_url), "worker-a")
    answer = client.post("/benchmarks", json=LONG)
    assert answer.status_code == 202
    job_id = answer.json()["id"]
    wait_for(lambda: (job := job_in(client, job_id, "running")) and job["progress"] > 0, "the job to run")
    processes.kill(first)
    stuck = client.get(f"/benchmarks/{job_id}").json()
    assert stuck["status"] == "running" and stuck["attempts"] == 1  # its worker is gone, the record says running
    processes.worker(worker_env(tmp_path, redis_url), "worker-b")
    done = wait_for(lambda: job_in(client, job_id, "succeeded", "failed"), "the re-run", timeout=240)
    assert done["attempts"] == 2
    check_result(done, [1])


def test_embedded_serve_bench_cli_and_api_restart(tmp_path: Path, processes: Processes) -> None:
    """`cnnplan serve` runs API + embedded worker; `cnnplan bench` prints the table; a restart keeps everything."""
    port = free_port()
    env = worker_env(tmp_path, CNNPLAN_PORT=str(port))
    serve = [sys.executable, "-m", "cnnplan.service.cli.main", "serve"]
    server = processes.start(serve, env, "serve")
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, timeout=30)

    def up() -> bool:
        try:
            return http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, "cnnplan serve")
    answer = http.post("/benchmarks", json=QUICK)
    assert answer.status_code == 202 and answer.headers["location"] == f"/benchmarks/{answer.json()['id']}"
    first = wait_for(lambda: job_in(http, answer.json()["id"], "succeeded", "failed"), "the first job")
    check_result(first, [1, 2])
    cli = subprocess.run(
        [sys.executable, "-m", "cnnplan.service.cli.main", "bench", "16", "--batch-size", "1", "--batch-size", "3",
         "--iterations", "2", "--warmup", "0", "--device", "cpu", "--width-base", "2", "--max-width", "4",
         "--num-classes", "5", "--url", base, "--poll", "0.2"],
        capture_output=True, text=True, timeout=240, cwd=ROOT, env=env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    table = cli.stdout.splitlines()
    assert "device cpu" in table[0] and "p50 ms" in table[2]
    assert [line.split()[0] for line in table[4:]] == ["1", "3"]
    assert "benchmarking" in cli.stderr  # the progress bar
    before = http.get("/benchmarks").json()
    assert before["total"] == 2 and before["items"][1]["id"] == first["id"]  # newest first

    processes.stop(server)
    assert server.returncode is not None
    embedded_pool_process = int(first["worker"].rsplit(":", 1)[1])
    wait_for(lambda: not Path(f"/proc/{embedded_pool_process}").exists(), "the embedded worker to stop with serve")
    processes.start(serve, env, "serve-again")
    wait_for(up, "cnnplan serve after the restart")
    after = http.get("/benchmarks").json()
    assert after == before
    assert http.get(f"/benchmarks/{first['id']}").json() == first
    page = http.get("/benchmarks", params={"limit": 1, "offset": 1}).json()
    assert [item["id"] for item in page["items"]] == [first["id"]] and page["total"] == 2


def test_queued_job_survives_api_restart_and_runs_later(tmp_path: Path, processes: Processes) -> None:
    job_id = api(tmp_path).post("/benchmarks", json=QUICK).json()["id"]
    restarted = api(tmp_path)  # a new app on the same data directory: nothing in memory survives
    assert job_in(restarted, job_id, "queued")
    processes.worker(worker_env(tmp_path))
    check_result(wait_for(lambda: job_in(restarted, job_id, "succeeded", "failed"), "the queued job"), [1, 2])


def test_cancel_refuse_and_keep_serving(tmp_path: Path, processes: Processes) -> None:
    client = api(tmp_path)
    queued = client.post("/benchmarks", json=QUICK).json()["id"]
    assert client.post(f"/benchmarks/{queued}/cancel").json()["status"] == "cancelled"
    again = client.post(f"/benchmarks/{queued}/cancel", json={"reason": "twice"}).json()  # idempotent
    assert again["status"] == "cancelled" and again["reason"] == "cancelled by request"
    assert again["cancelled_by"] == "anonymous"
    processes.worker(worker_env(tmp_path))
    running = client.post("/benchmarks", json=UNENDING).json()["id"]
    wait_for(lambda: job_in(client, running, "running"), "the long job to run")
    cancelled = client.post(f"/benchmarks/{running}/cancel", json={"reason": "wrong network"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["reason"] == "wrong network"
    huge = {"plan": {"image_size": 4096, "num_classes": 10}, "device": "cpu", "batch_sizes": [1024]}
    refused = client.post("/benchmarks", json=huge).json()["id"]
    after = client.post("/benchmarks", json=QUICK).json()["id"]
    check_result(wait_for(lambda: job_in(client, after, "succeeded", "failed"), "the job after the cancel"), [1, 2])
    failed = job_in(client, refused, "failed")
    assert failed["error"]["type"] == "does_not_fit" and failed["error"]["field"] == "batch_sizes[0]"
    assert "GiB" in failed["error"]["message"]
    assert job_in(client, running, "cancelled")["progress"] < 1
    assert job_in(client, queued, "cancelled")["attempts"] == 0  # the worker never ran it
    finished = client.post(f"/benchmarks/{after}/cancel")
    assert finished.status_code == 409 and finished.json()["field"] == "id"
    assert client.delete(f"/benchmarks/{after}").status_code == 204  # a finished job's record and result go
    assert client.get(f"/benchmarks/{after}").status_code == 404


def test_deleting_a_running_job_stops_its_worker(tmp_path: Path, processes: Processes) -> None:
    """DELETE on a running job: 204, every route 404 afterwards, and the worker's run ends as cancelled."""
    client = api(tmp_path)
    processes.worker(worker_env(tmp_path), "worker")
    job_id = client.post("/benchmarks", json=UNENDING).json()["id"]
    wait_for(lambda: (job := job_in(client, job_id, "running")) and job["progress"] > 0, "the long job to run")
    assert client.delete(f"/benchmarks/{job_id}").status_code == 204
    for method, path in (("GET", ""), ("POST", "/cancel"), ("DELETE", "")):
        assert client.request(method, f"/benchmarks/{job_id}{path}").status_code == 404
    assert job_id not in [job["id"] for job in client.get("/benchmarks").json()["items"]]
    log = next(tmp_path.glob("worker-*.log"))
    wait_for(lambda: f"job {job_id} attempt 1 ended: cancelled" in log.read_text(), "the worker to stop the run")
    after = client.post("/benchmarks", json=QUICK).json()["id"]
    check_result(wait_for(lambda: job_in(client, after, "succeeded", "failed"), "a job after the delete"), [1, 2])
    assert client.get(f"/benchmarks/{job_id}").status_code == 404  # the stopped run wrote nothing back


def test_broker_down_answers_503_and_planning_goes_on(tmp_path: Path, redis_server: RedisServer) -> None:
    if redis_server.is_shared:
        pytest.skip("stopping the broker needs a private redis-server (the machine's shared one stays up)")
    client = api(tmp_path, redis_server.url)
    job_id = client.post("/benchmarks", json=QUICK).json()["id"]
    assert client.get("/readyz").json()["components"]["broker"]["ok"] is True
    redis_server.stop()
    for method, path, body in (
        ("POST", "/benchmarks", QUICK), ("GET", "/benchmarks", None), ("GET", f"/benchmarks/{job_id}", None),
        ("POST", f"/benchmarks/{job_id}/cancel", None), ("DELETE", f"/benchmarks/{job_id}", None),
    ):  # fmt: skip
        answer = client.request(method, path, json=body)
        assert answer.status_code == 503, (method, path, answer.text)
        assert int(answer.headers["retry-after"]) > 0
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert client.post("/plan", json={"image_size": 64}).status_code == 200
    assert client.post("/validate", json={"preset": "vgg16"}).status_code == 200
    ready = client.get("/readyz").json()
    assert ready["components"]["broker"]["ok"] is False and "down" in ready["components"]["broker"]["detail"]
    redis_server.start()  # a fresh, empty server on the same port: the endpoints answer again
    assert client.get("/benchmarks").status_code == 200


def test_killed_pool_process_job_is_rerun(tmp_path: Path, processes: Processes) -> None:
    """Only the pool process running the job dies; the worker's main process lives on and the job is re-run."""
    import os
    import signal

    client = api(tmp_path)
    processes.worker(worker_env(tmp_path))
    job_id = client.post("/benchmarks", json=LONG).json()["id"]
    running = wait_for(lambda: (job := job_in(client, job_id, "running")) and job["progress"] > 0 and job, "the job")
    os.kill(int(running["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    done = wait_for(lambda: job_in(client, job_id, "succeeded", "failed"), "the re-run", timeout=240)
    assert done["attempts"] == 2
    check_result(done, [1])


def test_time_limit_fails_the_job_and_the_worker_serves_on(tmp_path: Path, processes: Processes) -> None:
    client = api(tmp_path)
    processes.worker(worker_env(tmp_path, CNNPLAN_JOB_TIME_LIMIT="10"))  # soft limit 5 s
    slow = {"plan": {**TINY, "image_size": 64}, "device": "cpu", "batch_sizes": [64], "warmup": 0, "iterations": 1000}
    slow_id = client.post("/benchmarks", json=slow).json()["id"]
    failed = wait_for(lambda: job_in(client, slow_id, "failed", "succeeded"), "the time limit", timeout=240)
    assert failed["status"] == "failed" and failed["error"]["type"] == "time_limit", failed["error"]
    assert "10 s" in failed["error"]["message"] and failed["progress"] < 1
    after = client.post("/benchmarks", json=QUICK).json()["id"]
    check_result(wait_for(lambda: job_in(client, after, "succeeded", "failed"), "a job after the limit"), [1, 2])
