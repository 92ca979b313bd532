"""The job service behind /benchmarks: submit (checked, stored, queued), look up, list, cancel, delete.

Routes call these functions; they raise `ProblemError` for the answers a client can act on (404, 409,
422, 429, 503 with ``Retry-After`` when the broker or the store is down).

Ownership is generic (any job kind): every record carries the `owner` of the key that submitted it,
and a `Caller` sees only its own jobs; a job of another owner is a 404, exactly like an unknown id,
so nothing tells another owner's job apart from none. The admin sees all; on a server without keys
the caller is `Caller(None)` and every job is shared by every client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cnnplan.service.problems import ProblemError, invalid_field
from cnnplan.service.settings import Settings
from cnnplan.service.worker.estimate import estimate
from cnnplan.service.worker.schemas import BenchmarkRequest
from cnnplan.service.worker.store import (
    CANCELLED,
    FINISHED,
    QUEUED,
    ActiveJobsLimit,
    Job,
    JobStore,
    StoreUnavailable,
    open_store,
)  # fmt: skip

RETRY_AFTER_SECONDS = 10
"""Retry-After of a 503 when the broker or the job store is down, and of a 429 at the active-jobs cap."""


@dataclass(frozen=True)
class Caller:
    """Who asks: the `owner` name of its API key (None on a server without keys: everything is shared)
    and whether it is the admin (sees every owner's jobs)."""

    owner: str | None
    admin: bool = False

    def sees(self, job: Job) -> bool:
        """A job is visible to its owner, to the admin, and to everyone on a server without keys."""
        return self.owner is None or self.admin or job.owner == self.owner

    @property
    def name(self) -> str:
        """The owner, or ``anonymous`` on a server without keys (recorded as ``cancelled_by``)."""
        return self.owner or "anonymous"

    @property
    def listing_owner(self) -> str | None:
        """The owner filter of this caller's listings (None: every job)."""
        return None if self.owner is None or self.admin else self.owner


SHARED = Caller(None)
"""The caller on a server without keys."""


class JobService:
    """The job store and Celery app of one API app (made on first use)."""

    def __init__(self, settings: Settings) -> None:
        from cnnplan.service.worker.celery_app import make_celery

        self.settings = settings
        self.celery = make_celery(settings)
        self._store: JobStore | None = None

    @property
    def store(self) -> JobStore:
        if self._store is None:
            self._store = open_store(self.settings.data_dir, self.settings.redis_url)
        return self._store

    def check(self) -> str:
        """Raise when the broker or the store is down; else the broker URL (no credentials)."""
        from cnnplan.service.worker.celery_app import check_broker

        uri = check_broker(self.celery)
        self.store.ping()
        return uri

    def send(self, job_id: str) -> None:
        from cnnplan.service.worker.celery_app import BENCHMARK_QUEUE, BENCHMARK_TASK

        self.celery.send_task(BENCHMARK_TASK, args=[job_id], queue=BENCHMARK_QUEUE, retry=False)


_services: dict[int, tuple[Settings, JobService]] = {}
_services_lock = threading.Lock()


def job_service(settings: Settings) -> JobService:
    """One JobService per Settings object (an app's settings live as long as the app)."""
    with _services_lock:
        entry = _services.get(id(settings))
        if entry is None or entry[0] is not settings:
            entry = (settings, JobService(settings))
            _services[id(settings)] = entry
        return entry[1]


def check_broker_component(settings: Settings) -> dict[str, Any]:
    """/readyz component: the broker and the job store answer (optional: planning works without them)."""
    try:
        uri = job_service(settings).check()
    except Exception as error:
        return {"ok": False, "required": False, "detail": f"broker or job store down: {type(error).__name__}: {error}"}
    return {"ok": True, "required": False, "detail": f"{uri} reachable"}


def unavailable(error: Exception) -> ProblemError:
    return ProblemError(
        503,
        "Job queue unavailable",
        f"the broker or job store cannot be reached ({type(error).__name__}); planning and validation still work",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        code="broker_unavailable",
    )


def _time(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()


def job_dict(job: Job) -> dict[str, Any]:
    """A job as JSON-ready values (shape: `BenchmarkJob`)."""
    return {
        "id": job.id,
        "status": job.status,
        "progress": job.progress,
        "created_at": _time(job.created_at),
        "updated_at": _time(job.updated_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
        "attempts": job.attempts,
        "worker": job.worker,
        "request": job.request,
        "result": job.result,
        "error": job.error,
        "owner": job.owner,
        "reason": job.reason,
        "cancelled_by": job.cancelled_by,
        "estimate": job.estimate,
    }


def check_limits(body: BenchmarkRequest, settings: Settings) -> None:
    """The settings' limits on batch sizes, iterations and warm-up (422 ``limit_exceeded`` naming the field
    past its limit), and distinct batch sizes (422 ``validation_error``, as the schema's uniqueItems says)."""
    if len(body.batch_sizes) > settings.max_benchmark_batch_sizes:
        reason = f"at most {settings.max_benchmark_batch_sizes} batch sizes are accepted"
        raise invalid_field("batch_sizes", reason, code="limit_exceeded")
    for index, size in enumerate(body.batch_sizes):
        if size > settings.max_benchmark_batch_size:
            reason = f"must be in [1, {settings.max_benchmark_batch_size}], got {size}"
            raise invalid_field(f"batch_sizes[{index}]", reason, code="limit_exceeded")
        if size in body.batch_sizes[:index]:
            raise invalid_field(f"batch_sizes[{index}]", f"batch size {size} is listed twice")
    if body.iterations > settings.max_benchmark_iterations:
        reason = f"must be at most {settings.max_benchmark_iterations}, got {body.iterations}"
        raise invalid_field("iterations", reason, code="limit_exceeded")
    if body.warmup > settings.max_benchmark_warmup:
        reason = f"must be at most {settings.max_benchmark_warmup}, got {body.warmup}"
        raise invalid_field("warmup", reason, code="limit_exceeded")


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn an unreachable job store (or broker) into the 503 problem with ``Retry-After``."""
    try:
        yield
    except (StoreUnavailable, OSError) as error:
        raise unavailable(error) from None


def visible_job(store: JobStore, caller: Caller, job_id: str, noun: str = "benchmark job") -> Job:
    """The job `caller` may see; 404 when there is none or it belongs to another owner (the same answer)."""
    job = store.get(job_id)
    if job is None or not caller.sees(job):
        raise ProblemError(404, "Not found", f"no {noun} {job_id!r}", field="id", code="not_found")
    return job


def create_owned(
    settings: Settings,
    caller: Caller,
    request: dict[str, Any],
    idempotency_key: str | None = None,
    estimate: dict[str, Any] | None = None,
    store: JobStore | None = None,
    body_of: Callable[[dict[str, Any]], Any] = lambda request: request,
) -> tuple[Job, bool]:
    """Check the broker and the store, then store a queued job owned by `caller` in `store` (default: the
    benchmarks'), within the caller's cap on active jobs of that store (``job_max_active_per_key``, with
    keys configured: 429 past it); 503 when down. A repeated `idempotency_key` of the same caller gives
    back the job the first submission made (409 when its body differs: `body_of` of the stored request
    and of `request`, the whole request by default). Also whether this call made the job (False: a repeat)."""
    service = job_service(settings)
    cap = settings.job_max_active_per_key if caller.owner is not None else None
    try:
        service.check()
        job, made = (store or service.store).create_or_find(
            request, owner=caller.owner, max_active=cap, idempotency_key=idempotency_key, estimate=estimate
        )
    except ActiveJobsLimit as refused:
        reason = (f"at most {cap} queued or running jobs per API key; {refused.active} are active now: wait for "
                  "one to finish, or cancel one")  # fmt: skip
        raise ProblemError(
            429, "Too Many Requests", reason, field="Authorization", reason=reason, code="active_jobs_limit",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None  # fmt: skip
    except Exception as error:
        raise unavailable(error) from None
    if body_of(job.request) != body_of(request):  # the key of an earlier submission, sent with another body
        raise ProblemError(
            409, "Idempotency-Key reused", f"the Idempotency-Key was used for job {job.id} with a different body",
            field="Idempotency-Key", code="idempotency_key_reused",
        )  # fmt: skip
    return job, made


def queue_or_forget(
    settings: Settings, job: Job, send: Callable[[str], None], store: JobStore | None = None, forget: bool = True
) -> None:
    """`send(job.id)` (queue its work); if the broker refuses, answer 503, deleting the job from `store`
    (default: the benchmarks') again when `forget` (a job this request made; a repeat's job stays)."""
    try:
        send(job.id)
    except Exception as error:
        if forget:
            (store or job_service(settings).store).delete(job.id)
        raise unavailable(error) from None


def submit_benchmark(
    body: BenchmarkRequest, settings: Settings, caller: Caller = SHARED, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Check the body against the limits and the solver, store the job and queue it; the queued job's dict
    (a repeated `idempotency_key`: the job the first submission made, queued again only if still queued)."""
    from cnnplan.service.worker.spec import network_spec
    from cnnplan.solver.analysis import analyse

    check_limits(body, settings)
    request = body.model_dump(mode="json", exclude_none=True, warnings=False)
    spec = network_spec(request)  # bad networks are a 422 now, not a failed job later
    analysis = analyse(spec.layers, spec.image_size, spec.in_channels, spec.field)
    estimated = estimate(analysis.flops, request)  # before it is stored and queued: the estimate precedes the run
    job, made = create_owned(settings, caller, request, idempotency_key, estimated)
    if job.status == QUEUED:  # a replay's first message may be lost with the request: a duplicate is harmless
        queue_or_forget(settings, job, job_service(settings).send, forget=made)
    return job_dict(job)


def list_jobs(settings: Settings, caller: Caller, limit: int, offset: int) -> dict[str, Any]:
    """A page of the jobs `caller` sees, newest first (shape: `BenchmarkJobList`)."""
    with store_errors():
        jobs, total = job_service(settings).store.list(limit, offset, owner=caller.listing_owner)
    return {"items": [job_dict(job) for job in jobs], "total": total, "limit": limit, "offset": offset}


def get_job(settings: Settings, caller: Caller, job_id: str, noun: str = "benchmark job") -> dict[str, Any]:
    """One job's dict; 404 when there is none or `caller` does not own it."""
    with store_errors():
        return job_dict(visible_job(job_service(settings).store, caller, job_id, noun))


def cancel_job(
    settings: Settings, caller: Caller, job_id: str, reason: str | None = None, noun: str = "benchmark job"
) -> dict[str, Any]:
    """Cancel a queued or running benchmark job (`cancel_record`); its dict."""
    return job_dict(cancel_record(job_service(settings).store, caller, job_id, reason, noun))


def cancel_record(store: JobStore, caller: Caller, job_id: str, reason: str | None, noun: str) -> Job:
    """Cancel a queued or running job of `store`, keeping its record with `reason` and ``cancelled_by``
    (idempotent: an already cancelled job is answered as it is); 404 when not visible, 409 when it had
    already finished, 503 when the store is down."""
    with store_errors():
        visible_job(store, caller, job_id, noun)
        job = store.cancel(job_id, by=caller.name, reason=reason or "cancelled by request")
    if job is None:  # deleted meanwhile
        raise ProblemError(404, "Not found", f"no {noun} {job_id!r}", field="id", code="not_found")
    if job.status in FINISHED and job.status != CANCELLED:
        raise ProblemError(
            409, "Already finished", f"job {job_id} already {job.status}", field="id", code="job_finished"
        )
    return job


def delete_job(settings: Settings, caller: Caller, job_id: str, noun: str = "benchmark job") -> None:
    """Remove a benchmark job's record and result (`delete_record`)."""
    delete_record(job_service(settings).store, caller, job_id, noun)


def delete_record(store: JobStore, caller: Caller, job_id: str, noun: str) -> Job:
    """Remove a job's record and result from `store`; a queued or running one is cancelled first (its
    worker stops at the next heartbeat). The job as it was; 404 when not visible, 503 when the store is
    down; afterwards the job is a 404 for everyone."""
    with store_errors():
        job = visible_job(store, caller, job_id, noun)
        if job.status not in FINISHED:
            store.cancel(job_id, by=caller.name, reason="deleted")
        store.delete(job_id)
    return job
