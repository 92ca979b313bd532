"""Schemathesis against the committed contract (openapi/openapi.json) and the app, in process (ASGI).

Every operation gets a bounded number of generated requests (positive and negative), and every
answer must pass schemathesis' checks: no 5xx, a documented status code, content type and headers
(including ``Allow`` on 405), a body that conforms to the documented schema, and schema-violating
requests rejected with a 4xx. One check is left out on purpose: ``positive_data_acceptance``
(a schema-valid request must succeed) cannot hold for this API, whose inputs have rules JSON
Schema cannot state: exactly one of layers/graph/preset, odd kernel sizes for the planner, layer
arithmetic that must leave a feature map, names of existing presets and jobs. Those requests get
a 4xx problem naming the field, which the other checks verify.

``CNNPLAN_FUZZ_EXAMPLES`` (default 25) sets the examples per operation and generation mode.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from reliability_helpers import ROOT
from schemathesis.specs.openapi.checks import positive_data_acceptance

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings

EXAMPLES = int(os.environ.get("CNNPLAN_FUZZ_EXAMPLES", "25"))
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


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    """The app with a private data dir, the embedded SQLite broker and a rate limit that fuzzing does not reach."""
    data_dir = tmp_path_factory.mktemp("fuzz-data")
    return create_app(
        Settings(data_dir=data_dir, redis_url=None, embedded_worker=False, job_rate_limit="100000/minute")
    )


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_keeps_its_contract(case, fuzz_app):
    response = case.call_and_validate(app=fuzz_app, excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:  # every refusal is a problem document that says why
        assert response.headers["content-type"] == ["application/problem+json"], response.headers
        assert response.json()["detail"]


@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory):
    """The app with an API key and CNNPLAN_PROTECT_PLANNING: every guarded operation must answer a documented 401."""
    data_dir = tmp_path_factory.mktemp("fuzz-keyed-data")
    settings = Settings(data_dir=data_dir, embedded_worker=False, api_key="fuzz-key", protect_planning=True)
    return create_app(settings)


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_keeps_its_contract_behind_a_key(case, keyed_app):
    response = case.call_and_validate(app=keyed_app, excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500, response.text[:500]
    if case.path not in ("/healthz", "/readyz", "/metrics") and case.method.upper() in ("GET", "POST", "DELETE"):
        assert response.status_code in (401, 404, 405, 413, 422), response.status_code
