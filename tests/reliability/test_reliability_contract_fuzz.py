"""Schemathesis against the committed contract (openapi/openapi.json) and a live server: a real uvicorn
process (`cnnplan serve`) on a free loopback port, called over HTTP.

Every operation gets `CNNPLAN_FUZZ_EXAMPLES` (default 30) generated requests per generation mode
(positive: schema-valid, negative: schema-violating), and every answer must pass schemathesis' default
checks, positive data acceptance included: no 5xx, a documented status code, content type and headers
(``Allow`` on 405), a body that conforms to the documented schema, schema-violating requests refused
with a 4xx, and schema-valid requests accepted.

"Accepted" has one documented exception: a schema-valid request that breaks a rule JSON Schema cannot
state (an image smaller than one kernel, layer arithmetic that leaves no feature map, ``max_width <
base``, the value of a 'p/q' string) gets a 422. So positive data acceptance also takes 422 here, and
`refusals_of_schema_valid_requests_are_documented` narrows it again: such a 422 must come from an
operation whose 422 lists its rules (``x-rules-beyond-schema``), and name a domain code (a solver
error's code, ``limit_exceeded``) or the one field whose value range the schema cannot bound
(``min_c_value``), never a shape error (``validation_error`` elsewhere) that the schema should have
stated. The server has no embedded worker and its job broker and store are SQLite files in a temporary
directory, so POST /benchmarks queues real jobs that nobody runs.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from live_processes import ServerProcess, free_port
from reliability_helpers import ROOT

from cnnplan.solver import errors as solver_errors

EXAMPLES = int(os.environ.get("CNNPLAN_FUZZ_EXAMPLES", "30"))
SPEC = ROOT / "openapi" / "openapi.json"

schema = schemathesis.openapi.from_path(SPEC)
# A schema-violating request may also be refused as too large (413); 5xx is never a rejection here.
schema.config.checks.negative_data_rejection.expected_statuses = [
    "400",
    "401",
    "404",
    "405",
    "406",
    "409",
    "413",
    "415",
    "422",
    "429",
]
# Schemathesis' defaults (2xx, 3xx, 401, 403, 404, 409, 429, and 5xx, which not_a_server_error fails), plus the
# documented 422 for rules beyond JSON Schema; the check below holds that 422 to its documentation.
schema.config.checks.positive_data_acceptance.expected_statuses = [
    "2xx",
    "3xx",
    "401",
    "403",
    "404",
    "409",
    "422",
    "429",
    "5xx",
]

DOMAIN_CODES = frozenset(
    {
        error.code
        for error in vars(solver_errors).values()
        if isinstance(error, type) and issubclass(error, solver_errors.SolverError)
    }
    | {"invalid_onnx", "limit_exceeded"}
)
"""Problem codes of rules about what a request means, not about its shape."""
UNBOUNDED_VALUE_FIELDS = frozenset({"min_c_value", "t_sweep", "stage_scales"})
"""Fields whose accepted values JSON Schema cannot bound exactly (a 'p/q' string's value; an experiment's
t-sweep and stage scales are lists of them, named with their index)."""


def refusals_of_schema_valid_requests_are_documented(ctx, response, case) -> bool | None:
    """A positive (schema-valid) case answered 422 breaks one of the operation's documented rules."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    documented = case.operation.definition.raw.get("responses", {}).get("422", {}).get("x-rules-beyond-schema")
    problem = response.json()
    fields = [item["field"] for item in problem.get("errors") or [{"field": problem.get("field") or "body"}]]
    leaves = {field.rsplit(".", 1)[-1].split("[", 1)[0] for field in fields}
    if not documented:
        raise AssertionError(f"{case.operation.label}: 422 without documented rules: {problem}")
    if problem.get("code") not in DOMAIN_CODES and not leaves <= UNBOUNDED_VALUE_FIELDS:
        raise AssertionError(f"{case.operation.label}: a schema-valid request refused as malformed: {problem}")
    return None


SEEN: Counter[tuple[str, str, int]] = Counter()
"""(operation, generation mode, status) of every call against the live server, for the summary line."""


@pytest.fixture(scope="module", autouse=True)
def _summary(request) -> Iterator[None]:
    """After the module: operations, calls per mode and statuses seen (the run's schemathesis summary)."""
    yield
    if SEEN:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        by_mode: dict[str, Counter[int]] = {}
        for (_, mode, status), count in SEEN.items():
            by_mode.setdefault(mode, Counter())[status] += count
        calls = "; ".join(
            f"{mode} {sum(statuses.values())} (statuses {dict(sorted(statuses.items()))})"
            for mode, statuses in sorted(by_mode.items())
        )
        operations = len({operation for operation, _, _ in SEEN})
        line = f"\nschemathesis against the live server: {operations} operations, {sum(SEEN.values())} calls: {calls}"
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[str]:
    """`cnnplan serve` on a free loopback port: no embedded worker, SQLite broker and store in a temp dir,
    a job rate limit that fuzzing does not reach, no API key."""
    port = free_port()
    env = {
        **os.environ,
        "CNNPLAN_DATA_DIR": str(tmp_path_factory.mktemp("fuzz-data")),
        "CNNPLAN_EMBEDDED_WORKER": "false",
        "CNNPLAN_JOB_RATE_LIMIT": "100000/minute",
        "CNNPLAN_LOG_LEVEL": "warning",
    }
    for name in ("CNNPLAN_API_KEY", "CNNPLAN_REDIS_URL", "CNNPLAN_PROTECT_PLANNING"):
        env.pop(name, None)
    command = [sys.executable, "-m", "cnnplan.service.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with ServerProcess(command, port, env, Path.cwd()) as running:
        yield running.url


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_keeps_its_contract(case, live_server):
    response = case.call_and_validate(
        base_url=live_server, timeout=60, additional_checks=[refusals_of_schema_valid_requests_are_documented]
    )
    mode = case.meta.generation.mode.value if case.meta is not None else "explicit"
    SEEN[(case.operation.label, mode, response.status_code)] += 1
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:  # every refusal is a problem document that says why
        assert response.headers["content-type"] == ["application/problem+json"], response.headers
        assert response.json()["detail"]


@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory):
    """The app with an API key and CNNPLAN_PROTECT_PLANNING: every guarded operation must answer a documented 401."""
    from cnnplan.service.api.app import create_app
    from cnnplan.service.settings import Settings

    data_dir = tmp_path_factory.mktemp("fuzz-keyed-data")
    return create_app(Settings(data_dir=data_dir, embedded_worker=False, api_key="fuzz-key", protect_planning=True))


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_keeps_its_contract_behind_a_key(case, keyed_app):
    response = case.call_and_validate(app=keyed_app)
    assert response.status_code < 500, response.text[:500]
    if case.path not in ("/healthz", "/readyz", "/metrics") and case.method.upper() in ("GET", "POST", "DELETE"):
        assert response.status_code in (401, 404, 405, 413, 422), response.status_code
