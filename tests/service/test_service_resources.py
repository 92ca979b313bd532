"""/presets, /healthz, /readyz, /metrics, routing errors, the body limit and the optional API key."""

from __future__ import annotations

import httpx
import pytest
from service_helpers import assert_problem

from cnnplan.service.api.app import create_app
from cnnplan.service.api.routes import health
from cnnplan.service.settings import Settings

pytestmark = pytest.mark.anyio


async def test_presets_list_and_detail(client):
    names = [item["name"] for item in (await client.get("/presets")).json()["presets"]]
    assert {"alexnet", "vgg16", "resnet50", "mobilenet_v1"} <= set(names)
    detail = (await client.get("/presets/resnet18")).json()
    assert detail["name"] == "resnet18" and detail["default_image_size"] == 224
    assert any(node["type"] == "add" for node in detail["nodes"])


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "mobilenet_v1"])
async def test_preset_nodes_validate_like_the_preset(client, name):
    nodes = (await client.get(f"/presets/{name}")).json()["nodes"]
    by_graph = (await client.post("/validate", json={"image_size": 224, "graph": {"nodes": nodes}})).json()
    by_name = (await client.post("/validate", json={"image_size": 224, "preset": name})).json()
    assert by_graph == by_name


async def test_unknown_preset_is_404_as_a_resource_and_422_in_a_body(client):
    problem = assert_problem(await client.get("/presets/vgg17"), 404, "name")
    assert problem["code"] == "unknown_preset" and "vgg16" in problem["detail"]
    problem = assert_problem(await client.post("/validate", json={"preset": "vgg17"}), 422, "preset")
    assert problem["code"] == "unknown_preset"


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert body["components"]["solver"] == {"ok": True, "required": True, "detail": "plan(18) stages [8]"}
    assert body["components"]["data_dir"]["ok"] is True


async def test_readyz_is_503_when_a_required_component_fails(client, monkeypatch):
    def broken(settings):
        raise ConnectionError("nothing listens")

    monkeypatch.setitem(health.READINESS_CHECKS, "broker", broken)
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["components"]["broker"] == {"ok": False, "required": True, "detail": "ConnectionError: nothing listens"}


async def test_metrics_count_requests_per_route_template(client):
    await client.post("/plan", json={"image_size": 18})
    await client.post("/plan", json={"image_size": 0})
    await client.get("/presets/vgg16")
    await client.get("/no/such/route")
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'cnnplan_http_requests_total{method="POST",route="/plan",status="200"} 1.0' in text
    assert 'cnnplan_http_requests_total{method="POST",route="/plan",status="422"} 1.0' in text
    assert 'cnnplan_http_requests_total{method="GET",route="/presets/{name}",status="200"} 1.0' in text
    assert 'cnnplan_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert 'cnnplan_http_request_duration_seconds_count{method="POST",route="/plan"} 2.0' in text
    assert 'cnnplan_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/presets/{name}"} 1.0' in text


async def test_unknown_route_and_wrong_method_are_problems(client):
    assert_problem(await client.get("/nope"), 404)
    response = await client.delete("/plan")
    assert_problem(response, 405)
    assert "POST" in response.headers["allow"]  # Starlette lists the methods of the first route matching the path


async def test_body_over_limit_is_413(client):
    big = b'{"image_size": 224, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    problem = assert_problem(
        await client.post("/plan", content=big, headers={"content-type": "application/json"}), 413, "body"
    )
    assert "1048576" in problem["detail"]

    async def chunks():  # streamed without Content-Length
        for _ in range(20):
            yield b"x" * 65536

    assert_problem(await client.post("/validate", content=chunks(), headers={"content-type": "application/json"}), 413)


async def test_configured_body_limit(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, max_body_bytes=100))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.post("/plan", json={"image_size": 18})).status_code == 200
        assert_problem(await client.post("/plan", json={"image_size": 18, "min_c_value": "1/6" + " " * 100}), 413)


async def test_api_key_guards_everything_but_health_and_metrics(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, api_key="s3cret", protect_planning=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        problem = assert_problem(await client.post("/plan", json={"image_size": 18}), 401)
        assert problem["code"] == "unauthorized"
        assert_problem(await client.get("/presets", headers={"Authorization": "Bearer wrong"}), 401)
        assert (await client.post("/plan", json={"image_size": 18}, headers={"X-API-Key": "s3cret"})).status_code == 200
        assert (await client.get("/presets", headers={"Authorization": "Bearer s3cret"})).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_a_bug_is_a_logged_500_problem(app, caplog):
    async def broken() -> None:
        raise RuntimeError("secret internals 4711")

    app.add_api_route("/broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        problem = assert_problem(await client.get("/broken"), 500)
    assert "4711" not in problem["detail"]  # internals stay in the log
    assert any("unhandled error on GET /broken" in record.getMessage() for record in caplog.records)
