"""Durable job records: status, progress, result or error, attempts and the running attempt's lease.

One record per job; every state change is a compare-and-set transition (`JobStore._transition`), so
two workers (a redelivered message, a re-queue after a lost worker) can never both run a job or
overwrite each other. Embedded: a SQLite file in the data directory (WAL, ``BEGIN IMMEDIATE``);
distributed: Redis hashes plus a sorted set for newest-first listing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED})
JSON_FIELDS = ("request", "result", "error", "estimate")


class StoreUnavailable(Exception):
    """The job store (SQLite file or Redis) cannot be reached."""


@dataclass
class Job:
    """One benchmark job; times are Unix seconds."""

    id: str
    request: dict[str, Any]
    status: str = QUEUED
    progress: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    lease_expires_at: float | None = None
    worker: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    estimate: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        """Flat values for storage (JSON text for the nested fields)."""
        record = asdict(self)
        for name in JSON_FIELDS:
            record[name] = None if record[name] is None else json.dumps(record[name])
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        values = dict(record)
        for name in JSON_FIELDS:
            if isinstance(values.get(name), (str, bytes)):
                values[name] = json.loads(values[name])
        return cls(**values)


Transition = Callable[[Job], dict[str, Any] | None]
"""Given the current job, the fields to change, or None to leave it alone."""


class JobStore:
    """Transitions shared by both backends; a backend supplies `_insert`, `_get`, `_cas`, `list`, `active_ids`."""

    def _insert(self, job: Job) -> None:
        raise NotImplementedError

    def _get(self, job_id: str) -> Job | None:
        raise NotImplementedError

    def _cas(self, job_id: str, transition: Transition) -> Job | None:
        """Atomically apply `transition`; the new job, or None when it declined or the job is unknown."""
        raise NotImplementedError

    def list(self, limit: int, offset: int = 0) -> tuple[list[Job], int]:
        """Jobs newest first, and the total count."""
        raise NotImplementedError

    def active_ids(self) -> list[str]:
        """Ids of queued and running jobs."""
        raise NotImplementedError

    def ping(self) -> None:
        """Raise `StoreUnavailable` when the store cannot be reached."""
        raise NotImplementedError

    def delete(self, job_id: str) -> None:
        """Remove a job (used only when its message could not be queued)."""
        raise NotImplementedError

    def create(self, request: dict[str, Any], estimate: dict[str, Any] | None = None) -> Job:
        """A new queued job for `request`, with its duration `estimate`."""
        now = time.time()
        job = Job(id=str(uuid.uuid4()), request=request, created_at=now, updated_at=now, estimate=estimate)
        self._insert(job)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._get(job_id)

    def claim(self, job_id: str, worker: str, lease_seconds: float, max_attempts: int) -> Job | None:
        """queued, or running with an expired lease -> running (attempt + 1); past max_attempts -> failed."""
        now = time.time()

        def transition(job: Job) -> dict[str, Any] | None:
            expired = job.status == RUNNING and (job.lease_expires_at or 0) < now
            if job.status != QUEUED and not expired:
                return None
            if job.attempts >= max_attempts:
                return {"status": FAILED, "finished_at": now, "updated_at": now, "lease_expires_at": None,
                        "error": {"type": "gave_up", "field": None,
                                  "message": f"gave up after {job.attempts} attempts: the worker running it was lost "
                                             "or hit the hard time limit each time"}}  # fmt: skip
            return {"status": RUNNING, "attempts": job.attempts + 1, "worker": worker, "progress": 0.0,
                    "started_at": now, "updated_at": now, "lease_expires_at": now + lease_seconds}  # fmt: skip

        job = self._cas(job_id, transition)
        return job if job is not None and job.status == RUNNING and job.worker == worker else None

    def _if_running(self, attempt: int, changes: Callable[[Job], dict[str, Any]]) -> Transition:
        def transition(job: Job) -> dict[str, Any] | None:
            if job.status != RUNNING or job.attempts != attempt:
                return None
            return {"updated_at": time.time(), **changes(job)}

        return transition

    def heartbeat(self, job_id: str, attempt: int, lease_seconds: float) -> bool:
        """Extend the lease of `attempt`; False when the job is no longer that running attempt."""
        renewed = self._cas(
            job_id, self._if_running(attempt, lambda job: {"lease_expires_at": time.time() + lease_seconds})
        )
        return renewed is not None

    def set_progress(self, job_id: str, attempt: int, fraction: float) -> bool:
        """Record progress of `attempt` (0..1)."""
        fraction = min(max(fraction, 0.0), 1.0)
        return self._cas(job_id, self._if_running(attempt, lambda job: {"progress": fraction})) is not None

    def finish(
        self, job_id: str, attempt: int, status: str, result: dict | None = None, error: dict | None = None
    ) -> bool:
        """running `attempt` -> succeeded/failed with its result or error; False if it was cancelled or re-queued."""
        now = time.time()
        changes = {"status": status, "finished_at": now, "lease_expires_at": None, "result": result, "error": error}
        if status == SUCCEEDED:
            changes["progress"] = 1.0
        return self._cas(job_id, self._if_running(attempt, lambda job: changes)) is not None

    def cancel(self, job_id: str, reason: dict[str, Any] | None = None) -> Job | None:
        """queued/running -> cancelled, with `reason` (a job error: who or what cancelled it) as its error;
        a finished job is returned unchanged; None if unknown."""
        now = time.time()

        def transition(job: Job) -> dict[str, Any] | None:
            if job.status in FINISHED:
                return None
            return {"status": CANCELLED, "finished_at": now, "updated_at": now, "lease_expires_at": None,
                    "error": reason}  # fmt: skip

        return self._cas(job_id, transition) or self._get(job_id)

    def requeue_expired(self, job_id: str) -> bool:
        """running with an expired lease -> queued (the worker running it was lost)."""
        now = time.time()

        def transition(job: Job) -> dict[str, Any] | None:
            if job.status != RUNNING or (job.lease_expires_at or 0) >= now:
                return None
            return {"status": QUEUED, "progress": 0.0, "updated_at": now, "lease_expires_at": None, "worker": None}

        return self._cas(job_id, transition) is not None

    def touch_if_stale(self, job_id: str, older_than: float) -> bool:
        """queued and unchanged for `older_than` seconds -> touched now (its message may be lost: send again)."""
        now = time.time()

        def transition(job: Job) -> dict[str, Any] | None:
            if job.status != QUEUED or job.updated_at > now - older_than:
                return None
            return {"updated_at": now}

        return self._cas(job_id, transition) is not None


class SqlJobStore(JobStore):
    """Jobs in one SQLite table (any SQLAlchemy URL works; SQLite gets WAL and immediate transactions)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, event

        self.engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
        if url.startswith("sqlite"):

            @event.listens_for(self.engine, "connect")
            def _connect(dbapi_connection, _record) -> None:  # the pysqlite recipe for real transactions
                dbapi_connection.isolation_level = None
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
                dbapi_connection.execute("PRAGMA busy_timeout=30000")

            @event.listens_for(self.engine, "begin")
            def _begin(connection) -> None:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        metadata = MetaData()
        self.table = Table(
            "cnnplan_jobs", metadata,
            Column("id", String(36), primary_key=True), Column("request", Text, nullable=False),
            Column("status", String(16), nullable=False, index=True), Column("progress", Float, nullable=False),
            Column("created_at", Float, nullable=False, index=True), Column("updated_at", Float, nullable=False),
            Column("started_at", Float), Column("finished_at", Float), Column("attempts", Integer, nullable=False),
            Column("lease_expires_at", Float), Column("worker", String(255)), Column("result", Text),
            Column("error", Text), Column("estimate", Text),
        )  # fmt: skip
        try:
            metadata.create_all(self.engine)
            self._add_estimate_column()
        except Exception as error:
            raise StoreUnavailable(f"job store {self.engine.url!r} cannot be opened: {error}") from error

    def _add_estimate_column(self) -> None:
        """A job file written before jobs had estimates gets the (nullable) column."""
        from sqlalchemy import inspect

        if "estimate" not in {column["name"] for column in inspect(self.engine).get_columns("cnnplan_jobs")}:
            with self.engine.begin() as connection:
                connection.exec_driver_sql("ALTER TABLE cnnplan_jobs ADD COLUMN estimate TEXT")

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> SqlJobStore:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{data_dir / 'jobs.sqlite'}")

    def _job(self, row: Any) -> Job:
        return Job.from_record(dict(row._mapping))

    def _insert(self, job: Job) -> None:
        with self.engine.begin() as connection:
            connection.execute(self.table.insert().values(**job.to_record()))

    def _get(self, job_id: str) -> Job | None:
        with self.engine.connect() as connection:
            row = connection.execute(self.table.select().where(self.table.c.id == job_id)).first()
        return None if row is None else self._job(row)

    def _cas(self, job_id: str, transition: Transition) -> Job | None:
        with self.engine.begin() as connection:
            row = connection.execute(self.table.select().where(self.table.c.id == job_id)).first()
            if row is None:
                return None
            job = self._job(row)
            changes = transition(job)
            if changes is None:
                return None
            for name, value in changes.items():
                setattr(job, name, value)
            stored = {name: job.to_record()[name] for name in changes}
            connection.execute(self.table.update().where(self.table.c.id == job_id).values(**stored))
        return job

    def list(self, limit: int, offset: int = 0) -> tuple[list[Job], int]:
        from sqlalchemy import func, select

        order = (self.table.c.created_at.desc(), self.table.c.id.desc())
        with self.engine.connect() as connection:
            rows = connection.execute(self.table.select().order_by(*order).limit(limit).offset(offset)).all()
            total = connection.execute(select(func.count()).select_from(self.table)).scalar_one()
        return [self._job(row) for row in rows], int(total)

    def active_ids(self) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(self.table.select().where(self.table.c.status.in_([QUEUED, RUNNING]))).all()
        return [row.id for row in rows]

    def ping(self) -> None:
        from sqlalchemy import text

        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:
            raise StoreUnavailable(str(error)) from error

    def delete(self, job_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(self.table.delete().where(self.table.c.id == job_id))


class RedisJobStore(JobStore):
    """Jobs as Redis hashes ``<prefix>job:<id>``, a sorted set by creation time and a set of active ids."""

    def __init__(self, url: str, prefix: str = "cnnplan:") -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        self.errors = (redis.RedisError, OSError)
        self.prefix = prefix
        self.index, self.active = f"{prefix}jobs", f"{prefix}jobs:active"

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    @staticmethod
    def _encode(job: Job) -> dict[str, str]:
        return {name: json.dumps(value) for name, value in job.to_record().items()}

    @staticmethod
    def _decode(data: dict[bytes, bytes]) -> Job:
        return Job.from_record({key.decode(): json.loads(value) for key, value in data.items()})

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except self.errors as error:
            raise StoreUnavailable(f"redis: {error}") from error

    def _insert(self, job: Job) -> None:
        def write() -> None:
            pipe = self.redis.pipeline()
            pipe.hset(self._key(job.id), mapping=self._encode(job))
            pipe.zadd(self.index, {job.id: job.created_at})
            pipe.sadd(self.active, job.id)
            pipe.execute()

        self._guard(write)

    def _get(self, job_id: str) -> Job | None:
        data = self._guard(lambda: self.redis.hgetall(self._key(job_id)))
        return self._decode(data) if data else None

    def _cas(self, job_id: str, transition: Transition) -> Job | None:
        key = self._key(job_id)

        def attempt(pipe: Any) -> Job | None:
            data = pipe.hgetall(key)
            if not data:
                return None
            job = self._decode(data)
            changes = transition(job)
            if changes is None:
                return None
            for name, value in changes.items():
                setattr(job, name, value)
            encoded = self._encode(job)
            pipe.multi()
            pipe.hset(key, mapping={name: encoded[name] for name in changes})
            if job.status in FINISHED:
                pipe.srem(self.active, job_id)
            return job

        return self._guard(lambda: self.redis.transaction(attempt, key, value_from_callable=True))

    def list(self, limit: int, offset: int = 0) -> tuple[list[Job], int]:
        def read() -> tuple[list[Job], int]:
            ids = self.redis.zrevrange(self.index, offset, offset + limit - 1)
            pipe = self.redis.pipeline()
            for job_id in ids:
                pipe.hgetall(self._key(job_id.decode()))
            jobs = [self._decode(data) for data in pipe.execute() if data]
            return jobs, int(self.redis.zcard(self.index))

        return self._guard(read)

    def active_ids(self) -> list[str]:
        return sorted(member.decode() for member in self._guard(lambda: self.redis.smembers(self.active)))

    def ping(self) -> None:
        self._guard(self.redis.ping)

    def delete(self, job_id: str) -> None:
        def remove() -> None:
            pipe = self.redis.pipeline()
            pipe.delete(self._key(job_id))
            pipe.zrem(self.index, job_id)
            pipe.srem(self.active, job_id)
            pipe.execute()

        self._guard(remove)


def open_store(data_dir: Path, redis_url: str | None) -> JobStore:
    """The store for these settings: Redis when a URL is configured, else SQLite in `data_dir`."""
    return RedisJobStore(redis_url) if redis_url else SqlJobStore.in_data_dir(data_dir)


__all__ = [
    "CANCELLED", "FAILED", "FINISHED", "Job", "JobStore", "QUEUED", "RUNNING", "RedisJobStore", "STATUSES",
    "SUCCEEDED", "SqlJobStore", "StoreUnavailable", "open_store",
]  # fmt: skip
