"""POST /plan/batch and /validate/batch: order kept, one bad item does not sink the batch, size limits."""

from __future__ import annotations

import pytest
from service_helpers import assert_problem

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings

pytestmark = pytest.mark.anyio


async def test_plan_batch_partial_failure_keeps_order(client):
    requests = [
        {"image_size": 18},
        {"image_size": 0},
        "not a body",
        {"image_size": 36, "kernel_size": 4},
        {"image_size": 36},
    ]
    response = await client.post("/plan/batch", json={"requests": requests})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [item["index"] for item in results] == [0, 1, 2, 3, 4]
    assert [item["ok"] for item in results] == [True, False, False, False, True]
    assert results[0]["result"]["stages"] == [8] and results[4]["result"]["stages"] == [7, 5]
    assert (results[1]["problem"]["field"], results[1]["problem"]["status"]) == ("image_size", 422)
    assert results[2]["problem"]["field"] == "requests[2]"
    assert (results[3]["problem"]["field"], results[3]["problem"]["code"]) == ("kernel_size", "invalid_layer")
    single = (await client.post("/plan", json={"image_size": 36})).json()
    assert results[4]["result"] == single


async def test_validate_batch_partial_failure(client):
    conv = {"type": "conv", "kernel_size": 3, "padding": "same"}
    requests = [{"image_size": 17, "layers": [conv] * 5}, {"preset": "nope"}, {"image_size": 19, "layers": [conv] * 9}]
    results = (await client.post("/validate/batch", json={"requests": requests})).json()["results"]
    assert [item["ok"] for item in results] == [True, False, True]
    assert results[0]["result"]["valid"] is True and results[2]["result"]["valid"] is False
    assert results[1]["problem"]["code"] == "unknown_preset"


async def test_batch_over_1000_is_422(client):
    problem = assert_problem(await client.post("/plan/batch", json={"requests": [{}] * 1001}), 422, "requests")
    assert "1000" in problem["reason"]
    assert_problem(await client.post("/validate/batch", json={"requests": []}), 422, "requests")
    assert_problem(await client.post("/validate/batch", json={"reqs": [{}]}), 422)


async def test_configured_batch_limit(tmp_path):
    import httpx

    app = create_app(Settings(data_dir=tmp_path, max_batch=2))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        ok = await client.post("/plan/batch", json={"requests": [{"image_size": 18}] * 2})
        assert ok.status_code == 200
        problem = assert_problem(
            await client.post("/plan/batch", json={"requests": [{"image_size": 18}] * 3}), 422, "requests"
        )
        assert "at most 2" in problem["reason"]
