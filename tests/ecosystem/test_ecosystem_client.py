"""PlannerClient / AsyncPlannerClient against the real app: in-process (ASGI) and over a real socket."""

from __future__ import annotations

import time

import httpx
import pytest
from pydantic import ValidationError

from cnnplan.service.client import AsyncPlannerClient, BenchmarkTimeout, PlannerClient, PlannerError, RetryPolicy
from cnnplan.service.schemas import PlanRequestModel
from cnnplan.solver import PlanRequest, make_plan


@pytest.fixture
async def client(app):
    async with AsyncPlannerClient("http://testserver", transport=httpx.ASGITransport(app=app)) as planner:
        yield planner


@pytest.mark.anyio
async def test_async_plan_matches_the_solver_and_worked_example(client):
    plan = await client.plan(image_size=36)
    assert (
        plan.stages == [7, 5] and plan.depth == 12 and plan.top_receptive_field == (36, 36)
    )  # docs/theory.md#exact-model
    model_plan = await client.plan(PlanRequestModel.model_validate({"image_size": 224, "kernel_size": 5}))
    expected = make_plan(PlanRequest(224, kernel_size=5))
    assert tuple(model_plan.stages) == expected.stages and model_plan.params == expected.params


@pytest.mark.anyio
async def test_async_every_endpoint(client):
    assert (await client.health()).status == "ok"
    names = [p.name for p in (await client.presets()).presets]
    assert "vgg16" in names
    vgg = await client.preset("vgg16")
    assert vgg.default_image_size == 224 and vgg.nodes
    report = await client.validate(preset="vgg16")
    assert report.valid and report.depth == 13
    layers = [{"type": "conv", "kernel_size": 3, "padding": 1}] * 9
    bad = await client.validate(image_size=18, layers=layers)
    assert not bad.valid and {v.constraint for v in bad.violations} == {"c_value", "receptive_field"}
    plans = await client.plan_batch([{"image_size": 18}, {"image_size": 0}])
    assert plans.results[0].ok and plans.results[0].result.stages == [8]
    assert not plans.results[1].ok and plans.results[1].problem.field == "image_size"
    reports = await client.validate_batch([{"preset": "alexnet"}, {"image_size": 18, "layers": layers}])
    assert [item.result.valid for item in reports.results] == [reports.results[0].result.valid, False]
    source = await client.plan_pytorch(image_size=32, num_classes=10)
    assert source.startswith('"""Planned by cnnplan') and "class PlannedNet(nn.Module)" in source
    svg = await client.plan_svg(image_size=32)
    assert svg.startswith(b"<?xml") and b"<svg" in svg


@pytest.mark.anyio
async def test_async_errors_carry_the_problem(client):
    with pytest.raises(PlannerError) as caught:
        await client.validate(image_size=8, layers=[{"type": "conv", "kernel_size": 9}])
    assert caught.value.status == 422 and caught.value.field == "layers[0]"
    assert "would produce" in caught.value.reason
    with pytest.raises(PlannerError) as missing:
        await client.preset("no-such-net")
    assert missing.value.status in (404, 422) and missing.value.problem["status"] == missing.value.status


def test_requests_are_checked_locally_with_the_server_models():
    with PlannerClient("http://127.0.0.1:9") as planner:  # nothing listens there: must fail before sending
        with pytest.raises(ValidationError):
            planner.plan(image_size=224, kernel_size=2)
        with pytest.raises(ValidationError):
            planner.validate(image_size=224, layers=[{"type": "conv", "bogus": 1}])


def test_sync_client_over_a_real_socket(live_server):
    with PlannerClient(live_server, timeout=30) as planner:
        assert planner.health().status == "ok"
        plan = planner.plan(image_size=18)
        assert plan.stages == [8] and plan.top_receptive_field == (17, 17)
        assert planner.validate(preset="vgg16").valid
        with pytest.raises(PlannerError) as caught:
            planner.plan(image_size=2)  # well-formed, but no network of the family fits a 2x2 image
        assert caught.value.status == 422 and caught.value.field == "image_size"
        assert caught.value.problem["code"] == "infeasible"


@pytest.mark.parametrize("status", [503, 429])
def test_retries_honour_retry_after_on_a_real_server(flaky_server, status):
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with PlannerClient(flaky_server, retry=RetryPolicy(retries=3, backoff=0.05), sleep=sleep) as planner:
        answer = planner.request("GET", f"/flaky/retry-{status}", params={"fail": 2, "status": status}).json()
    assert answer == {"requests": 3}  # two refusals, then the answer
    assert waits == [1.0, 1.0]  # the server's Retry-After, not the 0.05 s backoff


def test_retries_give_up_and_backoff_without_retry_after(flaky_server):
    waits: list[float] = []
    policy = RetryPolicy(retries=2, backoff=0.01)
    with (
        PlannerClient(flaky_server, retry=policy, sleep=lambda s: waits.append(s)) as planner,
        pytest.raises(PlannerError) as caught,
    ):
        planner.request("GET", "/flaky/give-up", params={"fail": 10, "retry_after": "soon"})
    assert caught.value.status == 503
    assert waits == [0.01, 0.02]  # unparseable Retry-After: exponential backoff


def test_wait_polls_with_progress_until_done(flaky_server):
    seen: list[tuple[str, float]] = []
    with PlannerClient(flaky_server) as planner:
        final = planner.wait_benchmark(
            "job-1", poll_interval=0.01, progress=lambda s: seen.append((s["status"], s["progress"]))
        )
        assert final["status"] == "succeeded" and final["result"] == {"p50_ms": 1.25}
        assert seen == [("queued", 0.0), ("running", 0.5), ("succeeded", 1.0)]
        with pytest.raises(BenchmarkTimeout) as caught:
            planner.wait_benchmark("job-2", poll_interval=0.01, timeout=0)
        assert caught.value.last["status"] == "queued"


@pytest.mark.anyio
async def test_async_retry_and_wait_on_a_real_server(flaky_server):
    async with AsyncPlannerClient(flaky_server, retry=RetryPolicy(retries=2, backoff=0.01)) as planner:
        answer = (await planner.request("GET", "/flaky/async", params={"fail": 1, "retry_after": "0"})).json()
        assert answer == {"requests": 2}
        final = await planner.wait_benchmark("job-async", poll_interval=0.01)
        assert final["status"] == "succeeded"


@pytest.mark.anyio
async def test_benchmark_jobs_submit_list_cancel_and_wait(client):
    """Against the real /benchmarks API (SQLite job store, no worker running: the job stays queued)."""
    job = await client.submit_benchmark(
        {"plan": {"image_size": 32, "num_classes": 10}, "batch_sizes": [1], "iterations": 1}
    )
    assert job["status"] == "queued" and job["id"]
    assert (await client.benchmark(job["id"]))["status"] == "queued"
    listed = await client.benchmarks(limit=5)
    assert job["id"] in [item["id"] for item in listed["items"]]
    cancelled = await client.cancel_benchmark(job["id"], reason="not needed")
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "not needed"
    seen = []
    final = await client.wait_benchmark(job["id"], poll_interval=0.01, progress=seen.append)
    assert final["status"] == "cancelled" and [s["status"] for s in seen] == ["cancelled"]
    await client.delete_benchmark(job["id"])
    with pytest.raises(PlannerError) as gone:
        await client.benchmark(job["id"])
    assert gone.value.status == 404
    with pytest.raises(PlannerError) as caught:
        await client.benchmark("no-such-job")
    assert caught.value.status == 404
    with pytest.raises(PlannerError) as bad:
        await client.submit_benchmark({"plan": {"image_size": 32}, "batch_sizes": [0]})
    assert bad.value.status == 422 and bad.value.field == "batch_sizes[0]"


@pytest.mark.anyio
async def test_api_key_is_sent_as_a_bearer_token(tmp_path):
    from cnnplan.service.api.app import create_app
    from cnnplan.service.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, redis_url=None, embedded_worker=False, api_key="s3cret"))
    transport = httpx.ASGITransport(app=app)
    async with AsyncPlannerClient("http://t", transport=transport) as anonymous:
        with pytest.raises(PlannerError) as caught:
            await anonymous.benchmarks()
        assert caught.value.status == 401
    async with AsyncPlannerClient("http://t", transport=transport, api_key="s3cret") as keyed:
        assert (await keyed.benchmarks())["items"] == []


@pytest.mark.anyio
async def test_the_clients_answer_models_post_back_unchanged(client):
    """A plan's `LayerResult`s are valid `ValidateRequestModel` layers and validate to the plan's numbers;
    a repair's layers validate to its result."""
    from cnnplan.service.schemas import RepairResult, ValidateRequestModel

    plan = await client.plan(image_size=[64, 48], downsample="conv")
    body = ValidateRequestModel.model_validate(
        {"image_size": [64, 48], "layers": [layer.model_dump(mode="json") for layer in plan.layers]}
    )
    assert [layer.type for layer in body.layers] == [layer.type for layer in plan.layers]
    report = await client.validate(image_size=[64, 48], layers=plan.layers)
    assert (report.depth, report.top_receptive_field, report.params, report.flops) == (
        plan.depth, plan.top_receptive_field, plan.params, plan.flops,
    )  # fmt: skip
    assert report.layers == plan.layers
    repaired = await client.validate(image_size=18, layers=[{"type": "conv", "kernel_size": 3, "padding": 1}] * 9,
                                     repair=True)  # fmt: skip
    assert isinstance(repaired.repair, RepairResult) and repaired.repair.valid
    again = await client.validate(image_size=18, layers=repaired.repair.layers)
    assert again.valid and again.layers == repaired.repair.result.layers
