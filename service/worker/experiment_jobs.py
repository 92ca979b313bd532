"""The job service behind /experiments: submit (checked, stored, one queued run per architecture x
seed), look up, list, cancel and delete experiments.

Storage: two job stores of `cnnplan.service.worker.store` beside the benchmarks' (embedded: their own
SQLite files; Redis: their own key prefixes). A *run* is an ordinary job (claim, lease, heartbeat,
re-queue after a lost worker, max attempts) whose request names one architecture and seed of the
experiment. The *experiment* record holds the request and its run ids and changes only when it is
cancelled; its status, progress and result are derived from its runs whenever it is read, so there is
no "last run finishes the experiment" step that a dying worker could skip.

Experiments follow the job contract of benchmarks through the generic helpers of
`cnnplan.service.worker.jobs`: each record has the `owner` of its key (another owner's is a 404, the
admin sees all, shared without keys), the per-key cap on active experiments (a record whose runs have
all ended is settled to its outcome before the cap is checked, so it frees its slot), cancel keeping
the record with `reason` and ``cancelled_by``, delete removing the record and its runs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cnnplan.service.experiments.schemas import ExperimentRequest
from cnnplan.service.problems import ProblemError
from cnnplan.service.problems import invalid_field as invalid
from cnnplan.service.settings import Settings
from cnnplan.service.worker.jobs import (
    SHARED,
    Caller,
    cancel_record,
    create_owned,
    delete_record,
    job_service,
    queue_or_forget,
    store_errors,
    unavailable,
    visible_job,
)  # fmt: skip
from cnnplan.service.worker.store import (
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Job,
    JobStore,
    RedisJobStore,
    SqlJobStore,
)  # fmt: skip

EXPERIMENT_PREFIX, RUN_PREFIX = "cnnplan:experiments:", "cnnplan:experiment-runs:"
NOUN = "experiment"


def open_experiment_stores(data_dir: Path, redis_url: str | None) -> tuple[JobStore, JobStore]:
    """(experiments, runs) for these settings: Redis key prefixes, or two SQLite files in `data_dir`."""
    if redis_url:
        return RedisJobStore(redis_url, EXPERIMENT_PREFIX), RedisJobStore(redis_url, RUN_PREFIX)
    data_dir.mkdir(parents=True, exist_ok=True)
    return (
        SqlJobStore(f"sqlite:///{data_dir / 'experiments.sqlite'}"),
        SqlJobStore(f"sqlite:///{data_dir / 'experiment_runs.sqlite'}"),
    )


_stores: dict[int, tuple[Settings, tuple[JobStore, JobStore]]] = {}
_stores_lock = threading.Lock()
_specs: OrderedDict[str, Any] = OrderedDict()
_SPEC_CACHE_SIZE = 256
"""Experiments whose architecture lists are kept in memory (rebuilt from the stored request otherwise)."""


def experiment_stores(settings: Settings) -> tuple[JobStore, JobStore]:
    """One pair of stores per Settings object (as `job_service`)."""
    with _stores_lock:
        entry = _stores.get(id(settings))
        if entry is None or entry[0] is not settings:
            entry = (settings, open_experiment_stores(Path(settings.data_dir), settings.redis_url))
            _stores[id(settings)] = entry
        return entry[1]


def _spec(request: dict[str, Any], settings: Settings, key: str | None = None):
    from cnnplan.service.experiments.spec import ExperimentInputError, experiment_spec

    if key is not None and key in _specs:
        _specs.move_to_end(key)
        return _specs[key]
    try:
        spec = experiment_spec(request, settings.experiment_data_root)
    except ExperimentInputError as error:
        raise invalid(error.field, error.reason, code=error.code) from None
    if key is not None:
        _specs[key] = spec
        while len(_specs) > _SPEC_CACHE_SIZE:
            _specs.popitem(last=False)
    return spec


def _over_limit(field: str, reason: str) -> ProblemError:
    return invalid(field, reason, code="limit_exceeded")


def check_experiment_limits(body: ExperimentRequest, settings: Settings, run_count: int) -> None:
    """The settings' budget: image side, epochs, samples, images per run, runs (422 ``limit_exceeded``
    naming the field), and distinct seeds (422 ``invalid_input``)."""
    if body.image_size > settings.max_experiment_image_size:
        raise _over_limit("image_size", f"must be at most {settings.max_experiment_image_size}, got {body.image_size}")
    if body.epochs > settings.max_experiment_epochs:
        raise _over_limit("epochs", f"must be at most {settings.max_experiment_epochs}, got {body.epochs}")
    if body.train_samples + body.test_samples > settings.max_experiment_samples:
        raise _over_limit(
            "train_samples", f"train_samples + test_samples must be at most {settings.max_experiment_samples}"
        )
    pixels = (body.train_samples + body.test_samples) * body.image_size**2
    if pixels * 4 > settings.max_experiment_dataset_bytes:
        raise _over_limit("train_samples", f"the dataset would take {pixels * 4:,} bytes in memory; the limit is "
                                       f"{settings.max_experiment_dataset_bytes:,} ((train + test) x z^2 x 4)")  # fmt: skip
    if body.train_samples * body.epochs > settings.max_experiment_sample_epochs:
        raise _over_limit("epochs", f"train_samples x epochs must be at most {settings.max_experiment_sample_epochs}")
    if len(set(body.seeds)) != len(body.seeds):
        raise invalid("seeds", "a seed is listed twice", code="invalid_input")
    if run_count > settings.max_experiment_runs:
        raise _over_limit(
            "seeds", f"{run_count} runs (architectures x seeds) exceed the limit of {settings.max_experiment_runs}"
        )


def _send(settings: Settings, run_id: str) -> None:
    from cnnplan.service.worker.celery_app import EXPERIMENT_QUEUE, EXPERIMENT_TASK

    job_service(settings).celery.send_task(EXPERIMENT_TASK, args=[run_id], queue=EXPERIMENT_QUEUE, retry=False)


def _settle_finished(settings: Settings, owner: str) -> None:
    """Move `owner`'s experiment records whose runs have all ended (`_status`) to that outcome, so they no
    longer count as active against the owner's cap."""
    experiments, runs = experiment_stores(settings)
    for job_id in experiments.active_ids():
        job = experiments.get(job_id)
        if job is None or job.owner != owner:
            continue
        statuses = [run.status if run is not None else FAILED for run in map(runs.get, job.request["runs"])]
        status = _status(job, statuses)
        if status in (SUCCEEDED, FAILED):
            experiments.settle(job_id, status)


def _body(record: dict[str, Any]) -> Any:
    """The submitted body of an experiment record's request (its run ids differ between two submissions)."""
    return record["body"]


def submit_experiment(
    body: ExperimentRequest, settings: Settings, caller: Caller = SHARED, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Check the body (limits, dataset, architectures), store its runs and the experiment owned by
    `caller` (within its cap on active experiments: 429 past it; `create_owned`), queue the runs.

    A repeated `idempotency_key` of the same caller gives back the experiment the first submission made,
    as for benchmarks (409 when the body differs; the key is per owner): the runs made for the repeat are
    removed again, and the first one's runs that are still queued are sent again (a duplicate message of a
    run is harmless: its claim is a compare-and-set)."""
    request = body.model_dump(mode="json", warnings=False)
    spec = _spec(request, settings)
    run_count = len(spec.architectures) * len(body.seeds)
    check_experiment_limits(body, settings, run_count)
    experiments, runs = experiment_stores(settings)
    run_ids: list[str] = []

    def forget_runs() -> None:
        for run_id in run_ids:
            runs.delete(run_id)

    try:
        if caller.owner is not None:
            _settle_finished(settings, caller.owner)
        for seed in body.seeds:
            for index in range(len(spec.architectures)):
                run = {"experiment": request, "index": index, "seed": seed}
                run_ids.append(runs.create(run, owner=caller.owner).id)
    except Exception as error:
        forget_runs()
        raise unavailable(error) from None
    try:
        job, made = create_owned(settings, caller, {"body": request, "runs": run_ids}, idempotency_key,
                                 store=experiments, body_of=_body)  # fmt: skip
    except ProblemError:  # over the cap, the broker down, or a reused key: no experiment refers to the runs
        forget_runs()
        raise
    if not made:  # a repeat (Idempotency-Key): the first submission's experiment
        with store_errors():
            forget_runs()
            queued = [
                run_id for run_id in job.request["runs"] if (stored := runs.get(run_id)) and stored.status == QUEUED
            ]
        try:  # its messages may have been lost with the first answer; the experiment itself stays
            for run_id in queued:
                _send(settings, run_id)
        except Exception as error:
            raise unavailable(error) from None
        return experiment_dict(job, settings)

    def send_runs(_job_id: str) -> None:
        try:
            for run_id in run_ids:
                _send(settings, run_id)
        except Exception:
            forget_runs()
            raise

    queue_or_forget(settings, job, send_runs, store=experiments)
    return experiment_dict(job, settings)


def _time(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()


def _status(record: Job, statuses: list[str]) -> str:
    """cancelled (the experiment was), queued (no run started), running (some run unfinished), failed
    (every run failed; a run whose record is gone counts as failed), else succeeded."""
    if record.status == CANCELLED:
        return CANCELLED
    if all(status == QUEUED for status in statuses):
        return QUEUED
    if any(status in (QUEUED, RUNNING) for status in statuses):
        return RUNNING
    return FAILED if all(status == FAILED for status in statuses) else SUCCEEDED


def _run_view(spec: Any, run: Job | None, index: int, seed: int) -> dict[str, Any]:
    from cnnplan.service.experiments.results import run_record

    view = run_record(spec, index, seed)
    if run is None:  # deleted from the store: report it as lost
        view.update(status=FAILED, error={"type": "lost", "message": "the run's record is gone", "field": None})
        return view
    view.update(id=run.id, status=run.status, progress=1.0 if run.status in FINISHED else run.progress,
                attempts=run.attempts, worker=run.worker)  # fmt: skip
    if run.result is not None:
        view.update({name: value for name, value in run.result.items() if name != "environment"})
    if run.error is not None:
        view["error"] = run.error
    return view


def experiment_state(job: Job, settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]], list[Job]]:
    """(body, run views, run jobs) of an experiment record."""
    body = job.request["body"]
    spec = _spec(body, settings, key=job.id)
    store = experiment_stores(settings)[1]
    jobs = [store.get(run_id) for run_id in job.request["runs"]]
    views = []
    for run_id, run in zip(job.request["runs"], jobs):
        request = run.request if run is not None else None
        index, seed = (request["index"], request["seed"]) if request else (0, 0)
        views.append(_run_view(spec, run, index, seed))
        views[-1].setdefault("id", run_id)
    return body, views, [run for run in jobs if run is not None]


def experiment_result(job: Job, settings: Settings) -> dict[str, Any]:
    """The aggregated result of the runs finished so far (`cnnplan.service.experiments.results.aggregate`)."""
    from cnnplan.service.experiments.results import aggregate

    body, views, jobs = experiment_state(job, settings)
    environment: dict[str, Any] = next(
        (run.result["environment"] for run in jobs if run.result and "environment" in run.result), {}
    )
    return aggregate(_spec(body, settings, key=job.id), views, environment)


def experiment_dict(job: Job, settings: Settings) -> dict[str, Any]:
    """An experiment as JSON-ready values (shape: `ExperimentJob`); the result once every run has ended."""
    body, views, jobs = experiment_state(job, settings)
    status = _status(job, [view["status"] for view in views])
    progress = sum(view["progress"] for view in views) / max(len(views), 1)
    started = [run.started_at for run in jobs if run.started_at is not None]
    finished = [run.finished_at for run in jobs if run.finished_at is not None]
    result = experiment_result(job, settings) if status in (SUCCEEDED, FAILED) else None
    error = None
    if status == FAILED:
        first = next((view["error"] for view in views if view.get("error")), None) or {}
        error = {"type": "all_runs_failed", "field": first.get("field"),
                 "message": f"every run failed; the first: {first.get('message', 'unknown')}"}  # fmt: skip
    return {
        "id": job.id,
        "status": status,
        "progress": 1.0 if status in FINISHED else round(progress, 6),
        "created_at": _time(job.created_at),
        "updated_at": _time(max([job.updated_at, *(run.updated_at for run in jobs)])),
        "started_at": _time(min(started)) if started else None,
        "finished_at": _time(job.finished_at if status == CANCELLED else max(finished)) if status in FINISHED else None,
        "request": body,
        "runs": views,
        "result": result,
        "error": error,
        "owner": job.owner,
        "reason": job.reason,
        "cancelled_by": job.cancelled_by,
    }


def get_experiment(settings: Settings, caller: Caller, job_id: str) -> dict[str, Any]:
    """One experiment's dict; 404 when there is none or `caller` does not own it."""
    with store_errors():
        return experiment_dict(visible_job(experiment_stores(settings)[0], caller, job_id, NOUN), settings)


def experiment_figure(settings: Settings, caller: Caller, job_id: str) -> bytes:
    """The SVG figure of the runs finished so far; 404 as `get_experiment`, 409 while none has succeeded."""
    from cnnplan.service.experiments.figure import experiment_image

    with store_errors():
        result = experiment_result(visible_job(experiment_stores(settings)[0], caller, job_id, NOUN), settings)
    if not any(entry["test_accuracy"]["n"] for entry in result["architectures"]):
        raise ProblemError(409, "No result yet", f"no run of experiment {job_id} has finished yet", field="id",
                           code="no_result")  # fmt: skip
    return experiment_image(result, "svg")


def list_experiments(settings: Settings, caller: Caller, limit: int, offset: int) -> dict[str, Any]:
    """A page of the experiments `caller` sees, newest first (shape: `ExperimentJobList`)."""
    with store_errors():
        jobs, total = experiment_stores(settings)[0].list(limit, offset, owner=caller.listing_owner)
        items = [experiment_dict(job, settings) for job in jobs]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def cancel_experiment(settings: Settings, caller: Caller, job_id: str, reason: str | None = None) -> dict[str, Any]:
    """Cancel an experiment and its unfinished runs, keeping its record with `reason` and ``cancelled_by``
    (idempotent; `cancel_record`); 404 when not visible, 409 when every run had already ended."""
    experiments, runs = experiment_stores(settings)
    with store_errors():
        job = visible_job(experiments, caller, job_id, NOUN)
        status = _status(job, [view["status"] for view in experiment_state(job, settings)[1]])
        if status in (SUCCEEDED, FAILED):  # its record follows, so the cancel below answers 409
            experiments.settle(job_id, status)
    job = cancel_record(experiments, caller, job_id, reason, NOUN)
    with store_errors():
        for run_id in job.request["runs"]:
            runs.cancel(run_id, by=job.cancelled_by, reason=job.reason)
        return experiment_dict(job, settings)


def delete_experiment(settings: Settings, caller: Caller, job_id: str) -> None:
    """Remove an experiment's record and its runs (`delete_record`: a queued or running one is cancelled
    first, and each run's worker stops at its next heartbeat); 404 when not visible, and afterwards."""
    runs = experiment_stores(settings)[1]
    job = delete_record(experiment_stores(settings)[0], caller, job_id, NOUN)
    with store_errors():
        for run_id in job.request["runs"]:
            runs.cancel(run_id, by=caller.name, reason="deleted")
            runs.delete(run_id)


__all__ = [
    "EXPERIMENT_PREFIX", "RUN_PREFIX", "cancel_experiment", "check_experiment_limits", "delete_experiment", "experiment_dict",
    "experiment_figure", "experiment_result", "experiment_stores", "get_experiment", "list_experiments",
    "open_experiment_stores", "submit_experiment",
]  # fmt: skip
