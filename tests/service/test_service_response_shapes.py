"""The dicts the routes build by hand (service/convert.py) have exactly the shapes the OpenAPI models document."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from cnnplan.service.schemas import (
    FixResult,
    LayerResult,
    PlanBatchItem,
    PlanResponse,
    RepairResult,
    ValidateResponse,
    ViolationResult,
)

pytestmark = pytest.mark.anyio


ONLY_WHEN_THEY_APPLY = {"notes"}
"""Fields an answer carries only when they say something (a zoo preset's notes on its parameter count)."""


def assert_shape(data: dict, model: type[BaseModel]) -> None:
    fields = set(model.model_fields)
    assert fields - ONLY_WHEN_THEY_APPLY <= set(data) <= fields, f"{model.__name__}: {set(data) ^ fields}"
    model.model_validate(data)


async def test_plan_response_shape(client):
    plan = (await client.post("/plan", json={"image_size": [64, 48], "downsample": "conv"})).json()
    assert_shape(plan, PlanResponse)
    for layer in plan["layers"]:
        assert_shape(layer, LayerResult)


async def test_validate_response_shape(client):
    conv = {"type": "conv", "kernel_size": 3, "padding": "same"}
    report = (await client.post("/validate", json={"image_size": 16, "layers": [conv] * 9})).json()
    assert_shape(report, ValidateResponse)
    assert len(report["violations"]) == 2
    for violation in report["violations"]:
        assert_shape(violation, ViolationResult)
        FixResult.model_validate(violation["fix"])


async def test_zoo_preset_notes_shape(client):
    """GoogLeNet's answer says where 6,379,984 of its parameters are; with it, every documented field is there."""
    report = (await client.post("/validate", json={"preset": "tv.googlenet"})).json()
    assert set(report) == set(ValidateResponse.model_fields)
    assert_shape(report, ValidateResponse)
    assert "6,379,984" in report["notes"][0]


async def test_repair_shape(client):
    report = (await client.post("/validate", json={"preset": "resnet50", "repair": True})).json()
    assert_shape(report, ValidateResponse)
    RepairResult.model_validate(report["repair"])
    assert set(report["repair"]) == {"valid", "edits", "unresolved", "graph", "result"}
    assert_shape(report["repair"]["result"], ValidateResponse)


async def test_batch_item_shape(client):
    results = (await client.post("/plan/batch", json={"requests": [{"image_size": 18}, {"image_size": 0}]})).json()
    for item in results["results"]:
        PlanBatchItem.model_validate(item)
        assert ("result" in item) != ("problem" in item)
