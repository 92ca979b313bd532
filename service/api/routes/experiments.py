"""/experiments: training experiments (submit, status, list, cancel, delete, figure), one Celery task per
architecture x seed, run by the same workers as benchmarks (docs/experiments.md).

Thin: the shapes are `cnnplan.service.experiments.schemas`, the work is `cnnplan.service.worker.experiment_jobs`.
The job contract is the benchmarks': with API keys configured an experiment belongs to its key's owner
(other owners get 404; docs/fleet.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.deps import AppSettings, IdempotencyKey, JobCaller, job_caller
from cnnplan.service.api.formats import SVG_MEDIA_TYPE
from cnnplan.service.api.security import limit_job_submissions
from cnnplan.service.experiments.schemas import ExperimentJob, ExperimentJobList, ExperimentRequest
from cnnplan.service.problems import problem_responses
from cnnplan.service.worker import experiment_jobs
from cnnplan.service.worker.schemas import CancelRequest

router = APIRouter(tags=["experiments"], dependencies=[Depends(job_caller)])

JobId = Annotated[str, Path(min_length=1, max_length=64, description="An experiment's id (a UUID).")]
EXPERIMENT_RULES = (
    "image_size, epochs, train_samples + test_samples, the dataset's bytes, train_samples x epochs and the "
    "number of runs are within the server's limits (code limit_exceeded; CNNPLAN_MAX_EXPERIMENT_*)",
    "dataset_options name only options of the chosen dataset; image_folder needs the server's data root and a "
    "folder under it; seeds are distinct; variants are within their ranges (code invalid_input)",
    "each of architectures passes the rules of POST /validate and outputs one score per class",
)
"""The rules of an experiment request that JSON Schema cannot state (the 422 of the operation lists them)."""
_FIGURE: dict[int | str, dict[str, Any]] = {200: {"description": "The experiment (JSON), or its figure (format=svg).",
                 "content": {SVG_MEDIA_TYPE: {"schema": {"type": "string"}}}}}  # fmt: skip


@router.post(
    "/experiments",
    status_code=202,
    dependencies=[Depends(limit_job_submissions)],
    response_model=ExperimentJob,
    responses=problem_responses(401, 409, 413, 422, 429, 503, rules=EXPERIMENT_RULES),
    summary="Queue a training experiment: the plan, its variants and your networks, several seeds each",
)
def post_experiment(
    body: ExperimentRequest, settings: AppSettings, caller: JobCaller, idempotency_key: IdempotencyKey = None
) -> FastJSONResponse:
    """202 with the queued experiment and its ``Location``; 409 for an ``Idempotency-Key`` reused with
    another body; 429 past the key's rate limit or its cap on active experiments; 503 with
    ``Retry-After`` when the broker is down."""
    job = experiment_jobs.submit_experiment(body, settings, caller, idempotency_key)
    return FastJSONResponse(job, status_code=202, headers={"Location": f"/experiments/{job['id']}"})


@router.get(
    "/experiments",
    response_model=ExperimentJobList,
    responses=problem_responses(401, 422, 503),
    summary="List experiments, newest first",
)
def list_experiments(
    settings: AppSettings,
    caller: JobCaller,
    limit: int = Query(20, ge=1, le=100, description="Experiments per page."),
    offset: int = Query(0, ge=0, le=10**9, description="Experiments to skip."),
) -> FastJSONResponse:
    """The caller's own experiments (every one for the admin, and on a server without keys)."""
    return FastJSONResponse(experiment_jobs.list_experiments(settings, caller, limit, offset))


@router.get(
    "/experiments/{job_id}",
    response_model=ExperimentJob,
    responses={**_FIGURE, **problem_responses(401, 404, 409, 422, 503)},
    summary="An experiment: status, progress per run, result; or its figure (format=svg)",
)
def get_experiment(
    job_id: JobId,
    settings: AppSettings,
    caller: JobCaller,
    format: Literal["json", "svg"] = Query("json", description="json, or svg: accuracy against depth so far."),
) -> Response:
    """format=svg: the figure of the runs finished so far (409 while none has); 404 for an unknown id and
    for another owner's experiment alike."""
    if format == "svg":
        return Response(experiment_jobs.experiment_figure(settings, caller, job_id), media_type=SVG_MEDIA_TYPE)
    return FastJSONResponse(experiment_jobs.get_experiment(settings, caller, job_id))


@router.post(
    "/experiments/{job_id}/cancel",
    response_model=ExperimentJob,
    responses=problem_responses(401, 404, 409, 422, 503),
    summary="Cancel a queued or running experiment and its unfinished runs (the record stays, with reason and who cancelled)",
)
def cancel_experiment(
    job_id: JobId,
    settings: AppSettings,
    caller: JobCaller,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> FastJSONResponse:
    """200 with the cancelled experiment (also when it already was); 409 when it had already finished."""
    reason = body.reason if body else None
    return FastJSONResponse(experiment_jobs.cancel_experiment(settings, caller, job_id, reason))


@router.delete(
    "/experiments/{job_id}",
    status_code=204,
    responses=problem_responses(401, 404, 422, 503),
    summary="Delete an experiment's record, runs and result (a queued or running one is cancelled first)",
)
def delete_experiment(job_id: JobId, settings: AppSettings, caller: JobCaller) -> Response:
    """204; a later GET is 404."""
    experiment_jobs.delete_experiment(settings, caller, job_id)
    return Response(status_code=204)
