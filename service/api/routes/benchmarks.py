"""/benchmarks: benchmark jobs (submit, status, list, cancel, delete), run by the Celery worker (docs/worker.md).

Thin: the shapes are `cnnplan.service.worker.schemas`, the work is `cnnplan.service.worker.jobs`. With
API keys configured a job belongs to its key's owner: other owners get 404 (docs/fleet.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.deps import AppSettings, IdempotencyKey, JobCaller, job_caller
from cnnplan.service.api.security import limit_job_submissions
from cnnplan.service.problems import problem_responses
from cnnplan.service.worker import jobs
from cnnplan.service.worker.schemas import BenchmarkJob, BenchmarkJobList, BenchmarkRequest, CancelRequest

router = APIRouter(tags=["benchmarks"], dependencies=[Depends(job_caller)])

BENCHMARK_RULES = (
    "plan passes the rules of POST /plan, architecture those of POST /validate",
    "batch_sizes, iterations and warmup are within the server's limits (code limit_exceeded; CNNPLAN_MAX_BENCHMARK_*)",
)
"""The rules of a benchmark request that JSON Schema cannot state (the 422 of the operation lists them)."""

JobId = Annotated[str, Path(min_length=1, max_length=64, description="A job's id (a UUID).")]


@router.post(
    "/benchmarks",
    status_code=202,
    dependencies=[Depends(limit_job_submissions)],
    response_model=BenchmarkJob,
    responses=problem_responses(401, 409, 413, 422, 429, 503, rules=BENCHMARK_RULES),
    summary="Queue a benchmark of a planned network or an architecture",
)
def post_benchmark(
    body: BenchmarkRequest, settings: AppSettings, caller: JobCaller, idempotency_key: IdempotencyKey = None
) -> FastJSONResponse:
    """202 with the queued job and its ``Location``; 429 past the key's rate limit or its cap on active
    jobs; 503 with ``Retry-After`` when the broker is down."""
    job = jobs.submit_benchmark(body, settings, caller, idempotency_key)
    return FastJSONResponse(job, status_code=202, headers={"Location": f"/benchmarks/{job['id']}"})


@router.get(
    "/benchmarks",
    response_model=BenchmarkJobList,
    responses=problem_responses(401, 422, 503),
    summary="List benchmark jobs, newest first",
)
def list_benchmarks(
    settings: AppSettings,
    caller: JobCaller,
    limit: int = Query(20, ge=1, le=100, description="Jobs per page."),
    offset: int = Query(0, ge=0, le=10**9, description="Jobs to skip."),
) -> FastJSONResponse:
    """The caller's own jobs (every job for the admin, and on a server without keys)."""
    return FastJSONResponse(jobs.list_jobs(settings, caller, limit, offset))


@router.get(
    "/benchmarks/{job_id}",
    response_model=BenchmarkJob,
    responses=problem_responses(401, 404, 422, 503),
    summary="A benchmark job: status, progress, result or error",
)
def get_benchmark(job_id: JobId, settings: AppSettings, caller: JobCaller) -> FastJSONResponse:
    """404 for an unknown id and for another owner's job alike."""
    return FastJSONResponse(jobs.get_job(settings, caller, job_id))


@router.post(
    "/benchmarks/{job_id}/cancel",
    response_model=BenchmarkJob,
    responses=problem_responses(401, 404, 409, 422, 503),
    summary="Cancel a queued or running benchmark job (the record stays, with reason and who cancelled)",
)
def cancel_benchmark(
    job_id: JobId,
    settings: AppSettings,
    caller: JobCaller,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> FastJSONResponse:
    """200 with the cancelled job (also when it already was); 409 when it had already succeeded or failed."""
    return FastJSONResponse(jobs.cancel_job(settings, caller, job_id, body.reason if body else None))


@router.delete(
    "/benchmarks/{job_id}",
    status_code=204,
    responses=problem_responses(401, 404, 422, 503),
    summary="Delete a benchmark job's record and result (a queued or running one is cancelled first)",
)
def delete_benchmark(job_id: JobId, settings: AppSettings, caller: JobCaller) -> Response:
    """204; a later GET is 404."""
    jobs.delete_job(settings, caller, job_id)
    return Response(status_code=204)
