"""Python client of the cnnplan REST API: `PlannerClient` (sync) and `AsyncPlannerClient` (asyncio), on httpx.

Requests are checked locally with the server's own pydantic models before they are sent, answers are
parsed into the same models; 429 and 503 answers are retried with exponential backoff, honouring
``Retry-After``; every other error status raises `PlannerError` carrying the RFC 9457 problem.

A request whose connection is lost (an API process killed behind a shared port, a reset) is sent again
when repeating it cannot do anything twice: GET/DELETE, the pure computations (/plan, /validate and their
batches), a cancel, and a benchmark or experiment submission, which always carries an ``Idempotency-Key``
(a fresh UUID per call, the same on its retries) so the server gives back the job the first attempt made.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self, TypeVar, overload
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from cnnplan.service.schemas import (
    DEFAULT_MIN_C_VALUE_TEXT,
    Health,
    PlanBatchResponse,
    PlanRequestModel,
    PlanResponse,
    PresetDetail,
    PresetList,
    Readiness,
    ValidateBatchResponse,
    ValidateRequestModel,
    ValidateResponse,
    ValidateSummaryBatchResponse,
    View,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({429, 503})
LOST = (httpx.NetworkError, httpx.RemoteProtocolError)
"""Transport failures that mean the connection was lost (refused, reset, closed mid-answer), not a slow server."""
REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
PURE_POSTS = frozenset({"/plan", "/validate", "/plan/batch", "/validate/batch"})
"""POST routes that compute an answer and change nothing: safe to send twice."""
TERMINAL_BENCHMARK_STATES = frozenset({"succeeded", "failed", "cancelled"})

Body = BaseModel | Mapping[str, Any]
Progress = Callable[[dict[str, Any]], None]
M = TypeVar("M", bound=BaseModel)


class PlannerError(Exception):
    """An error answer: `status`, the problem document, and its `field` and `reason` when given."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.field = problem.get("field")
        self.reason = problem.get("reason")
        super().__init__(f"HTTP {status}: {problem.get('detail') or problem.get('title') or 'error'}")


class BenchmarkTimeout(TimeoutError):
    """`wait_benchmark` (or `wait_experiment`) gave up before the job finished; `last` is the last status seen."""

    def __init__(self, last: dict[str, Any]) -> None:
        self.last = last
        super().__init__(f"job {last.get('id')} still {last.get('status')}")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry 429/503 up to `retries` times: wait Retry-After when given, else backoff * 2^attempt; at most
    max_delay. With `retry_lost`, a replayable request (`replayable`) whose connection was lost is retried too."""

    retries: int = 3
    backoff: float = 0.5
    max_delay: float = 30.0
    retry_lost: bool = True

    def lost_delay(self, attempt: int) -> float:
        """Seconds before resending a request whose connection was lost (backoff * 2^attempt, capped)."""
        return min(self.backoff * 2**attempt, self.max_delay)

    def delay(self, attempt: int, response: httpx.Response) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        header = response.headers.get("retry-after")
        if header is not None:
            seconds = _retry_after_seconds(header)
            if seconds is not None:
                return min(max(seconds, 0.0), self.max_delay)
        return min(self.backoff * 2**attempt, self.max_delay)


def _retry_after_seconds(value: str) -> float | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def replayable(method: str, path: str, headers: Mapping[str, str] | None = None) -> bool:
    """True when sending the request twice does nothing twice: a safe or idempotent method, a pure POST
    (/plan, /validate, batches), a cancel, or a request with an ``Idempotency-Key`` header."""
    route = path.split("?", 1)[0]
    keyed = any(name.lower() == "idempotency-key" for name in (headers or {}))
    return method.upper() in REPLAYABLE_METHODS or route in PURE_POSTS or route.endswith("/cancel") or keyed


def _submission_headers(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}


def _cancel_body(reason: str | None) -> dict[str, Any]:
    return {"json": {"reason": reason}} if reason else {}


def _body(model: type[BaseModel], body: Body | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON body checked locally with the server's `model` (raises pydantic's ValidationError early)."""
    if isinstance(body, BaseModel):
        data = body.model_dump(mode="json", exclude_unset=True, warnings=False)
    else:
        data = dict(body or {})
    data.update({key: _jsonable(value) for key, value in fields.items()})
    model.model_validate(data)
    return data


def _jsonable(value: Any) -> Any:
    """Answer models given as request fields (e.g. a plan's `LayerResult`s as ``layers``) as their JSON
    values: an answer's layer is a valid request layer."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _batch(items: Sequence[Body]) -> dict[str, Any]:
    """A batch body; items are not checked locally, since the server answers each bad one with its own problem."""
    return {
        "requests": [
            item.model_dump(mode="json", exclude_unset=True, warnings=False)
            if isinstance(item, BaseModel)
            else dict(item)
            for item in items
        ]
    }


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    return {"status": response.status_code, "title": response.reason_phrase, "detail": response.text[:500]}


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise PlannerError(response.status_code, _problem(response))
    return response


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _onnx_form(model: str | os.PathLike | bytes, image_size, min_c_value, classifier_from) -> tuple[dict, dict]:
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    form: dict[str, str] = {"min_c_value": str(min_c_value)}
    if image_size is not None:
        form["image_size"] = (
            image_size
            if isinstance(image_size, str)
            else (str(image_size) if isinstance(image_size, int) else "{}x{}".format(*image_size))
        )
    if classifier_from is not None:
        form["classifier_from"] = classifier_from
    return form, {"model": ("model.onnx", data, "application/octet-stream")}


class PlannerClient:
    """Blocking client: ``with PlannerClient(url) as client: client.plan(image_size=224)``.

    `transport` is any httpx transport (``httpx.ASGITransport`` needs `AsyncPlannerClient`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retry = retry
        self._sleep = sleep
        self._http = httpx.Client(base_url=base_url, timeout=timeout, headers=_headers(api_key), transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with retries on 429/503 (and on a lost connection when `replayable`); raise `PlannerError`
        on any other error status, and the transport error once the retries are spent."""
        again = self.retry.retry_lost and replayable(method, path, kwargs.get("headers"))
        for attempt in range(self.retry.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except LOST:
                if not again or attempt == self.retry.retries:
                    raise
                self._sleep(self.retry.lost_delay(attempt))
                continue
            if response.status_code not in RETRY_STATUSES or attempt == self.retry.retries:
                return _check(response)
            self._sleep(self.retry.delay(attempt, response))
        raise AssertionError("unreachable")

    def _json(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(self.request(method, path, **kwargs).json())

    def plan(self, body: Body | None = None, **fields: Any) -> PlanResponse:
        """POST /plan (``client.plan(image_size=224)`` or with a `PlanRequestModel`/dict)."""
        return self._json(PlanResponse, "POST", "/plan", json=_body(PlanRequestModel, body, fields))

    def plan_pytorch(self, body: Body | None = None, **fields: Any) -> str:
        """POST /plan?format=pytorch: standalone PyTorch module source."""
        data = _body(PlanRequestModel, body, fields)
        return self.request("POST", "/plan", json=data, params={"format": "pytorch"}).text

    def plan_svg(self, body: Body | None = None, **fields: Any) -> bytes:
        """POST /plan?format=svg: the plan diagram."""
        data = _body(PlanRequestModel, body, fields)
        return self.request("POST", "/plan", json=data, params={"format": "svg"}).content

    def validate(self, body: Body | None = None, **fields: Any) -> ValidateResponse:
        """POST /validate with layers, a graph or a preset."""
        return self._json(ValidateResponse, "POST", "/validate", json=_body(ValidateRequestModel, body, fields))

    def validate_onnx(
        self,
        model: str | os.PathLike | bytes,
        image_size=None,
        min_c_value: str = DEFAULT_MIN_C_VALUE_TEXT,
        classifier_from=None,
    ) -> dict[str, Any]:
        """POST /validate with a multipart ONNX upload; the report as a dict (with its ``onnx`` summary)."""
        form, files = _onnx_form(model, image_size, min_c_value, classifier_from)
        return self.request("POST", "/validate", data=form, files=files).json()

    def plan_batch(self, requests: Sequence[Body]) -> PlanBatchResponse:
        """POST /plan/batch: one result or problem per item."""
        return self._json(PlanBatchResponse, "POST", "/plan/batch", json=_batch(requests))

    @overload
    def validate_batch(self, requests: Sequence[Body], view: Literal["full"] = "full") -> ValidateBatchResponse: ...
    @overload
    def validate_batch(self, requests: Sequence[Body], view: Literal["summary"]) -> ValidateSummaryBatchResponse: ...
    def validate_batch(self, requests: Sequence[Body], view: View = "full") -> Any:
        """POST /validate/batch: one report or problem per item; ``view="summary"``: verdicts without layers."""
        model = ValidateSummaryBatchResponse if view == "summary" else ValidateBatchResponse
        return self._json(model, "POST", "/validate/batch", json=_batch(requests), params={"view": view})

    def presets(self) -> PresetList:
        """GET /presets."""
        return self._json(PresetList, "GET", "/presets")

    def preset(self, name: str) -> PresetDetail:
        """GET /presets/{name}."""
        return self._json(PresetDetail, "GET", f"/presets/{_segment(name)}")

    def health(self) -> Health:
        """GET /healthz (liveness)."""
        return self._json(Health, "GET", "/healthz")

    def ready(self) -> Readiness:
        """GET /readyz (readiness of every component)."""
        return self._json(Readiness, "GET", "/readyz")

    def submit_benchmark(self, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """POST /benchmarks (202): the queued job, with its ``id``. Sent with an ``Idempotency-Key`` (a fresh
        UUID unless given), so a retry after a lost answer gets the same job back, never a second one."""
        headers = _submission_headers(idempotency_key)
        return self.request("POST", "/benchmarks", json=dict(body), headers=headers).json()

    def benchmark(self, job_id: str) -> dict[str, Any]:
        """GET /benchmarks/{id}: status (queued, running, succeeded, failed, cancelled), progress, result or error."""
        return self.request("GET", f"/benchmarks/{_segment(job_id)}").json()

    def benchmarks(self, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        """GET /benchmarks: ``{"items": [...], "total": n, "limit": ..., "offset": ...}``, newest first."""
        return self.request("GET", "/benchmarks", params={"limit": limit, "offset": offset}).json()

    def cancel_benchmark(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        """POST /benchmarks/{id}/cancel: the cancelled job (its record stays, with `reason` and ``cancelled_by``)."""
        return self.request("POST", f"/benchmarks/{_segment(job_id)}/cancel", **_cancel_body(reason)).json()

    def delete_benchmark(self, job_id: str) -> None:
        """DELETE /benchmarks/{id}: the job's record and result are removed (a running job is cancelled first)."""
        self.request("DELETE", f"/benchmarks/{_segment(job_id)}")

    def wait_benchmark(
        self, job_id: str, *, poll_interval: float = 1.0, timeout: float | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Poll until the job is succeeded, failed or cancelled; `progress` sees every status polled."""
        return self._wait(self.benchmark, job_id, poll_interval, timeout, progress)

    def submit_experiment(self, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """POST /experiments (202): the queued experiment, with its ``id`` and ``runs``. Sent with an
        ``Idempotency-Key`` as `submit_benchmark` is, so a retry never makes a second experiment."""
        headers = _submission_headers(idempotency_key)
        return self.request("POST", "/experiments", json=dict(body), headers=headers).json()

    def experiment(self, job_id: str) -> dict[str, Any]:
        """GET /experiments/{id}: status, progress and each run's, the result once every run has ended."""
        return self.request("GET", f"/experiments/{_segment(job_id)}").json()

    def experiments(self, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        """GET /experiments: ``{"items": [...], "total": n, "limit": ..., "offset": ...}``, newest first."""
        return self.request("GET", "/experiments", params={"limit": limit, "offset": offset}).json()

    def cancel_experiment(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        """POST /experiments/{id}/cancel: the cancelled experiment (its unfinished runs are cancelled too)."""
        return self.request("POST", f"/experiments/{_segment(job_id)}/cancel", **_cancel_body(reason)).json()

    def delete_experiment(self, job_id: str) -> None:
        """DELETE /experiments/{id}: the experiment's record, runs and result are removed."""
        self.request("DELETE", f"/experiments/{_segment(job_id)}")

    def wait_experiment(
        self, job_id: str, *, poll_interval: float = 1.0, timeout: float | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Poll until the experiment is succeeded, failed or cancelled; `progress` sees every status polled."""
        return self._wait(self.experiment, job_id, poll_interval, timeout, progress)

    def _wait(
        self, get: Callable[[str], dict[str, Any]], job_id: str, poll_interval: float, timeout: float | None,
        progress: Progress | None,
    ) -> dict[str, Any]:  # fmt: skip
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = get(job_id)
            if progress is not None:
                progress(status)
            if status.get("status") in TERMINAL_BENCHMARK_STATES:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise BenchmarkTimeout(status)
            self._sleep(poll_interval)


class AsyncPlannerClient:
    """The asyncio twin of `PlannerClient` (same methods, awaitable)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=_headers(api_key), transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with retries on 429/503 (and on a lost connection when `replayable`); raise `PlannerError`
        on any other error status, and the transport error once the retries are spent."""
        again = self.retry.retry_lost and replayable(method, path, kwargs.get("headers"))
        for attempt in range(self.retry.retries + 1):
            try:
                response = await self._http.request(method, path, **kwargs)
            except LOST:
                if not again or attempt == self.retry.retries:
                    raise
                await asyncio.sleep(self.retry.lost_delay(attempt))
                continue
            if response.status_code not in RETRY_STATUSES or attempt == self.retry.retries:
                return _check(response)
            await asyncio.sleep(self.retry.delay(attempt, response))
        raise AssertionError("unreachable")

    async def _json(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate((await self.request(method, path, **kwargs)).json())

    async def plan(self, body: Body | None = None, **fields: Any) -> PlanResponse:
        """POST /plan."""
        return await self._json(PlanResponse, "POST", "/plan", json=_body(PlanRequestModel, body, fields))

    async def plan_pytorch(self, body: Body | None = None, **fields: Any) -> str:
        """POST /plan?format=pytorch."""
        data = _body(PlanRequestModel, body, fields)
        return (await self.request("POST", "/plan", json=data, params={"format": "pytorch"})).text

    async def plan_svg(self, body: Body | None = None, **fields: Any) -> bytes:
        """POST /plan?format=svg."""
        data = _body(PlanRequestModel, body, fields)
        return (await self.request("POST", "/plan", json=data, params={"format": "svg"})).content

    async def validate(self, body: Body | None = None, **fields: Any) -> ValidateResponse:
        """POST /validate."""
        return await self._json(ValidateResponse, "POST", "/validate", json=_body(ValidateRequestModel, body, fields))

    async def validate_onnx(
        self,
        model: str | os.PathLike | bytes,
        image_size=None,
        min_c_value: str = DEFAULT_MIN_C_VALUE_TEXT,
        classifier_from=None,
    ) -> dict[str, Any]:
        """POST /validate with a multipart ONNX upload."""
        form, files = _onnx_form(model, image_size, min_c_value, classifier_from)
        return (await self.request("POST", "/validate", data=form, files=files)).json()

    async def plan_batch(self, requests: Sequence[Body]) -> PlanBatchResponse:
        """POST /plan/batch."""
        return await self._json(PlanBatchResponse, "POST", "/plan/batch", json=_batch(requests))

    @overload
    async def validate_batch(
        self, requests: Sequence[Body], view: Literal["full"] = "full"
    ) -> ValidateBatchResponse: ...
    @overload
    async def validate_batch(
        self, requests: Sequence[Body], view: Literal["summary"]
    ) -> ValidateSummaryBatchResponse: ...
    async def validate_batch(self, requests: Sequence[Body], view: View = "full") -> Any:
        """POST /validate/batch; ``view="summary"``: verdicts without layers."""
        body = _batch(requests)
        model = ValidateSummaryBatchResponse if view == "summary" else ValidateBatchResponse
        return await self._json(model, "POST", "/validate/batch", json=body, params={"view": view})

    async def presets(self) -> PresetList:
        """GET /presets."""
        return await self._json(PresetList, "GET", "/presets")

    async def preset(self, name: str) -> PresetDetail:
        """GET /presets/{name}."""
        return await self._json(PresetDetail, "GET", f"/presets/{_segment(name)}")

    async def health(self) -> Health:
        """GET /healthz (liveness)."""
        return await self._json(Health, "GET", "/healthz")

    async def ready(self) -> Readiness:
        """GET /readyz (readiness of every component)."""
        return await self._json(Readiness, "GET", "/readyz")

    async def submit_benchmark(self, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """POST /benchmarks, with an ``Idempotency-Key`` (see `PlannerClient.submit_benchmark`)."""
        headers = _submission_headers(idempotency_key)
        return (await self.request("POST", "/benchmarks", json=dict(body), headers=headers)).json()

    async def benchmark(self, job_id: str) -> dict[str, Any]:
        """GET /benchmarks/{id}."""
        return (await self.request("GET", f"/benchmarks/{_segment(job_id)}")).json()

    async def benchmarks(self, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        """GET /benchmarks, newest first."""
        return (await self.request("GET", "/benchmarks", params={"limit": limit, "offset": offset})).json()

    async def cancel_benchmark(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        """POST /benchmarks/{id}/cancel."""
        path = f"/benchmarks/{_segment(job_id)}/cancel"
        return (await self.request("POST", path, **_cancel_body(reason))).json()

    async def delete_benchmark(self, job_id: str) -> None:
        """DELETE /benchmarks/{id}."""
        await self.request("DELETE", f"/benchmarks/{_segment(job_id)}")

    async def wait_benchmark(
        self, job_id: str, *, poll_interval: float = 1.0, timeout: float | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Poll until the job is succeeded, failed or cancelled; `progress` sees every status polled."""
        return await self._wait(self.benchmark, job_id, poll_interval, timeout, progress)

    async def submit_experiment(self, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """POST /experiments, with an ``Idempotency-Key`` (see `PlannerClient.submit_experiment`)."""
        headers = _submission_headers(idempotency_key)
        return (await self.request("POST", "/experiments", json=dict(body), headers=headers)).json()

    async def experiment(self, job_id: str) -> dict[str, Any]:
        """GET /experiments/{id}."""
        return (await self.request("GET", f"/experiments/{_segment(job_id)}")).json()

    async def experiments(self, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        """GET /experiments, newest first."""
        return (await self.request("GET", "/experiments", params={"limit": limit, "offset": offset})).json()

    async def cancel_experiment(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        """POST /experiments/{id}/cancel."""
        path = f"/experiments/{_segment(job_id)}/cancel"
        return (await self.request("POST", path, **_cancel_body(reason))).json()

    async def delete_experiment(self, job_id: str) -> None:
        """DELETE /experiments/{id}."""
        await self.request("DELETE", f"/experiments/{_segment(job_id)}")

    async def wait_experiment(
        self, job_id: str, *, poll_interval: float = 1.0, timeout: float | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Poll until the experiment is succeeded, failed or cancelled; `progress` sees every status polled."""
        return await self._wait(self.experiment, job_id, poll_interval, timeout, progress)

    async def _wait(
        self, get: Callable[[str], Awaitable[dict[str, Any]]], job_id: str, poll_interval: float,
        timeout: float | None, progress: Progress | None,
    ) -> dict[str, Any]:  # fmt: skip
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = await get(job_id)
            if progress is not None:
                progress(status)
            if status.get("status") in TERMINAL_BENCHMARK_STATES:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise BenchmarkTimeout(status)
            await asyncio.sleep(poll_interval)


def _segment(value: str) -> str:
    """One URL path segment, percent-encoded."""
    return quote(str(value), safe="")


__all__ = [
    "AsyncPlannerClient",
    "BenchmarkTimeout",
    "PlannerClient",
    "PlannerError",
    "RetryPolicy",
]
