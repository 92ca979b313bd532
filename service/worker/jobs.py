"""The job service behind /benchmarks: submit (checked, stored, queued), look up, list and cancel jobs.

Routes call these functions; they raise `ProblemError` for the answers a client can act on (404, 409,
422, 503 with ``Retry-After`` when the broker or the store is down).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from cnnplan.service.problems import ProblemError
from cnnplan.service.settings import Settings
from cnnplan.service.worker.estimate import estimate
from cnnplan.service.worker.schemas import BenchmarkRequest
from cnnplan.service.worker.store import CANCELLED, FINISHED, Job, JobStore, StoreUnavailable, open_store

RETRY_AFTER_SECONDS = 10
"""Retry-After of a 503 when the broker or the job store is down."""


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
        "estimate": job.estimate,
    }


def invalid(field: str, reason: str) -> ProblemError:
    return ProblemError(
        422, "Invalid request", f"{field}: {reason}", field=field, reason=reason, code="validation_error"
    )


def check_limits(body: BenchmarkRequest, settings: Settings) -> None:
    """The settings' limits on batch sizes, iterations and warm-up; 422 naming the field past its limit."""
    if (body.plan is None) == (body.architecture is None):
        raise invalid("plan", "give exactly one of plan or architecture")
    if len(body.batch_sizes) > settings.max_benchmark_batch_sizes:
        raise invalid("batch_sizes", f"at most {settings.max_benchmark_batch_sizes} batch sizes are accepted")
    for index, size in enumerate(body.batch_sizes):
        if not 1 <= size <= settings.max_benchmark_batch_size:
            raise invalid(f"batch_sizes[{index}]", f"must be in [1, {settings.max_benchmark_batch_size}], got {size}")
        if size in body.batch_sizes[:index]:
            raise invalid(f"batch_sizes[{index}]", f"batch size {size} is listed twice")
    if body.iterations > settings.max_benchmark_iterations:
        raise invalid("iterations", f"must be at most {settings.max_benchmark_iterations}, got {body.iterations}")
    if body.warmup > settings.max_benchmark_warmup:
        raise invalid("warmup", f"must be at most {settings.max_benchmark_warmup}, got {body.warmup}")


def _lookup(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    if job is None:
        raise ProblemError(404, "Not found", f"no benchmark job {job_id!r}", field="id", code="not_found")
    return job


def submit_benchmark(body: BenchmarkRequest, settings: Settings) -> dict[str, Any]:
    """Check the body against the limits and the solver, store the job and queue it; the queued job's dict."""
    from cnnplan.service.worker.spec import network_spec
    from cnnplan.solver.analysis import analyse

    check_limits(body, settings)
    request = body.model_dump(mode="json", exclude_none=True, warnings=False)
    spec = network_spec(request)  # bad networks are a 422 now, not a failed job later
    analysis = analyse(spec.layers, spec.image_size, spec.in_channels, spec.field)
    estimated = estimate(analysis.flops, request)  # before it is stored and queued: the estimate precedes the run
    service = job_service(settings)
    try:
        service.check()
        job = service.store.create(request, estimated)
    except Exception as error:
        raise unavailable(error) from None
    try:
        service.send(job.id)
    except Exception as error:
        service.store.delete(job.id)
        raise unavailable(error) from None
    return job_dict(job)


def list_jobs(settings: Settings, limit: int, offset: int) -> dict[str, Any]:
    """A page of jobs, newest first (shape: `BenchmarkJobList`)."""
    try:
        jobs, total = job_service(settings).store.list(limit, offset)
    except (StoreUnavailable, OSError) as error:
        raise unavailable(error) from None
    return {"items": [job_dict(job) for job in jobs], "total": total, "limit": limit, "offset": offset}


def get_job(settings: Settings, job_id: str) -> dict[str, Any]:
    """One job's dict; 404 when there is none."""
    try:
        return job_dict(_lookup(job_service(settings).store, job_id))
    except (StoreUnavailable, OSError) as error:
        raise unavailable(error) from None


def cancel_job(settings: Settings, job_id: str) -> dict[str, Any]:
    """Cancel a queued or running job (idempotent); 404 when there is none, 409 when it had already finished."""
    store = job_service(settings).store
    reason = {"type": "cancelled", "field": None,
              "message": f"cancelled through the API (DELETE /benchmarks/{job_id}) by a client of this service"}  # fmt: skip
    try:
        _lookup(store, job_id)
        job = store.cancel(job_id, reason)
    except (StoreUnavailable, OSError) as error:
        raise unavailable(error) from None
    assert job is not None
    if job.status in FINISHED and job.status != CANCELLED:
        raise ProblemError(
            409, "Already finished", f"job {job_id} already {job.status}", field="id", code="job_finished"
        )
    return job_dict(job)
