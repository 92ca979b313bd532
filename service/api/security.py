"""Access control of the job endpoints: the per-key rate limit on job submission (the `limits` library).

The key check itself is `cnnplan.service.api.deps.require_api_key` (constant-time, 401 with
``WWW-Authenticate``); it runs first, so a submission counted here carries a valid key. Clients are
told apart by a SHA-256 digest of their key (the key itself is never stored or logged); without a
configured key, by their address. The counters live in Redis when ``CNNPLAN_REDIS_URL`` is set (shared
by every API process; a Redis that does not answer makes submission a 503, as the broker would),
else in this process's memory.
"""

from __future__ import annotations

import hashlib
import math
import time

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from cnnplan.service.api.owners import keys_configured
from cnnplan.service.problems import ProblemError
from cnnplan.service.settings import Settings


def presented_key(request: Request) -> str | None:
    """The key a request carries: ``X-API-Key``, else the token of ``Authorization: Bearer <token>``."""
    given = request.headers.get("x-api-key")
    if given is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token if scheme.lower() == "bearer" else None
    return given


def client_identity(request: Request, keyed: bool) -> str:
    """``key:<sha256 prefix>`` for a keyed server, else ``addr:<client address>``."""
    if keyed:
        digest = hashlib.sha256((presented_key(request) or "").encode()).hexdigest()[:32]
        return f"key:{digest}"
    return f"addr:{request.client.host if request.client else 'unknown'}"


RETRY_AFTER_SECONDS = 10
"""Retry-After of a 503 when the shared counters (Redis) do not answer."""

KEY_PREFIX = "cnnplan:job-rate"
"""Prefix of the counters' Redis keys."""


def counter_storage(redis_url: str | None) -> Storage:
    """Redis (shared by every API process) when configured, else this process's memory."""
    if redis_url:
        return RedisStorage(
            redis_url, key_prefix=KEY_PREFIX, wrap_exceptions=True, socket_connect_timeout=2, socket_timeout=2
        )
    return MemoryStorage()


class SubmissionLimiter:
    """Moving-window limits (every one of ``rate``'s items, e.g. ``5/second;100/hour``) per client identity."""

    def __init__(self, rate: str, redis_url: str | None = None) -> None:
        self.rate = rate
        self.redis_url = redis_url
        self.items: list[RateLimitItem] = parse_many(rate)
        self.limiter = MovingWindowRateLimiter(counter_storage(redis_url))

    def acquire(self, identity: str) -> float | None:
        """Count one submission and return None, or refuse it and return the seconds until one is allowed.
        Each item is hit in turn (atomically, also in Redis); the first one that refuses stops the count."""
        for item in self.items:
            if not self.limiter.hit(item, identity):
                return self.limiter.get_window_stats(item, identity).reset_time - time.time()
        return None


def submission_limiter(request: Request, settings: Settings) -> SubmissionLimiter:
    """The app's limiter (made on first use, remade if the configured rate or Redis differs)."""
    limiter = getattr(request.app.state, "job_submission_limiter", None)
    if limiter is None or (limiter.rate, limiter.redis_url) != (settings.job_rate_limit, settings.redis_url):
        limiter = SubmissionLimiter(settings.job_rate_limit, settings.redis_url)
        request.app.state.job_submission_limiter = limiter
    return limiter


async def limit_job_submissions(request: Request) -> None:
    """429 problem+json with ``Retry-After`` once a client has used up ``CNNPLAN_JOB_RATE_LIMIT``."""
    settings: Settings = request.app.state.settings
    keyed = keys_configured(settings)
    limiter = submission_limiter(request, settings)
    identity = client_identity(request, keyed)
    try:  # Redis round trips run off the event loop
        wait = await run_in_threadpool(limiter.acquire, identity) if settings.redis_url else limiter.acquire(identity)
    except StorageError as error:
        raise ProblemError(
            503,
            "Job queue unavailable",
            f"the job submission counters cannot be reached ({type(error.storage_error).__name__}); "
            "planning and validation still work",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            code="broker_unavailable",
        ) from None
    if wait is None:
        return
    retry_after = max(1, math.ceil(wait))
    who = "API key" if keyed else "client address"
    reason = f"job submissions are limited to {settings.job_rate_limit} per {who}; retry in {retry_after} s"
    raise ProblemError(
        429,
        "Too Many Requests",
        reason,
        field="Authorization" if keyed else None,
        reason=reason,
        code="rate_limited",
        headers={"Retry-After": str(retry_after)},
    )


__all__ = ["SubmissionLimiter", "client_identity", "limit_job_submissions", "presented_key"]
