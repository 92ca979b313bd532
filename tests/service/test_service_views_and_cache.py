"""view=summary on /plan, /validate and both batches; the compact chain form; the answer cache (identity,
bounds, metrics) and HTTP caching (strong ETag, Cache-Control, 304 on If-None-Match)."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings

pytestmark = pytest.mark.anyio

PLAN_SUMMARY = ("depth", "stages", "top_receptive_field", "depth_headroom", "params", "flops")


def _client(**settings) -> httpx.AsyncClient:
    app = create_app(Settings(redis_url=None, embedded_worker=False, **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.mark.parametrize(
    "body", [{"image_size": 224}, {"image_size": [97, 513], "kernel_size": 5, "downsample": "conv"}]
)
async def test_plan_summary_has_the_full_answers_values_without_the_layers(client, body):
    full = (await client.post("/plan", json=body)).json()
    summary = (await client.post("/plan", params={"view": "summary"}, json=body)).json()
    assert set(summary) == {*PLAN_SUMMARY, "valid", "violations"}
    assert {key: summary[key] for key in PLAN_SUMMARY} == {key: full[key] for key in PLAN_SUMMARY}
    assert summary["valid"] is True and summary["violations"] == []
    query = {"image_size": "97x513", "kernel_size": 5, "downsample": "conv", "view": "summary"}
    if body["image_size"] == [97, 513]:
        assert (await client.get("/plan", params=query)).json() == summary


@pytest.mark.parametrize(
    ("body", "valid"),
    [({"preset": "vgg16"}, True), ({"image_size": 64, "chain": {"stages": [20]}}, False)],  # c = 3/41 < 1/6
)
async def test_validate_summary_is_the_full_report_without_the_layers(client, body, valid):
    full = (await client.post("/validate", json=body)).json()
    summary = (await client.post("/validate", params={"view": "summary"}, json=body)).json()
    assert full["valid"] is valid and bool(summary["violations"]) is not valid
    assert summary == _without_layers_and_messages(full)


def _explicit_candidate(rng: random.Random) -> list[dict]:
    """An explicit conv stack like an AutoML draw: k x k convs (some strided, some unpadded), BN, ReLU, pools."""
    layers: list[dict] = []
    for index in range(rng.randint(3, 14)):
        kernel = rng.choice([1, 3, 5, 7])
        layers.append({"name": f"conv{index}", "type": "conv", "kernel_size": kernel, "out_channels": 8,
                       "stride": rng.choice([1, 1, 2]), "padding": rng.choice(["same", 0, kernel // 2])})  # fmt: skip
        if rng.random() < 0.5:
            layers.append({"name": f"bn{index}", "type": "bn"})
        layers.append({"name": f"relu{index}", "type": "relu"})
        if rng.random() < 0.3:
            layers.append({"name": f"pool{index}", "type": "maxpool", "kernel_size": 2, "stride": 2})
    return layers


async def test_an_explicit_layer_summary_without_the_fixes_is_the_full_report_without_the_layers(client):
    """The summary view skips the fixes' search (it shows none): still the full answer's verdict and numbers."""
    rng = random.Random(5)
    invalid = 0
    for _ in range(40):
        body = {"image_size": rng.choice([32, 64, 224]), "min_c_value": "1/6", "layers": _explicit_candidate(rng)}
        full = await client.post("/validate", json=body)
        summary = await client.post("/validate", params={"view": "summary"}, json=body)
        assert summary.status_code == full.status_code
        if full.status_code != 200:  # a map that vanishes: the same problem
            assert summary.json() == full.json()
            continue
        assert summary.json() == _without_layers_and_messages(full.json())
        invalid += not full.json()["valid"]
    assert invalid >= 5


async def test_batches_answer_summaries_item_by_item(client):
    plans = [{"image_size": 64}, {"image_size": 0}, {"image_size": 300, "model": "simplified"}]
    full = (await client.post("/plan/batch", json={"requests": plans})).json()["results"]
    summary = (await client.post("/plan/batch", params={"view": "summary"}, json={"requests": plans})).json()["results"]
    assert [item["ok"] for item in summary] == [True, False, True]
    assert summary[1]["problem"]["field"] == "image_size"
    for short, long in zip(summary, full):
        if short["ok"]:
            assert {key: short["result"][key] for key in PLAN_SUMMARY} == {
                key: long["result"][key] for key in PLAN_SUMMARY
            }
    checks = [{"preset": "resnet50"}, {"image_size": 32, "chain": {"stages": [3, 3]}}]
    full = (await client.post("/validate/batch", json={"requests": checks})).json()["results"]
    summary = (await client.post("/validate/batch", params={"view": "summary"}, json={"requests": checks})).json()
    for short, long in zip(summary["results"], full):
        assert short["result"] == _without_layers_and_messages(long["result"])


def _without_layers_and_messages(report: dict) -> dict:
    """A full /validate answer as its summary states it: no layers or repair, violations without their
    message and fixes."""
    summary = {key: value for key, value in report.items() if key not in ("layers", "repair")}
    prose = ("message", "fix", "alternatives")
    summary["violations"] = [{k: v for k, v in item.items() if k not in prose} for item in report["violations"]]
    return summary


def _named_chain_layers(stages, kernel_size, downsample, width):
    """The chain form's documented expansion, written out as explicit layers."""
    layers = []
    for stage, count in enumerate(stages, start=1):
        if stage > 1 and downsample != "conv":
            layers.append({"name": f"s{stage - 1}.pool", "type": downsample, "kernel_size": 2, "stride": 2})
        for position in range(1, count + 1):
            stride = 2 if downsample == "conv" and stage > 1 and position == 1 else 1
            layers.append({"name": f"s{stage}.conv{position}", "type": "conv", "kernel_size": kernel_size,
                           "stride": stride, "padding": "same", "out_channels": width})  # fmt: skip
            layers.append({"name": f"s{stage}.relu{position}", "type": "relu"})
    return layers


@pytest.mark.parametrize("downsample", ["maxpool", "avgpool", "conv"])
async def test_the_chain_form_is_the_same_architecture_as_its_explicit_layers(client, downsample):
    chain = {"stages": [4, 2, 3], "kernel_size": 5, "downsample": downsample, "width": 32}
    compact = await client.post("/validate", json={"image_size": 96, "chain": chain})
    explicit = await client.post(
        "/validate", json={"image_size": 96, "layers": _named_chain_layers([4, 2, 3], 5, downsample, 32)}
    )
    assert compact.status_code == explicit.status_code == 200
    assert compact.json() == explicit.json()


async def test_a_chain_with_another_architecture_or_too_many_layers_is_a_422(client):
    both = await client.post("/validate", json={"image_size": 32, "chain": {"stages": [1]}, "preset": "vgg16"})
    assert both.status_code == 422 and both.json()["field"] == "layers"
    huge = await client.post("/validate", json={"image_size": 32, "chain": {"stages": [10_000] * 64}})
    assert huge.status_code == 422 and huge.json()["field"] == "chain.stages" and "1280063 layers" in huge.text
    # the count is exact: conv + ReLU per position, so MAX_LAYERS / 2 positions are accepted, one more is not
    from cnnplan.solver.limits import MAX_LAYERS

    at_limit = {"stages": [MAX_LAYERS // 2], "kernel_size": 1}
    assert (
        await client.post("/validate", params={"view": "summary"}, json={"image_size": 32, "chain": at_limit})
    ).status_code == 200
    over = {"stages": [MAX_LAYERS // 2 + 1], "kernel_size": 1}
    assert (await client.post("/validate", json={"image_size": 32, "chain": over})).status_code == 422
    vanishing = await client.post("/validate", json={"image_size": 4, "chain": {"stages": [1] * 5}})
    assert vanishing.status_code == 422 and vanishing.json()["field"].startswith("chain[")


async def test_a_thousand_compact_candidates_fit_one_request_under_the_body_limit(client):
    rng = random.Random(0)
    requests = [
        {"image_size": 224, "min_c_value": "1/6", "chain": {
            "stages": [rng.randint(1, 10) for _ in range(rng.randint(1, 8))],
            "kernel_size": rng.choice([3, 5, 7]), "downsample": rng.choice(["maxpool", "avgpool", "conv"]), "width": 32}}
        for _ in range(1000)
    ]  # fmt: skip
    body = json.dumps({"requests": requests}).encode()
    assert len(body) < Settings().max_body_bytes
    response = await client.post(
        "/validate/batch", params={"view": "summary"}, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 1000 and all("layers" not in item.get("result", {}) for item in results)
    assert all(item["ok"] for item in results)
    assert {item["result"]["valid"] for item in results} == {True, False}  # the theory screens some out


async def test_a_cached_answer_is_byte_identical_to_a_fresh_one():
    bodies = [{"image_size": side, "kernel_size": k} for side, k in ((64, 3), (333, 5), (1024, 7))]
    async with _client() as cached, _client(answer_cache_entries=0) as fresh:
        for body in bodies:
            for view in ("full", "summary"):
                first = await cached.post("/plan", params={"view": view}, json=body)
                again = await cached.post("/plan", params={"view": view}, json=body)
                uncached = await fresh.post("/plan", params={"view": view}, json=body)
                assert first.content == again.content == uncached.content
        metrics = (await cached.get("/metrics")).text
    assert "cnnplan_answer_cache_hits_total 6.0" in metrics
    assert "cnnplan_answer_cache_misses_total 6.0" in metrics


async def test_the_cache_never_grows_past_its_entry_or_byte_bound():
    async with _client(answer_cache_entries=3) as http:
        cache = http._transport.app.state.answer_cache  # type: ignore[attr-defined]
        for side in range(40, 60):
            assert (await http.post("/plan", json={"image_size": side})).status_code == 200
            assert len(cache) <= 3
        assert len(cache) == 3
    async with _client(answer_cache_bytes=50_000) as http:
        cache = http._transport.app.state.answer_cache  # type: ignore[attr-defined]
        sizes = []
        for side in range(200, 230):
            sizes.append(len((await http.post("/plan", json={"image_size": side})).content))
            assert cache.size_bytes <= 50_000
        assert 0 < len(cache) < 30 and cache.size_bytes > 50_000 - max(sizes)
        # an answer larger than the whole budget is served but not kept
        before = len(cache)
        big = await http.post("/plan", json={"image_size": 4096, "min_c_value": "1/16"})
        assert len(big.content) > 50_000 and len(cache) <= before and cache.size_bytes <= 50_000


@pytest.mark.parametrize("path", ["/plan?image_size=224x160&kernel_size=5", "/presets", "/presets/resnet50"])
async def test_get_answers_carry_a_strong_etag_and_a_matching_if_none_match_gets_304(path):
    async with _client() as cached, _client(answer_cache_entries=0) as fresh:
        first = await cached.get(path)
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
        assert first.headers["cache-control"] == "public, max-age=3600"
        assert (await fresh.get(path)).headers["etag"] == etag  # the tag is the body's, cache or not
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = await cached.get(path, headers={"If-None-Match": header})
            assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        other = await cached.get(path, headers={"If-None-Match": '"0000"'})
        assert other.status_code == 200 and other.content == first.content


async def test_another_query_is_another_entity():
    async with _client() as http:
        one = await http.get("/plan", params={"image_size": "224"})
        two = await http.get("/plan", params={"image_size": "225"})
        summary = await http.get("/plan", params={"image_size": "224", "view": "summary"})
        assert len({one.headers["etag"], two.headers["etag"], summary.headers["etag"]}) == 3
        stale = await http.get("/plan", params={"image_size": "225"}, headers={"If-None-Match": one.headers["etag"]})
        assert stale.status_code == 200
