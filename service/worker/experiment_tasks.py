"""The Celery task of one experiment run (one architecture x seed) and the sweep that re-runs lost runs.

As `cnnplan.service.worker.tasks` does for benchmarks: the message carries only the run's id; the run
is claimed (compare-and-set), trained under a lease renewed by a heartbeat, its progress written as it
goes, and finished with its measurements or its error. A worker killed mid-run leaves the lease to
expire; the sweep of every worker (started when it is ready, then every lease period) re-queues the run
and sends it again, up to ``job_max_attempts``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from celery import signals
from celery.exceptions import SoftTimeLimitExceeded

from cnnplan.service.settings import Settings
from cnnplan.service.worker.celery_app import EXPERIMENT_QUEUE, EXPERIMENT_TASK, app
from cnnplan.service.worker.recovery import Heartbeat, Sweeper
from cnnplan.service.worker.store import FAILED, RUNNING, SUCCEEDED, JobStore

logger = logging.getLogger("cnnplan.worker")
PROGRESS_EVERY_SECONDS = 0.5
_stores: dict[int, JobStore] = {}
_sweeper: Sweeper | None = None


def run_store() -> JobStore:
    """This process's store of experiment runs (one per process: connections are not shared across fork)."""
    from cnnplan.service.worker.experiment_jobs import open_experiment_stores

    pid = os.getpid()
    if pid not in _stores:
        settings: Settings = app.conf.cnnplan_settings
        _stores[pid] = open_experiment_stores(settings.data_dir, settings.redis_url)[1]
    return _stores[pid]


def send_run(run_id: str) -> None:
    """Queue one attempt of run `run_id` on the experiments queue."""
    app.send_task(EXPERIMENT_TASK, args=[run_id], queue=EXPERIMENT_QUEUE)


def execute_run(store: JobStore, run_id: str, attempt: int, request: dict[str, Any], settings: Settings) -> str:
    """Train one claimed attempt to its end; the status it finished with (or 'lost'/'cancelled')."""
    from cnnplan.service.experiments.results import environment
    from cnnplan.service.experiments.spec import ExperimentInputError, experiment_spec, run_architecture
    from cnnplan.service.experiments.training import RunCancelled

    last_write = 0.0

    def progress(fraction: float) -> None:
        nonlocal last_write
        now = time.monotonic()
        if now - last_write >= PROGRESS_EVERY_SECONDS and fraction < 1:
            last_write = now
            store.set_progress(run_id, attempt, fraction)

    with Heartbeat(store, run_id, attempt, settings.job_lease_seconds) as heartbeat:
        outcome, result, error = FAILED, None, None
        try:
            spec = experiment_spec(request["experiment"], settings.experiment_data_root)
            result = run_architecture(spec, int(request["index"]), int(request["seed"]),
                                      settings.experiment_data_root, progress, heartbeat.stopped.is_set)  # fmt: skip
            result["environment"] = environment()
            outcome = SUCCEEDED
        except RunCancelled:
            return "cancelled"
        except SoftTimeLimitExceeded:
            error = {"type": "time_limit", "field": None,
                     "message": f"the run exceeded its time limit of {settings.job_time_limit} s"}  # fmt: skip
        except ExperimentInputError as invalid:
            error = {"type": "invalid_request", "message": invalid.reason, "field": invalid.field}
        except Exception as unexpected:  # a bug or a resource error: fail this run, keep the worker serving
            logger.exception("experiment run %s failed", run_id)
            error = {"type": "internal_error", "message": f"{type(unexpected).__name__}: {unexpected}", "field": None}
    written = store.finish(run_id, attempt, outcome, result=result, error=error)
    return outcome if written else "lost"


@app.task(name=EXPERIMENT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def experiment_run(self: Any, run_id: str) -> dict[str, Any]:
    """Claim run `run_id` and train it; a run another live worker holds is looked at again after its lease.

    The task's result says what this delivery did, as a benchmark's does: ``attempt`` is the attempt it
    ran (None when it ran nothing), ``status`` how that attempt ended (``lost``: it ran to its end, but the
    run had been taken from it, so it wrote nothing)."""
    settings: Settings = app.conf.cnnplan_settings
    store = run_store()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    job = store.claim(run_id, worker, settings.job_lease_seconds, settings.job_max_attempts)
    if job is None:
        current = store.get(run_id)
        if current is not None and current.status == RUNNING and current.worker != worker:
            raise self.retry(countdown=settings.job_lease_seconds, max_retries=None)
        return {"run": run_id, "status": current.status if current else "unknown", "attempt": None}
    logger.info("experiment run %s attempt %d started on %s", run_id, job.attempts, worker)
    outcome = execute_run(store, run_id, job.attempts, job.request, settings)
    logger.info("experiment run %s attempt %d ended: %s", run_id, job.attempts, outcome)
    return {"run": run_id, "status": outcome, "attempt": job.attempts}


@signals.worker_ready.connect
def start_run_sweeper(sender: object = None, **_: object) -> None:
    """Sweep lost experiment runs from when the worker is ready (as the benchmark jobs' sweep)."""
    global _sweeper
    settings: Settings = app.conf.cnnplan_settings
    stale_after = settings.job_time_limit + 2 * settings.job_lease_seconds
    _sweeper = Sweeper(run_store, send_run, settings.job_lease_seconds, stale_after)
    _sweeper.start()


@signals.worker_shutdown.connect
def stop_run_sweeper(sender: object = None, **_: object) -> None:
    if _sweeper is not None:
        _sweeper.finished.set()


__all__ = ["execute_run", "experiment_run", "run_store", "send_run"]
