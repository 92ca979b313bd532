"""openapi/openapi.json is generated from the app and must not go stale; it documents the input limits."""

from __future__ import annotations

import json
from pathlib import Path

from cnnplan.service.cli.main import openapi_document

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_spec_is_current():
    committed = json.loads(SPEC_PATH.read_text())
    assert committed == openapi_document(), (
        "openapi/openapi.json is stale: run `cnnplan openapi > openapi/openapi.json`"
    )


def test_spec_documents_limits_and_problem_responses():
    spec = openapi_document()
    schemas = spec["components"]["schemas"]
    image_size = schemas["PlanRequestModel"]["properties"]["image_size"]
    assert image_size["anyOf"][0]["maximum"] == 2**20
    assert schemas["ValidateRequestModel"]["properties"]["layers"]["anyOf"][0]["maxItems"] == 10_000
    assert schemas["PlanBatchRequest"]["properties"]["requests"]["maxItems"] == 1000
    assert schemas["LayerModel"]["properties"]["name"]["anyOf"][0]["maxLength"] == 128
    responses = spec["paths"]["/plan"]["post"]["responses"]
    assert "application/problem+json" in responses["422"]["content"]
    assert "application/problem+json" in responses["413"]["content"]
