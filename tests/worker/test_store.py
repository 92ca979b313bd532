"""The job store's transitions on both backends (SQLite file and a real redis-server)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cnnplan.service.worker.store import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    JobStore,
    RedisJobStore,
    SqlJobStore,
)  # fmt: skip


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> JobStore:
    if request.param == "sqlite":
        return SqlJobStore.in_data_dir(tmp_path / "data")
    server = request.getfixturevalue("redis_server")
    return RedisJobStore(server.url)


def test_lifecycle_and_newest_first_pagination(store: JobStore) -> None:
    jobs = [store.create({"n": n}) for n in range(5)]
    page, total = store.list(limit=2, offset=0)
    assert total == 5 and [job.request["n"] for job in page] == [4, 3]
    page, _ = store.list(limit=2, offset=4)
    assert [job.request["n"] for job in page] == [0]
    job = jobs[0]
    claimed = store.claim(job.id, "w1", lease_seconds=60, max_attempts=3)
    assert claimed is not None and claimed.status == RUNNING and claimed.attempts == 1
    assert store.claim(job.id, "w2", lease_seconds=60, max_attempts=3) is None  # a live lease is respected
    assert store.set_progress(job.id, 1, 0.5) and store.get(job.id).progress == 0.5
    assert store.finish(job.id, 1, SUCCEEDED, result={"ok": True})
    done = store.get(job.id)
    assert done.status == SUCCEEDED and done.progress == 1.0 and done.result == {"ok": True}
    assert store.cancel(job.id).status == SUCCEEDED  # finished jobs stay finished
    assert set(store.active_ids()) == {j.id for j in jobs[1:]}


def test_cancel_beats_a_late_finish(store: JobStore) -> None:
    job = store.create({})
    store.claim(job.id, "w1", 60, 3)
    assert store.cancel(job.id).status == CANCELLED
    assert not store.heartbeat(job.id, 1, 60)
    assert not store.finish(job.id, 1, SUCCEEDED, result={})
    assert store.get(job.id).status == CANCELLED and job.id not in store.active_ids()


def test_expired_lease_is_requeued_once_and_reclaimed(store: JobStore) -> None:
    job = store.create({})
    store.claim(job.id, "lost", lease_seconds=0.01, max_attempts=3)
    time.sleep(0.05)
    assert store.requeue_expired(job.id) and not store.requeue_expired(job.id)
    assert store.get(job.id).status == QUEUED
    again = store.claim(job.id, "w2", 60, 3)
    assert again.attempts == 2 and again.worker == "w2"
    assert not store.finish(job.id, 1, SUCCEEDED, result={})  # the lost attempt cannot write
    assert store.finish(job.id, 2, SUCCEEDED, result={})


def test_gives_up_after_max_attempts(store: JobStore) -> None:
    job = store.create({})
    store.claim(job.id, "w", lease_seconds=0.01, max_attempts=1)
    time.sleep(0.05)
    assert store.claim(job.id, "w", 60, max_attempts=1) is None
    failed = store.get(job.id)
    assert failed.status == FAILED and "gave up after 1 attempts" in failed.error["message"]


def test_survives_reopening(tmp_path: Path) -> None:
    first = SqlJobStore.in_data_dir(tmp_path)
    job = first.create({"x": 1})
    first.claim(job.id, "w", 60, 3)
    first.finish(job.id, 1, FAILED, error={"message": "boom"})
    again = SqlJobStore.in_data_dir(tmp_path).get(job.id)
    assert again.status == FAILED and again.error == {"message": "boom"} and again.request == {"x": 1}


def test_sweep_resends_lost_and_stale_jobs_only(store: JobStore) -> None:
    from cnnplan.service.worker.recovery import requeue_lost_jobs

    lost, live, waiting, finished = (store.create({"n": n}) for n in range(4))
    store.claim(lost.id, "dead", lease_seconds=0.01, max_attempts=3)
    store.claim(live.id, "alive", lease_seconds=600, max_attempts=3)
    store.claim(finished.id, "w", 600, 3)
    store.finish(finished.id, 1, SUCCEEDED, result={})
    time.sleep(0.05)
    sent: list[str] = []
    assert requeue_lost_jobs(store, sent.append, stale_after=600) == sent == [lost.id]
    assert store.get(lost.id).status == QUEUED and store.get(live.id).status == RUNNING
    sent.clear()
    time.sleep(0.05)
    assert sorted(requeue_lost_jobs(store, sent.append, stale_after=0.01)) == sorted([lost.id, waiting.id])
    assert requeue_lost_jobs(store, sent.append, stale_after=600) == []  # just touched: not sent again
