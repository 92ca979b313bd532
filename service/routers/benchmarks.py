"""/benchmarks: benchmark jobs (submit, status, list, cancel), run by the Celery worker (README: "The benchmark worker")."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from ..dependencies import AppSettings, require_api_key
from ..problems import ProblemError, problem_responses
from ..responses import FastJSONResponse
from ..schemas import PlanRequestModel, ValidateRequestModel
from ..security import limit_job_submissions
from ..settings import Settings
from ..worker.store import CANCELLED, FINISHED, Job, JobStore, StoreUnavailable, open_store

router = APIRouter(tags=["benchmarks"], dependencies=[Depends(require_api_key)])

JobId = Annotated[str, Path(min_length=1, max_length=64, description="A job's id (a UUID).")]

RETRY_AFTER_SECONDS = 10
"""Retry-After of a 503 when the broker or the job store is down."""


class BenchmarkRequest(BaseModel):
    """A network (exactly one of ``plan`` or ``architecture``) and how to measure it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    plan: PlanRequestModel | None = Field(None, description="A POST /plan body: benchmark the planned network.")
    architecture: ValidateRequestModel | None = Field(None, description="A POST /validate body: benchmark that network.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = CUDA when the worker has it, else CPU.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Half precisions run under autocast.")
    channels_last: bool = False
    compile: bool = Field(False, description="torch.compile the module first (compilation is not timed).")
    mode: Literal["inference", "training"] = Field("inference", description="Forward only, or a full SGD step.")
    batch_sizes: list[int] = Field([1], min_length=1, max_length=64, description="Distinct batch sizes, each >= 1.")
    warmup: int = Field(2, ge=0, description="Untimed steps per batch size.")
    iterations: int = Field(10, ge=1, description="Timed steps per batch size.")


class BatchResult(BaseModel):
    batch_size: int
    latency_ms_p50: float
    latency_ms_p90: float
    images_per_second: float
    tflops_per_second: float = Field(description="Achieved: forward FLOPs (x3 when training) x batch / mean latency.")
    peak_memory_bytes: int = Field(description="CUDA allocator peak on GPU; process peak RSS on CPU.")
    memory_estimate_bytes: int


class BenchmarkEnvironment(BaseModel):
    model_config = ConfigDict(extra="allow")

    device: str
    device_name: str
    torch: str
    cuda: str | None
    cudnn: int | None
    driver: str | None
    cpu_threads: int
    python: str


class BenchmarkResult(BaseModel):
    params: int
    flops: int = Field(description="Forward FLOPs of one image (the solver's count; equals torch's FlopCounterMode).")
    image_size: list[int]
    in_channels: int
    options: dict[str, Any]
    environment: BenchmarkEnvironment
    results: list[BatchResult]


class JobError(BaseModel):
    type: str
    message: str
    field: str | None = None


class BenchmarkJob(BaseModel):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int
    worker: str | None = Field(description="host:pid of the process running (or that last ran) the job.")
    request: dict[str, Any]
    result: BenchmarkResult | None
    error: JobError | None


class BenchmarkJobList(BaseModel):
    items: list[BenchmarkJob]
    total: int
    limit: int
    offset: int


class JobService:
    """The job store and Celery app of one API app (made on first use)."""

    def __init__(self, settings: Settings) -> None:
        from ..worker.celery_app import make_celery

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
        from ..worker.celery_app import check_broker

        uri = check_broker(self.celery)
        self.store.ping()
        return uri

    def send(self, job_id: str) -> None:
        from ..worker.celery_app import BENCHMARK_QUEUE, BENCHMARK_TASK

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
    return None if value is None else datetime.fromtimestamp(value, timezone.utc).isoformat()


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
    }


def invalid(field: str, reason: str) -> ProblemError:
    return ProblemError(422, "Invalid request", f"{field}: {reason}", field=field, reason=reason, code="validation_error")


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


@router.post(
    "/benchmarks",
    status_code=202,
    dependencies=[Depends(limit_job_submissions)],
    response_model=BenchmarkJob,
    responses=problem_responses(401, 413, 422, 429, 503),
    summary="Queue a benchmark of a planned network or an architecture",
)
def post_benchmark(body: BenchmarkRequest, settings: AppSettings) -> FastJSONResponse:
    """202 with the queued job and its ``Location``; 503 with ``Retry-After`` when the broker is down."""
    from solver.analysis import analyse

    from ..worker.spec import network_spec

    check_limits(body, settings)
    request = body.model_dump(mode="json", exclude_none=True, warnings=False)
    spec = network_spec(request)  # bad networks are a 422 now, not a failed job later
    analyse(spec.layers, spec.image_size, spec.in_channels, spec.field)
    service = job_service(settings)
    try:
        service.check()
        job = service.store.create(request)
    except Exception as error:
        raise unavailable(error) from None
    try:
        service.send(job.id)
    except Exception as error:
        service.store.delete(job.id)
        raise unavailable(error) from None
    return FastJSONResponse(job_dict(job), status_code=202, headers={"Location": f"/benchmarks/{job.id}"})


@router.get(
    "/benchmarks",
    response_model=BenchmarkJobList,
    responses=problem_responses(401, 422, 503),
    summary="List benchmark jobs, newest first",
)
def list_benchmarks(
    settings: AppSettings,
    limit: int = Query(20, ge=1, le=100, description="Jobs per page."),
    offset: int = Query(0, ge=0, le=10**9, description="Jobs to skip."),
) -> FastJSONResponse:
    try:
        jobs, total = job_service(settings).store.list(limit, offset)
    except (StoreUnavailable, OSError) as error:
        raise unavailable(error) from None
    return FastJSONResponse({"items": [job_dict(job) for job in jobs], "total": total, "limit": limit, "offset": offset})


@router.get(
    "/benchmarks/{job_id}",
    response_model=BenchmarkJob,
    responses=problem_responses(401, 404, 422, 503),
    summary="A benchmark job: status, progress, result or error",
)
def get_benchmark(job_id: JobId, settings: AppSettings) -> FastJSONResponse:
    try:
        job = _lookup(job_service(settings).store, job_id)
    except (StoreUnavailable, OSError) as error:
        raise unavailable(error) from None
    return FastJSONResponse(job_dict(job))


@router.delete(
    "/benchmarks/{job_id}",
    response_model=BenchmarkJob,
    responses=problem_responses(401, 404, 422, 409, 503),
    summary="Cancel a queued or running benchmark job",
)
def cancel_benchmark(job_id: JobId, settings: AppSettings) -> FastJSONResponse:
    """200 with the cancelled job (also when it already was); 409 when it had already finished."""
    store = job_service(settings).store
    try:
        _lookup(store, job_id)
        job = store.cancel(job_id)
    except (StoreUnavailable, OSError) as error:
        raise unavailable(error) from None
    assert job is not None
    if job.status in FINISHED and job.status != CANCELLED:
        raise ProblemError(409, "Already finished", f"job {job_id} already {job.status}", field="id", code="job_finished")
    return FastJSONResponse(job_dict(job))


__all__ = ["BenchmarkRequest", "check_broker_component", "job_service", "router"]
