"""/experiments: training experiments (submit, status, list, cancel, figure), one Celery task per
architecture x seed, run by the same workers as benchmarks (docs/experiments.md).

Thin: the shapes are `cnnplan.service.experiments.schemas`, the work is `cnnplan.service.worker.experiment_jobs`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.deps import AppSettings, require_api_key
from cnnplan.service.api.formats import SVG_MEDIA_TYPE
from cnnplan.service.api.security import limit_job_submissions
from cnnplan.service.experiments.schemas import ExperimentJob, ExperimentJobList, ExperimentRequest
from cnnplan.service.problems import problem_responses
from cnnplan.service.worker import experiment_jobs

router = APIRouter(tags=["experiments"], dependencies=[Depends(require_api_key)])

JobId = Annotated[str, Path(min_length=1, max_length=64, description="An experiment's id (a UUID).")]
_FIGURE: dict[int | str, dict[str, Any]] = {200: {"description": "The experiment (JSON), or its figure (format=svg).",
                 "content": {SVG_MEDIA_TYPE: {"schema": {"type": "string"}}}}}  # fmt: skip


@router.post(
    "/experiments",
    status_code=202,
    dependencies=[Depends(limit_job_submissions)],
    response_model=ExperimentJob,
    responses=problem_responses(401, 413, 422, 429, 503),
    summary="Queue a training experiment: the plan, its variants and your networks, several seeds each",
)
def post_experiment(body: ExperimentRequest, settings: AppSettings) -> FastJSONResponse:
    """202 with the queued experiment and its ``Location``; 503 with ``Retry-After`` when the broker is down."""
    job = experiment_jobs.submit_experiment(body, settings)
    return FastJSONResponse(job, status_code=202, headers={"Location": f"/experiments/{job['id']}"})


@router.get(
    "/experiments",
    response_model=ExperimentJobList,
    responses=problem_responses(401, 422, 503),
    summary="List experiments, newest first",
)
def list_experiments(
    settings: AppSettings,
    limit: int = Query(20, ge=1, le=100, description="Experiments per page."),
    offset: int = Query(0, ge=0, le=10**9, description="Experiments to skip."),
) -> FastJSONResponse:
    return FastJSONResponse(experiment_jobs.list_experiments(settings, limit, offset))


@router.get(
    "/experiments/{job_id}",
    response_model=ExperimentJob,
    responses={**_FIGURE, **problem_responses(401, 404, 409, 422, 503)},
    summary="An experiment: status, progress per run, result; or its figure (format=svg)",
)
def get_experiment(
    job_id: JobId,
    settings: AppSettings,
    format: Literal["json", "svg"] = Query("json", description="json, or svg: accuracy against depth so far."),
) -> Response:
    """format=svg: the figure of the runs finished so far (409 while none has)."""
    if format == "svg":
        return Response(experiment_jobs.experiment_figure(settings, job_id), media_type=SVG_MEDIA_TYPE)
    return FastJSONResponse(experiment_jobs.get_experiment(settings, job_id))


@router.delete(
    "/experiments/{job_id}",
    response_model=ExperimentJob,
    responses=problem_responses(401, 404, 409, 422, 503),
    summary="Cancel a queued or running experiment and its unfinished runs",
)
def cancel_experiment(job_id: JobId, settings: AppSettings) -> FastJSONResponse:
    """200 with the cancelled experiment (also when it already was); 409 when it had already finished."""
    return FastJSONResponse(experiment_jobs.cancel_experiment(settings, job_id))
