"""Access control of the job endpoints: the per-key rate limit on job submission (the `limits` library).

The key check itself is `service.dependencies.require_api_key` (constant-time, 401 with
``WWW-Authenticate``); it runs first, so a submission counted here carries a valid key. Clients are
told apart by a SHA-256 digest of their key (the key itself is never stored or logged); without a
configured key, by their address. The counters live in this process's memory (per API process).
"""

from __future__ import annotations

import hashlib
import math
import time

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .problems import ProblemError
from .settings import Settings


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


class SubmissionLimiter:
    """Moving-window limits (every one of ``rate``'s items, e.g. ``5/second;100/hour``) per client identity."""

    def __init__(self, rate: str) -> None:
        self.rate = rate
        self.items: list[RateLimitItem] = parse_many(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def acquire(self, identity: str) -> float | None:
        """Count one submission and return None, or refuse it and return the seconds until one is allowed."""
        waits = []
        for item in self.items:
            if not self.limiter.test(item, identity):
                reset_time = self.limiter.get_window_stats(item, identity).reset_time
                waits.append(reset_time - time.time())
        if waits:
            return max(waits)
        for item in self.items:
            self.limiter.hit(item, identity)
        return None


def submission_limiter(request: Request, rate: str) -> SubmissionLimiter:
    """The app's limiter (made on first use, remade if the configured rate differs)."""
    limiter = getattr(request.app.state, "job_submission_limiter", None)
    if limiter is None or limiter.rate != rate:
        limiter = SubmissionLimiter(rate)
        request.app.state.job_submission_limiter = limiter
    return limiter


async def limit_job_submissions(request: Request) -> None:
    """429 problem+json with ``Retry-After`` once a client has used up ``CNNPLAN_JOB_RATE_LIMIT``."""
    settings: Settings = request.app.state.settings
    keyed = settings.api_key is not None
    wait = submission_limiter(request, settings.job_rate_limit).acquire(client_identity(request, keyed))
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
