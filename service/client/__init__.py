"""The Python client of the REST API (sync and asyncio, on httpx); what belongs here is what a caller imports.

The implementation is `cnnplan.service.client._client`; this package re-exports its public names.
"""

from cnnplan.service.client._client import (
    DEFAULT_BASE_URL,
    AsyncPlannerClient,
    BenchmarkTimeout,
    PlannerClient,
    PlannerError,
    RetryPolicy,
)

__all__ = ["DEFAULT_BASE_URL", "AsyncPlannerClient", "BenchmarkTimeout", "PlannerClient", "PlannerError", "RetryPolicy"]
