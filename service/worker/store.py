"""Durable job records: status, progress, result or error, attempts and the running attempt's lease.

One record per job, with its `owner` (the name of the API key that submitted it; None on a server
without keys, where jobs are shared). Every state change is a compare-and-set transition (`JobStore._transition`), so
two workers (a redelivered message, a re-queue after a lost worker) can never both run a job or
overwrite each other. Embedded: a SQLite file in the data directory (WAL, ``BEGIN IMMEDIATE``);
distributed: Redis hashes plus sorted sets (all jobs, each owner's) for newest-first listing and sets
of active (queued or running) ids, overall and per owner, so a per-owner cap on active jobs is one
atomic check shared by every API process.
"""

from __future__ import annotations

import builtins
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


class DuplicateJob(Exception):
    """An insert found a job with the same id (a concurrent submission with the same idempotency key)."""


def idempotent_id(owner: str | None, idempotency_key: str) -> str:
    """The job id of a submission with an idempotency key: a UUID5 of the owner and the key (so two owners'
    keys never meet, and one owner cannot find another's job from a key)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cnnplan-job:{owner or ''}:{idempotency_key}"))


class ActiveJobsLimit(Exception):
    """`JobStore.create` refused: the owner already has `active` queued or running jobs (its cap)."""

    def __init__(self, owner: str, active: int) -> None:
        self.owner, self.active = owner, active
        super().__init__(f"{owner} already has {active} queued or running jobs")


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
    owner: str | None = None
    reason: str | None = None
    cancelled_by: str | None = None
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

    def list(self, limit: int, offset: int = 0, owner: str | None = None) -> tuple[list[Job], int]:
        """Jobs newest first, and the total count: only `owner`'s, or every job when `owner` is None."""
        raise NotImplementedError

    def active_ids(self) -> builtins.list[str]:  # `list` is a method here
        """Ids of queued and running jobs."""
        raise NotImplementedError

    def active_count(self, owner: str) -> int:
        """How many of `owner`'s jobs are queued or running."""
        raise NotImplementedError

    def ping(self) -> None:
        """Raise `StoreUnavailable` when the store cannot be reached."""
        raise NotImplementedError

    def delete(self, job_id: str) -> None:
        """Remove a job's record and result (a worker still running it loses its lease and stops)."""
        raise NotImplementedError

    def _insert_capped(self, job: Job, max_active: int) -> None:
        """Insert `job` unless its owner already has `max_active` active jobs (`ActiveJobsLimit`), atomically."""
        raise NotImplementedError

    def create(
        self,
        request: dict[str, Any],
        *,
        owner: str | None = None,
        max_active: int | None = None,
        idempotency_key: str | None = None,
        estimate: dict[str, Any] | None = None,
    ) -> Job:
        """A new queued job for `request` owned by `owner`; with `max_active` (and an owner), refused with
        `ActiveJobsLimit` when the owner already has that many queued or running jobs (checked atomically).

        With an `idempotency_key` the id is ``uuid5(owner, key)``: a repeated submission (a client retrying
        a request whose answer was lost) gets the job the first one made, as it is now, instead of a second."""
        return self.create_or_find(
            request, owner=owner, max_active=max_active, idempotency_key=idempotency_key, estimate=estimate
        )[0]

    def create_or_find(
        self,
        request: dict[str, Any],
        *,
        owner: str | None = None,
        max_active: int | None = None,
        idempotency_key: str | None = None,
        estimate: dict[str, Any] | None = None,
    ) -> tuple[Job, bool]:
        """`create`, and whether this call made the job (False: a repeated `idempotency_key` found it)."""
        now = time.time()
        job_id = str(uuid.uuid4()) if idempotency_key is None else idempotent_id(owner, idempotency_key)
        job = Job(id=job_id, request=request, created_at=now, updated_at=now, owner=owner, estimate=estimate)
        if idempotency_key is not None and (existing := self._get(job_id)) is not None:
            return existing, False
        try:
            if max_active is None or owner is None:
                self._insert(job)
            else:
                self._insert_capped(job, max_active)
        except DuplicateJob:
            existing = self._get(job_id)
            if existing is None:  # made and deleted in between
                raise StoreUnavailable(f"job {job_id} changed while it was created; try again") from None
            return existing, False
        return job, True

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

    def cancel(self, job_id: str, by: str | None = None, reason: str | None = None) -> Job | None:
        """queued/running -> cancelled, recording `reason` and who cancelled (`by`); a finished job is
        returned unchanged; None if unknown. A worker running it sees the change at its next heartbeat."""
        now = time.time()

        def transition(job: Job) -> dict[str, Any] | None:
            if job.status in FINISHED:
                return None
            return {"status": CANCELLED, "finished_at": now, "updated_at": now, "lease_expires_at": None,
                    "reason": reason or "cancelled", "cancelled_by": by}  # fmt: skip

        return self._cas(job_id, transition) or self._get(job_id)

    def settle(self, job_id: str, status: str) -> bool:
        """queued/running -> `status` (succeeded or failed) for a record whose outcome is decided elsewhere
        (an experiment, by its runs), so it leaves its owner's active jobs; False when already finished."""
        now = time.time()

        def transition(job: Job) -> dict[str, Any] | None:
            if job.status in FINISHED:
                return None
            return {"status": status, "finished_at": now, "lease_expires_at": None}

        return self._cas(job_id, transition) is not None

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
            Column("error", Text), Column("estimate", Text), Column("owner", String(64), index=True), Column("reason", Text),
            Column("cancelled_by", String(64)),
        )  # fmt: skip
        try:
            metadata.create_all(self.engine)
            self._add_missing_columns()
        except Exception as error:
            raise StoreUnavailable(f"job store {self.engine.url!r} cannot be opened: {error}") from error

    def _add_missing_columns(self) -> None:
        """A table made by an older version lacks the newer nullable columns (owner, reason, ...): add them."""
        from sqlalchemy import inspect

        present = {column["name"] for column in inspect(self.engine).get_columns(self.table.name)}
        with self.engine.begin() as connection:
            for column in self.table.columns:
                if column.name not in present:
                    kind = column.type.compile(self.engine.dialect)
                    connection.exec_driver_sql(f"ALTER TABLE {self.table.name} ADD COLUMN {column.name} {kind}")

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> SqlJobStore:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{data_dir / 'jobs.sqlite'}")

    def _job(self, row: Any) -> Job:
        return Job.from_record(dict(row._mapping))

    def _insert(self, job: Job) -> None:
        from sqlalchemy.exc import IntegrityError

        try:
            with self.engine.begin() as connection:
                connection.execute(self.table.insert().values(**job.to_record()))
        except IntegrityError:
            raise DuplicateJob(job.id) from None

    def _insert_capped(self, job: Job, max_active: int) -> None:
        from sqlalchemy import func, select

        table = self.table
        active = (table.c.owner == job.owner) & table.c.status.in_([QUEUED, RUNNING])
        from sqlalchemy.exc import IntegrityError

        try:
            with self.engine.begin() as connection:  # BEGIN IMMEDIATE: one writer at a time, across processes
                count = connection.execute(select(func.count()).select_from(table).where(active)).scalar_one()
                if count >= max_active:
                    raise ActiveJobsLimit(str(job.owner), int(count))
                connection.execute(table.insert().values(**job.to_record()))
        except IntegrityError:
            raise DuplicateJob(job.id) from None

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

    def list(self, limit: int, offset: int = 0, owner: str | None = None) -> tuple[list[Job], int]:
        from sqlalchemy import func, select, true

        table = self.table
        where = true() if owner is None else table.c.owner == owner
        order = (table.c.created_at.desc(), table.c.id.desc())
        with self.engine.connect() as connection:
            rows = connection.execute(table.select().where(where).order_by(*order).limit(limit).offset(offset)).all()
            total = connection.execute(select(func.count()).select_from(table).where(where)).scalar_one()
        return [self._job(row) for row in rows], int(total)

    def active_count(self, owner: str) -> int:
        from sqlalchemy import func, select

        active = (self.table.c.owner == owner) & self.table.c.status.in_([QUEUED, RUNNING])
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(self.table).where(active)).scalar_one())

    def active_ids(self) -> builtins.list[str]:  # `list` is a method here
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
    """Jobs as Redis hashes ``<prefix>job:<id>``, sorted sets by creation time (``<prefix>jobs``, and
    ``<prefix>jobs:owner:<owner>``) and sets of active ids (``<prefix>jobs:active``, ``...:active:<owner>``)."""

    def __init__(self, url: str, prefix: str = "cnnplan:") -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        self.errors = (redis.RedisError, OSError)
        self.prefix = prefix
        self.index, self.active = f"{prefix}jobs", f"{prefix}jobs:active"

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _owned(self, owner: str) -> str:
        return f"{self.prefix}jobs:owner:{owner}"

    def _owned_active(self, owner: str) -> str:
        return f"{self.prefix}jobs:active:{owner}"

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

    def _queue_insert(self, pipe: Any, job: Job) -> None:
        pipe.hset(self._key(job.id), mapping=self._encode(job))
        pipe.zadd(self.index, {job.id: job.created_at})
        pipe.sadd(self.active, job.id)
        if job.owner is not None:
            pipe.zadd(self._owned(job.owner), {job.id: job.created_at})
            pipe.sadd(self._owned_active(job.owner), job.id)

    def _insert(self, job: Job) -> None:
        self._insert_capped(job, None)

    def _insert_capped(self, job: Job, max_active: int | None) -> None:
        key = self._key(job.id)
        watched = [key] if max_active is None else [key, self._owned_active(str(job.owner))]

        def attempt(pipe: Any) -> None:  # WATCHed: a concurrent insert (or finish) of these keys retries it
            if pipe.exists(key):
                raise DuplicateJob(job.id)
            if max_active is not None and (count := int(pipe.scard(watched[1]))) >= max_active:
                raise ActiveJobsLimit(str(job.owner), count)
            pipe.multi()
            self._queue_insert(pipe, job)

        self._guard(lambda: self.redis.transaction(attempt, *watched))

    def _get(self, job_id: str) -> Job | None:
        data = self._guard(lambda: self.redis.hgetall(self._key(job_id)))
        return self._decode(data) if data else None

    def _cas(self, job_id: str, transition: Transition) -> Job | None:
        key = self._key(job_id)

        def attempt(pipe: Any) -> Any:  # Job | None; redis' stubs type the callable as returning None
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
                if job.owner is not None:
                    pipe.srem(self._owned_active(job.owner), job_id)
            return job

        return self._guard(lambda: self.redis.transaction(attempt, key, value_from_callable=True))

    def list(self, limit: int, offset: int = 0, owner: str | None = None) -> tuple[list[Job], int]:
        index = self.index if owner is None else self._owned(owner)

        def read() -> tuple[list[Job], int]:
            ids = self.redis.zrevrange(index, offset, offset + limit - 1)
            pipe = self.redis.pipeline()
            for job_id in ids:
                pipe.hgetall(self._key(job_id.decode()))  # type: ignore[union-attr]  # bytes: no decode_responses
            jobs = [self._decode(data) for data in pipe.execute() if data]
            return jobs, int(self.redis.zcard(index))

        return self._guard(read)

    def active_ids(self) -> builtins.list[str]:  # `list` is a method here
        return sorted(member.decode() for member in self._guard(lambda: self.redis.smembers(self.active)))

    def active_count(self, owner: str) -> int:
        return int(self._guard(lambda: self.redis.scard(self._owned_active(owner))))

    def ping(self) -> None:
        self._guard(self.redis.ping)

    def delete(self, job_id: str) -> None:
        job = self._get(job_id)

        def remove() -> None:
            pipe = self.redis.pipeline()
            pipe.delete(self._key(job_id))
            pipe.zrem(self.index, job_id)
            pipe.srem(self.active, job_id)
            if job is not None and job.owner is not None:
                pipe.zrem(self._owned(job.owner), job_id)
                pipe.srem(self._owned_active(job.owner), job_id)
            pipe.execute()

        self._guard(remove)


def open_store(data_dir: Path, redis_url: str | None) -> JobStore:
    """The store for these settings: Redis when a URL is configured, else SQLite in `data_dir`."""
    return RedisJobStore(redis_url) if redis_url else SqlJobStore.in_data_dir(data_dir)


__all__ = [
    "ActiveJobsLimit", "CANCELLED", "DuplicateJob", "idempotent_id", "FAILED", "FINISHED", "Job", "JobStore", "QUEUED", "RUNNING", "RedisJobStore", "STATUSES",
    "SUCCEEDED", "SqlJobStore", "StoreUnavailable", "open_store",
]  # fmt: skip
