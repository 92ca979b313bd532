"""Jobs belong to their key (issue 13): two keys on every job route, the admin key, the shared default,
cancel keeping the record, delete removing it, the per-key cap and idempotent submissions, on both stores.

In process (the app under TestClient, no worker: jobs stay queued), against the SQLite store and a
private redis-server, so each owner index of both backends is exercised.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from cnnplan.service.api.app import create_app
from cnnplan.service.client import AsyncPlannerClient, RetryPolicy
from cnnplan.service.client._client import replayable
from cnnplan.service.settings import Settings
from cnnplan.service.worker.store import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    ActiveJobsLimit,
    JobStore,
    RedisJobStore,
    SqlJobStore,
)  # fmt: skip

ALICE_KEY, BOB_KEY, ADMIN_KEY = "alice-key-0123456789abcdef", "bob-key-fedcba9876543210", "admin-key-5a5a5a5a5a5a5a"
ALICE, BOB, ADMIN = ({"X-API-Key": key} for key in (ALICE_KEY, BOB_KEY, ADMIN_KEY))
KEYS = f"alice={ALICE_KEY}, bob=sha256:{hashlib.sha256(BOB_KEY.encode()).hexdigest()}"
"""Bob's key is configured by its digest only: the server never sees it until he presents it."""
JOB = {"plan": {"image_size": 32, "num_classes": 10}, "batch_sizes": [1], "iterations": 1, "warmup": 0}


@pytest.fixture(params=["sqlite", "redis"])
def redis_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_server").url if request.param == "redis" else None


def app_client(tmp_path: Path, redis_url: str | None, **settings) -> TestClient:
    base = {"data_dir": tmp_path, "redis_url": redis_url, "embedded_worker": False, "job_rate_limit": "100000/minute"}
    return TestClient(create_app(Settings(**{**base, **settings})))


@pytest.fixture
def keyed(tmp_path: Path, redis_url: str | None) -> TestClient:
    return app_client(tmp_path, redis_url, api_keys=KEYS, admin_key=ADMIN_KEY)


def submit(client: TestClient, headers: dict, **extra) -> dict:
    answer = client.post("/benchmarks", json=JOB, headers={**headers, **extra})
    assert answer.status_code == 202, answer.text
    return answer.json()


def ids(client: TestClient, headers: dict) -> list[str]:
    return [job["id"] for job in client.get("/benchmarks", headers=headers).json()["items"]]


def test_every_job_route_hides_another_owners_job(keyed: TestClient) -> None:
    mine = submit(keyed, ALICE)
    theirs = submit(keyed, BOB)
    assert mine["owner"] == "alice" and theirs["owner"] == "bob"
    unknown = "0f6e1c1e-0000-4000-8000-000000000000"
    for job_id in (mine["id"], unknown):  # bob cannot tell alice's job from no job at all
        for method, path in (("GET", ""), ("POST", "/cancel"), ("DELETE", "")):
            answer = keyed.request(method, f"/benchmarks/{job_id}{path}", headers=BOB)
            assert answer.status_code == 404, (method, path, answer.text)
            problem = answer.json()
            assert problem["code"] == "not_found" and problem["field"] == "id"
            assert "alice" not in answer.text and "queued" not in answer.text
    assert ids(keyed, BOB) == [theirs["id"]] and keyed.get("/benchmarks", headers=BOB).json()["total"] == 1
    assert ids(keyed, ALICE) == [mine["id"]]
    after = keyed.get(f"/benchmarks/{mine['id']}", headers=ALICE).json()
    assert after["status"] == "queued" and after["cancelled_by"] is None  # bob's tries changed nothing


def test_the_admin_key_sees_and_cancels_every_job(keyed: TestClient) -> None:
    mine, theirs = submit(keyed, ALICE), submit(keyed, BOB)
    assert ids(keyed, ADMIN) == [theirs["id"], mine["id"]]
    assert keyed.get(f"/benchmarks/{mine['id']}", headers=ADMIN).json()["owner"] == "alice"
    cancelled = keyed.post(f"/benchmarks/{theirs['id']}/cancel", headers=ADMIN, json={"reason": "maintenance"})
    assert cancelled.json()["cancelled_by"] == "admin" and cancelled.json()["reason"] == "maintenance"
    assert keyed.get(f"/benchmarks/{theirs['id']}", headers=BOB).json()["status"] == "cancelled"
    own = submit(keyed, ADMIN)
    assert own["owner"] == "admin" and own["id"] not in ids(keyed, ALICE)


def test_a_wrong_or_missing_key_is_401_on_every_job_route(keyed: TestClient) -> None:
    job_id = submit(keyed, ALICE)["id"]
    routes = [("POST", "/benchmarks"), ("GET", "/benchmarks"), ("GET", f"/benchmarks/{job_id}"),
              ("POST", f"/benchmarks/{job_id}/cancel"), ("DELETE", f"/benchmarks/{job_id}")]  # fmt: skip
    for headers in ({}, {"X-API-Key": ALICE_KEY + "x"}, {"X-API-Key": hashlib.sha256(BOB_KEY.encode()).hexdigest()}):
        for method, path in routes:
            answer = keyed.request(method, path, headers=headers, json=JOB if method == "POST" else None)
            assert answer.status_code == 401, (headers, method, path)
    assert keyed.get(f"/benchmarks/{job_id}", headers=ALICE).json()["status"] == "queued"


def test_without_keys_jobs_are_shared(tmp_path: Path, redis_url: str | None) -> None:
    first = app_client(tmp_path, redis_url)
    job = submit(first, {})
    assert job["owner"] is None
    assert ids(first, {}) == [job["id"]]
    cancelled = first.post(f"/benchmarks/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_by"] == "anonymous"


def test_cancel_keeps_the_record_and_delete_removes_it(keyed: TestClient) -> None:
    job_id = submit(keyed, ALICE)["id"]
    cancelled = keyed.post(f"/benchmarks/{job_id}/cancel", headers=ALICE, json={"reason": "wrong batch size"})
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert (body["status"], body["reason"], body["cancelled_by"]) == ("cancelled", "wrong batch size", "alice")
    again = keyed.post(f"/benchmarks/{job_id}/cancel", headers=ALICE).json()
    assert again == keyed.get(f"/benchmarks/{job_id}", headers=ALICE).json() == body  # idempotent, record kept
    assert ids(keyed, ALICE) == [job_id]
    assert keyed.post(f"/benchmarks/{job_id}/cancel", headers=ALICE, json={"reason": ""}).status_code == 422
    assert keyed.post(f"/benchmarks/{job_id}/cancel", headers=ALICE, json={"why": "x"}).status_code == 422
    deleted = keyed.delete(f"/benchmarks/{job_id}", headers=ALICE)
    assert deleted.status_code == 204 and deleted.content == b""
    for method, path in (("GET", ""), ("POST", "/cancel"), ("DELETE", "")):
        assert keyed.request(method, f"/benchmarks/{job_id}{path}", headers=ALICE).status_code == 404
    assert ids(keyed, ALICE) == [] and ids(keyed, ADMIN) == []


def test_deleting_a_queued_job_cancels_it_first(keyed: TestClient) -> None:
    job_id = submit(keyed, ALICE)["id"]
    assert keyed.delete(f"/benchmarks/{job_id}", headers=ALICE).status_code == 204
    assert keyed.get(f"/benchmarks/{job_id}", headers=ALICE).status_code == 404
    assert submit(keyed, ALICE)["id"] != job_id


def test_the_active_jobs_cap_is_per_key(tmp_path: Path, redis_url: str | None) -> None:
    client = app_client(tmp_path, redis_url, api_keys=KEYS, job_max_active_per_key=2)
    first, _ = submit(client, ALICE), submit(client, ALICE)
    refused = client.post("/benchmarks", json=JOB, headers=ALICE)
    assert refused.status_code == 429 and refused.json()["code"] == "active_jobs_limit"
    assert int(refused.headers["retry-after"]) > 0 and "at most 2" in refused.json()["detail"]
    submit(client, BOB)  # bob's own cap
    client.post(f"/benchmarks/{first['id']}/cancel", headers=ALICE)
    submit(client, ALICE)  # a finished (cancelled) job frees its slot
    assert client.post("/benchmarks", json=JOB, headers=ALICE).status_code == 429


def test_a_repeated_idempotency_key_gives_the_same_job(keyed: TestClient) -> None:
    first = submit(keyed, ALICE, **{"Idempotency-Key": "run-1"})
    again = submit(keyed, ALICE, **{"Idempotency-Key": "run-1"})
    other = submit(keyed, BOB, **{"Idempotency-Key": "run-1"})  # the same key of another owner: its own job
    assert again["id"] == first["id"] and other["id"] != first["id"]
    assert ids(keyed, ALICE) == [first["id"]] and ids(keyed, BOB) == [other["id"]]
    reused = keyed.post("/benchmarks", json={**JOB, "iterations": 2}, headers={**ALICE, "Idempotency-Key": "run-1"})
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_key_reused"
    assert reused.json()["field"] == "Idempotency-Key" and ids(keyed, ALICE) == [first["id"]]


@pytest.mark.parametrize(
    "value",
    ["alice", "alice=short", "=0123456789abcdefg", "al ice=0123456789abcdefg", "admin=0123456789abcdefg",
     "a=0123456789abcdefg,b=0123456789abcdefg", "a=sha256:abc"],
)  # fmt: skip
def test_a_malformed_key_list_fails_at_startup(value: str) -> None:
    with pytest.raises(ValidationError, match="api_keys"):
        Settings(api_keys=value)


# -- the store underneath -------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, redis_url: str | None) -> JobStore:
    return RedisJobStore(redis_url) if redis_url else SqlJobStore.in_data_dir(tmp_path / "data")


def test_store_cap_owner_listing_and_delete_of_a_running_job(store: JobStore) -> None:
    a1 = store.create({"n": 1}, owner="a", max_active=2)
    store.create({"n": 2}, owner="a", max_active=2)
    with pytest.raises(ActiveJobsLimit):
        store.create({"n": 3}, owner="a", max_active=2)
    b1 = store.create({"n": 4}, owner="b", max_active=2)
    assert store.active_count("a") == 2 and store.active_count("b") == 1
    assert [job.request["n"] for job in store.list(10, owner="a")[0]] == [2, 1]
    assert store.list(10)[1] == 3
    claimed = store.claim(a1.id, "w", 60, 3)
    assert claimed is not None and claimed.status == RUNNING
    store.cancel(a1.id, by="a", reason="deleted")
    store.delete(a1.id)
    assert store.get(a1.id) is None and store.active_count("a") == 1
    assert not store.heartbeat(a1.id, 1, 60)  # its worker stops at the next heartbeat
    assert not store.finish(a1.id, 1, SUCCEEDED, result={})
    assert store.get(a1.id) is None and a1.id not in store.active_ids()
    assert [job.id for job in store.list(10, owner="a")[0]] != [] and b1.id in store.active_ids()
    assert store.list(10, owner="a")[1] == 1


# -- the Python client over a connection that loses answers ----------------------------------------


class LosesAnswers(httpx.AsyncBaseTransport):
    """The real app behind it handles every request; the first `lose` answers are dropped on the way back,
    as when the API process that handled a request is killed before its answer is sent."""

    def __init__(self, app, lose: int) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.lose = lose

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if self.lose > 0:
            self.lose -= 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return response


@pytest.mark.anyio
async def test_the_client_retries_lost_answers_without_duplicating_a_submission(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, embedded_worker=False, job_rate_limit="100000/minute"))
    policy = RetryPolicy(retries=3, backoff=0.01)
    async with AsyncPlannerClient("http://test", transport=LosesAnswers(app, lose=2), retry=policy) as client:
        job = await client.submit_benchmark(JOB)  # handled three times by the server, one job made
        assert job["status"] == "queued"
    async with AsyncPlannerClient("http://test", transport=LosesAnswers(app, lose=1), retry=policy) as client:
        listed = await client.benchmarks()
        assert [item["id"] for item in listed["items"]] == [job["id"]] and listed["total"] == 1
        assert (await client.plan(image_size=64)).layers
        assert (await client.cancel_benchmark(job["id"]))["status"] == "cancelled"
    async with AsyncPlannerClient(
        "http://test", transport=LosesAnswers(app, lose=1), retry=RetryPolicy(retry_lost=False)
    ) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.benchmarks()
    async with AsyncPlannerClient("http://test", transport=LosesAnswers(app, lose=1), retry=policy) as client:
        with pytest.raises(httpx.RemoteProtocolError):  # a POST that is not replayable is not sent again
            await client.request("POST", "/benchmarks", json=JOB)
        assert (await client.benchmarks())["total"] == 2


def test_replayable_requests() -> None:
    assert replayable("GET", "/benchmarks") and replayable("DELETE", "/benchmarks/x")
    assert replayable("POST", "/plan?format=pytorch") and replayable("POST", "/benchmarks/x/cancel")
    assert replayable("POST", "/benchmarks", {"Idempotency-Key": "k"})
    assert not replayable("POST", "/benchmarks") and not replayable("PATCH", "/benchmarks/x")


class LosesAnswersSync(httpx.BaseTransport):
    """`LosesAnswers` for the blocking client, in front of a real uvicorn."""

    def __init__(self, lose: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = lose

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        if self.lose > 0:
            self.lose -= 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return response


def test_the_blocking_client_retries_lost_answers_against_a_real_server(tmp_path: Path) -> None:
    import os
    import sys

    from live_processes import ServerProcess, free_port

    from cnnplan.service.client import PlannerClient

    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CNNPLAN_")}
    env.update(CNNPLAN_DATA_DIR=str(tmp_path), CNNPLAN_EMBEDDED_WORKER="false", CNNPLAN_API_KEYS=KEYS)
    command = [sys.executable, "-m", "uvicorn", "cnnplan.service.api.app:app", "--port", str(port), "--log-level",
               "warning"]  # fmt: skip
    with ServerProcess(command, port, env, cwd=tmp_path) as server:
        policy = RetryPolicy(retries=2, backoff=0.01)
        with PlannerClient(server.url, api_key=ALICE_KEY, retry=policy, transport=LosesAnswersSync(2)) as client:
            job = client.submit_benchmark(JOB)
        with PlannerClient(server.url, api_key=ALICE_KEY, retry=policy, transport=LosesAnswersSync(2)) as client:
            experiment = client.submit_experiment(EXPERIMENT)
        with PlannerClient(server.url, api_key=ALICE_KEY, retry=policy, transport=LosesAnswersSync(1)) as client:
            assert [item["id"] for item in client.benchmarks()["items"]] == [job["id"]]
            assert client.cancel_benchmark(job["id"], reason="done")["cancelled_by"] == "alice"
            client.delete_benchmark(job["id"])
            assert [item["id"] for item in client.experiments()["items"]] == [experiment["id"]]
            assert client.experiment(experiment["id"])["owner"] == "alice"
            assert client.cancel_experiment(experiment["id"], reason="done")["cancelled_by"] == "alice"
            assert client.wait_experiment(experiment["id"], poll_interval=0.01)["status"] == "cancelled"
            client.delete_experiment(experiment["id"])
        with PlannerClient(server.url, api_key=ALICE_KEY) as client:
            assert client.benchmarks()["total"] == 0 and client.experiments()["total"] == 0


def test_a_job_table_of_the_previous_version_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "jobs.sqlite"
    with sqlite3.connect(path) as old:  # the table as the version before owners made it, with one job
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
    assert store.get("old").owner is None
    new = store.create({"n": 1}, owner="alice", max_active=5)
    assert store.get(new.id).owner == "alice" and store.cancel("old", by="admin").cancelled_by == "admin"


# -- experiments follow the same contract (issues 13 and 14) ---------------------------------------

EXPERIMENT = {
    "image_size": 16, "train_samples": 64, "test_samples": 32, "epochs": 1, "seeds": [0],
    "widths": {"base": 4, "multiplier": 2, "max_width": 8},
    "variants": {"baseline": True, "stage_scales": [], "too_deep": [], "too_long": [], "t_sweep": []},
}  # fmt: skip
"""Two architectures x one seed; never trained here (no worker): it stays queued."""


def submit_experiment(client: TestClient, headers: dict) -> dict:
    answer = client.post("/experiments", json=EXPERIMENT, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()


def experiment_ids(client: TestClient, headers: dict) -> list[str]:
    return [job["id"] for job in client.get("/experiments", headers=headers).json()["items"]]


def run_store(client: TestClient) -> JobStore:
    from cnnplan.service.worker.experiment_jobs import experiment_stores

    return experiment_stores(client.app.state.settings)[1]


def test_every_experiment_route_hides_another_owners_experiment(keyed: TestClient) -> None:
    mine, theirs = submit_experiment(keyed, ALICE), submit_experiment(keyed, BOB)
    assert mine["owner"] == "alice" and theirs["owner"] == "bob" and len(mine["runs"]) == 2
    unknown = "0f6e1c1e-0000-4000-8000-000000000000"
    for job_id in (mine["id"], unknown):
        for method, path, params in (("GET", "", {}), ("GET", "", {"format": "svg"}), ("POST", "/cancel", {}),
                                     ("DELETE", "", {})):  # fmt: skip
            answer = keyed.request(method, f"/experiments/{job_id}{path}", params=params, headers=BOB)
            assert answer.status_code == 404, (method, path, params, answer.text)
            assert answer.json()["code"] == "not_found" and answer.json()["field"] == "id"
            assert "alice" not in answer.text and "queued" not in answer.text
    assert experiment_ids(keyed, BOB) == [theirs["id"]] and keyed.get("/experiments", headers=BOB).json()["total"] == 1
    assert experiment_ids(keyed, ALICE) == [mine["id"]]
    assert experiment_ids(keyed, ADMIN) == [theirs["id"], mine["id"]]
    after = keyed.get(f"/experiments/{mine['id']}", headers=ALICE).json()
    assert after["status"] == "queued" and after["cancelled_by"] is None  # bob's tries changed nothing
    assert all(run_store(keyed).get(run["id"]).status == "queued" for run in after["runs"])
    by_admin = keyed.post(f"/experiments/{theirs['id']}/cancel", headers=ADMIN, json={"reason": "maintenance"}).json()
    assert (by_admin["status"], by_admin["cancelled_by"], by_admin["reason"]) == ("cancelled", "admin", "maintenance")
    assert keyed.get(f"/experiments/{theirs['id']}", headers=BOB).json()["cancelled_by"] == "admin"


def test_a_wrong_or_missing_key_is_401_on_every_experiment_route(keyed: TestClient) -> None:
    job_id = submit_experiment(keyed, ALICE)["id"]
    routes = [("POST", "/experiments"), ("GET", "/experiments"), ("GET", f"/experiments/{job_id}"),
              ("POST", f"/experiments/{job_id}/cancel"), ("DELETE", f"/experiments/{job_id}")]  # fmt: skip
    for headers in ({}, {"X-API-Key": ALICE_KEY + "x"}):
        for method, path in routes:
            body = EXPERIMENT if path == "/experiments" and method == "POST" else None
            assert keyed.request(method, path, headers=headers, json=body).status_code == 401, (headers, method, path)
    assert keyed.get(f"/experiments/{job_id}", headers=ALICE).json()["status"] == "queued"


def test_experiment_cancel_keeps_the_record_and_delete_removes_it_and_its_runs(keyed: TestClient) -> None:
    job = submit_experiment(keyed, ALICE)
    cancelled = keyed.post(f"/experiments/{job['id']}/cancel", headers=ALICE, json={"reason": "wrong size"})
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert (body["status"], body["reason"], body["cancelled_by"]) == ("cancelled", "wrong size", "alice")
    assert all(run["status"] == "cancelled" for run in body["runs"])
    stored = [run_store(keyed).get(run["id"]) for run in body["runs"]]
    assert all((run.status, run.reason, run.cancelled_by) == ("cancelled", "wrong size", "alice") for run in stored)
    again = keyed.post(f"/experiments/{job['id']}/cancel", headers=ALICE).json()
    assert again["reason"] == "wrong size" and again == keyed.get(f"/experiments/{job['id']}", headers=ALICE).json()
    assert keyed.post(f"/experiments/{job['id']}/cancel", headers=ALICE, json={"why": "x"}).status_code == 422
    for victim in (job, submit_experiment(keyed, ALICE)):  # a cancelled one, and a queued one (cancelled first)
        deleted = keyed.delete(f"/experiments/{victim['id']}", headers=ALICE)
        assert deleted.status_code == 204 and deleted.content == b""
        for method, path in (("GET", ""), ("POST", "/cancel"), ("DELETE", "")):
            assert keyed.request(method, f"/experiments/{victim['id']}{path}", headers=ALICE).status_code == 404
        assert all(run_store(keyed).get(run["id"]) is None for run in victim["runs"])  # the runs go too
    assert experiment_ids(keyed, ALICE) == [] and experiment_ids(keyed, ADMIN) == []


def test_the_active_experiments_cap_is_per_key_and_a_finished_one_frees_its_slot(
    tmp_path: Path, redis_url: str | None
) -> None:
    client = app_client(tmp_path, redis_url, api_keys=KEYS, job_max_active_per_key=1)
    first = submit_experiment(client, ALICE)
    refused = client.post("/experiments", json=EXPERIMENT, headers=ALICE)
    assert refused.status_code == 429 and refused.json()["code"] == "active_jobs_limit"
    assert int(refused.headers["retry-after"]) > 0 and "at most 1" in refused.json()["detail"]
    assert len(experiment_ids(client, ALICE)) == 1  # the refused submission left no record behind
    submit_experiment(client, BOB)  # bob's own cap
    runs = run_store(client)
    error = {"type": "internal_error", "message": "the test's worker gave up", "field": None}
    for run in first["runs"]:  # a worker's claim and end of every run, through the real store
        claimed = runs.claim(run["id"], "test-worker", 60, 3)
        assert claimed is not None and runs.finish(run["id"], claimed.attempts, FAILED, error=error)
    second = submit_experiment(client, ALICE)  # the experiment whose runs all ended no longer counts
    assert client.get(f"/experiments/{first['id']}", headers=ALICE).json()["status"] == "failed"
    finished = client.post(f"/experiments/{first['id']}/cancel", headers=ALICE)
    assert finished.status_code == 409 and finished.json()["code"] == "job_finished"
    client.post(f"/experiments/{second['id']}/cancel", headers=ALICE)
    submit_experiment(client, ALICE)  # a cancelled one frees its slot too
    assert client.post("/experiments", json=EXPERIMENT, headers=ALICE).status_code == 429


def test_without_keys_experiments_are_shared(tmp_path: Path, redis_url: str | None) -> None:
    client = app_client(tmp_path, redis_url, job_max_active_per_key=1)
    job, other = submit_experiment(client, {}), submit_experiment(client, {})  # no cap without keys
    assert job["owner"] is None and experiment_ids(client, {}) == [other["id"], job["id"]]
    cancelled = client.post(f"/experiments/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_by"] == "anonymous"
    assert client.delete(f"/experiments/{other['id']}").status_code == 204
    assert experiment_ids(client, {}) == [job["id"]]


def test_a_repeated_idempotency_key_gives_the_same_experiment(keyed: TestClient) -> None:
    """As for benchmarks: the same experiment (no second record, no orphan runs), keys per owner, a reused
    key with another body the same 409 as POST /benchmarks answers."""

    def post(headers: dict, body: dict = EXPERIMENT) -> httpx.Response:
        return keyed.post("/experiments", json=body, headers={**headers, "Idempotency-Key": "exp-1"})

    first, again, other = post(ALICE), post(ALICE), post(BOB)  # bob's same key: his own experiment
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json() == first.json() and again.headers["location"] == f"/experiments/{first.json()['id']}"
    assert other.json()["id"] != first.json()["id"] and other.json()["owner"] == "bob"
    assert experiment_ids(keyed, ALICE) == [first.json()["id"]] and experiment_ids(keyed, BOB) == [other.json()["id"]]
    assert run_store(keyed).list(100)[1] == 4  # two runs each: the repeat's runs were removed again
    reused = post(ALICE, {**EXPERIMENT, "epochs": 2})
    keyed.post("/benchmarks", json=JOB, headers={**ALICE, "Idempotency-Key": "bench-1"})
    reused_benchmark = keyed.post("/benchmarks", json={**JOB, "iterations": 2},
                                  headers={**ALICE, "Idempotency-Key": "bench-1"})  # fmt: skip
    assert reused.status_code == reused_benchmark.status_code == 409
    problem, benchmark_problem = reused.json(), reused_benchmark.json()
    assert (problem["code"], problem["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    assert first.json()["id"] in problem["detail"] and first.json()["id"] in problem["reason"]
    worded = ("detail", "reason", "instance")  # they name the job the key was used for
    assert {k: v for k, v in problem.items() if k not in worded} == {
        k: v for k, v in benchmark_problem.items() if k not in worded
    }
    assert experiment_ids(keyed, ALICE) == [first.json()["id"]] and run_store(keyed).list(100)[1] == 4
    cancelled = keyed.post(f"/experiments/{first.json()['id']}/cancel", headers=ALICE).json()
    assert post(ALICE).json() == cancelled  # a repeat after the cancel: the experiment as it is now


@pytest.mark.anyio
async def test_the_client_retries_a_lost_experiment_submission_without_a_duplicate(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, embedded_worker=False, job_rate_limit="100000/minute"))
    policy = RetryPolicy(retries=3, backoff=0.01)
    async with AsyncPlannerClient("http://test", transport=LosesAnswers(app, lose=2), retry=policy) as client:
        job = await client.submit_experiment(EXPERIMENT)  # handled three times by the server, one experiment made
        assert job["status"] == "queued" and len(job["runs"]) == 2
    async with AsyncPlannerClient("http://test", transport=LosesAnswers(app, lose=1), retry=policy) as client:
        listed = await client.experiments()
        assert [item["id"] for item in listed["items"]] == [job["id"]] and listed["total"] == 1
        assert (await client.experiment(job["id"]))["runs"] == job["runs"]
        assert (await client.cancel_experiment(job["id"], reason="done"))["status"] == "cancelled"
        await client.delete_experiment(job["id"])
        assert (await client.experiments())["total"] == 0
    from cnnplan.service.worker.experiment_jobs import experiment_stores

    assert experiment_stores(app.state.settings)[1].list(100)[1] == 0  # no run was left behind by the repeats


@pytest.mark.parametrize("broker_refuses", ["the repeat", "the first"])
def test_a_refused_message_forgets_only_the_job_this_request_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker_refuses: str
) -> None:
    """The broker refusing a repeat's message (the first submission's job is in the store) answers 503 and
    keeps that job; refusing a first submission's message deletes the job it just made."""
    from cnnplan.service.problems import ProblemError
    from cnnplan.service.worker import jobs
    from cnnplan.service.worker.schemas import BenchmarkRequest

    settings = Settings(data_dir=tmp_path, embedded_worker=False, job_rate_limit="100000/minute")
    body = BenchmarkRequest.model_validate(JOB)

    def refuse(self: jobs.JobService, job_id: str) -> None:
        raise ConnectionError("the broker refused the message")

    store = jobs.job_service(settings).store
    if broker_refuses == "the repeat":
        first = jobs.submit_benchmark(body, settings, jobs.SHARED, "run-1")
        monkeypatch.setattr(jobs.JobService, "send", refuse)
        with pytest.raises(ProblemError) as refused:
            jobs.submit_benchmark(body, settings, jobs.SHARED, "run-1")
        assert store.get(first["id"]) is not None  # the first submission's job stays, still queued
        assert store.get(first["id"]).status == "queued"
    else:
        monkeypatch.setattr(jobs.JobService, "send", refuse)
        with pytest.raises(ProblemError) as refused:
            jobs.submit_benchmark(body, settings, jobs.SHARED, "run-1")
        assert store.list(10) == ([], 0)  # the job the refused request made is gone again
    assert refused.value.status == 503
