"""The Celery task: claim a job, run its benchmark under a lease, record the result or the error.

The message carries only the job id (JSON); the request itself is read from the job store and
re-validated through the API's request models before anything is built.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from cnnplan.service.settings import Settings
from cnnplan.service.worker.celery_app import BENCHMARK_QUEUE, BENCHMARK_TASK, app
from cnnplan.service.worker.recovery import Heartbeat
from cnnplan.service.worker.store import FAILED, RUNNING, SUCCEEDED, JobStore, open_store

logger = logging.getLogger("cnnplan.worker")
PROGRESS_EVERY_SECONDS = 0.25
_stores: dict[int, JobStore] = {}


def worker_settings() -> Settings:
    """The settings this worker's Celery app was made with."""
    return app.conf.cnnplan_settings


def worker_store() -> JobStore:
    """This process's job store (one per process: connections are not shared across fork)."""
    pid = os.getpid()
    if pid not in _stores:
        settings = worker_settings()
        _stores[pid] = open_store(settings.data_dir, settings.redis_url)
    return _stores[pid]


def send_job(job_id: str) -> None:
    """Queue one run of `job_id` on the benchmarks queue."""
    app.send_task(BENCHMARK_TASK, args=[job_id], queue=BENCHMARK_QUEUE)


def _error(kind: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"type": kind, "message": message, "field": field}


def _options(request: dict[str, Any]):
    from cnnplan.service.worker.benchmark import BenchmarkOptions

    return BenchmarkOptions(
        device=request.get("device", "auto"),
        dtype=request.get("dtype", "float32"),
        channels_last=bool(request.get("channels_last", False)),
        compile=bool(request.get("compile", False)),
        mode=request.get("mode", "inference"),
        batch_sizes=tuple(request.get("batch_sizes", (1,))),
        warmup=int(request.get("warmup", 2)),
        iterations=int(request.get("iterations", 10)),
    )


def run_job(store: JobStore, job_id: str, attempt: int, request: dict[str, Any], settings: Settings) -> str:
    """Run one claimed attempt to its end; the status it finished with (or 'lost' if taken from it)."""
    from cnnplan.service.problems import ProblemError
    from cnnplan.service.worker.benchmark import JobCancelled, run_benchmark
    from cnnplan.service.worker.memory import BenchmarkError, DoesNotFitError
    from cnnplan.service.worker.spec import network_spec
    from cnnplan.solver.errors import SolverError

    last_write = 0.0

    def progress(fraction: float) -> None:
        nonlocal last_write
        now = time.monotonic()
        if now - last_write >= PROGRESS_EVERY_SECONDS and fraction < 1:
            last_write = now
            store.set_progress(job_id, attempt, fraction)

    with Heartbeat(store, job_id, attempt, settings.job_lease_seconds) as heartbeat:
        outcome, result, error = FAILED, None, None
        try:
            result = run_benchmark(network_spec(request), _options(request), progress, heartbeat.stopped.is_set)
            outcome = SUCCEEDED
        except JobCancelled:
            return "cancelled"
        except DoesNotFitError as refused:
            error = _error("does_not_fit", str(refused), refused.field)
        except BenchmarkError as failed:
            error = _error("benchmark_error", str(failed), failed.field)
        except SoftTimeLimitExceeded:
            error = _error("time_limit", f"the job exceeded its time limit of {settings.job_time_limit} s")
        except (SolverError, ProblemError) as invalid:
            error = _error("invalid_request", str(invalid), getattr(invalid, "field", None))
        except Exception as unexpected:  # a bug: fail this job, keep the worker serving
            logger.exception("job %s failed", job_id)
            error = _error("internal_error", f"{type(unexpected).__name__}: {unexpected}")
    written = store.finish(job_id, attempt, outcome, result=result, error=error)
    return outcome if written else "lost"


@app.task(name=BENCHMARK_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def benchmark(self: Any, job_id: str) -> dict[str, Any]:
    """Claim `job_id` and run it; a job another live worker is running is looked at again after its lease.

    The task's result says what this delivery did: ``attempt`` is the attempt it ran (None when it ran
    nothing: the job was finished, cancelled or unknown) and ``status`` how that run ended (``lost``: it
    ran to the end but the job had been taken from it, so its result was not written)."""
    settings = worker_settings()
    store = worker_store()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    job = store.claim(job_id, worker, settings.job_lease_seconds, settings.job_max_attempts)
    if job is None:
        current = store.get(job_id)
        if current is not None and current.status == RUNNING and current.worker != worker:
            raise self.retry(countdown=settings.job_lease_seconds, max_retries=None)
        return {"job": job_id, "status": current.status if current else "unknown", "attempt": None}
    logger.info("job %s attempt %d started on %s", job_id, job.attempts, worker)
    outcome = run_job(store, job_id, job.attempts, job.request, settings)
    logger.info("job %s attempt %d ended: %s", job_id, job.attempts, outcome)
    return {"job": job_id, "status": outcome, "attempt": job.attempts}


__all__ = ["benchmark", "run_job", "send_job", "worker_settings", "worker_store"]
