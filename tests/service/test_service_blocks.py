"""Block styles, stems and budgets over HTTP, batches, the CLI and the client (issue 15): the answers equal
the solver's, the planned graph round-trips into POST /validate, and bad input is a 422 naming its field."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner
from service_helpers import assert_problem

from cnnplan.service.cli.main import main
from cnnplan.service.client import AsyncPlannerClient
from cnnplan.solver import PlanRequest, WidthRule, make_plan

pytestmark = pytest.mark.anyio

SMALL = {"base": 8, "multiplier": 2, "max_width": 32}
STYLES = ["plain", "basic", "bottleneck", "inverted_residual"]


@pytest.mark.parametrize("stem", ["none", "conv", "conv_pool"])
@pytest.mark.parametrize("block", STYLES)
async def test_plan_round_trips_into_validate_as_graph_nodes(client, block, stem):
    """The answer's ``graph.nodes`` posted to /validate give the same layers, counts and verdict."""
    body = {"image_size": [72, 64], "block": block, "stem": stem, "widths": SMALL, "num_classes": 10}
    response = await client.post("/plan", json=body)
    assert response.status_code == 200, response.text
    plan = response.json()
    solver = make_plan(PlanRequest((72, 64), block=block, stem=stem, widths=WidthRule(8, 2, 32), num_classes=10))
    assert (plan["stages"], plan["depth"], plan["flops"]) == (list(solver.stages), solver.depth, solver.flops)
    assert plan["inputs"]["block"] == block and plan["inputs"]["stem"] == stem
    assert plan["depth_headroom"] == 0
    adds = [layer for layer in plan["layers"] if layer["type"] == "add"]
    assert bool(adds) == (block != "plain")
    architecture = {"layers": plan["layers"]} if block == "plain" else {"graph": plan["graph"]}
    assert (plan["graph"] is None) == (block == "plain")
    checked = await client.post("/validate", json={"image_size": [72, 64], **architecture})
    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert report["valid"] and report["violations"] == []
    assert report["layers"] == plan["layers"]
    assert (report["params"], report["flops"]) == (plan["params"], plan["flops"])
    assert report["top_receptive_field"] == plan["top_receptive_field"]
    spatial = [
        layer
        for layer in report["layers"]
        if layer["type"] == "conv" and layer["level"] == "feature" and max(layer["kernel_size"]) > 1
    ]
    assert len(spatial) == plan["depth"]
    assert (plan["stem"] is None) == (stem == "none")


async def test_get_plan_takes_the_new_fields_like_post(client):
    params = {"image_size": "96", "block": "bottleneck", "stem": "conv_pool", "max_flops": 500_000_000}
    query = await client.get("/plan", params=params)
    posted = await client.post("/plan", json={**params, "image_size": 96})
    assert query.status_code == posted.status_code == 200, query.text
    assert query.json() == posted.json()
    plan = query.json()
    assert plan["flops"] <= 500_000_000 and plan["budget"]["next_wider_flops"] > 500_000_000
    assert plan["inputs"]["widths"] == plan["budget"]["widths"] != plan["budget"]["requested_widths"]


async def test_infeasible_budget_is_a_422_naming_the_field_and_the_smallest_budget(client):
    narrowest = make_plan(PlanRequest(224, block="inverted_residual", stem="conv", widths=WidthRule(1, 2, 8)))
    for field, least in (("max_flops", narrowest.flops), ("max_params", narrowest.params)):
        body = {"image_size": 224, "block": "inverted_residual", "stem": "conv", field: least - 1}
        problem = assert_problem(await client.post("/plan", json=body), 422, field)
        assert str(least) in problem["reason"]
        fits = await client.post("/plan", json={**body, field: least})
        assert fits.status_code == 200 and fits.json()["inputs"]["widths"]["base"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"block": "resnext"}, "block"),
        ({"stem": "conv7"}, "stem"),
        ({"max_flops": 0}, "max_flops"),
        ({"max_params": "many"}, "max_params"),
        ({"expansion": 0, "block": "bottleneck"}, "expansion"),
        ({"expansion": 4}, "expansion"),
        ({"stem": "conv", "model": "simplified"}, "stem"),
        ({"stem": "conv_pool", "image_size": 2}, "image_size"),
    ],
)
async def test_bad_block_inputs_are_422_naming_the_field(client, body, field):
    assert_problem(await client.post("/plan", json={"image_size": 64, **body}), 422, field)


async def test_batch_mixes_styles_and_problems(client):
    requests = [
        {"image_size": 64, "block": "basic", "widths": SMALL},
        {"image_size": 64, "block": "bottleneck", "max_params": 1},
        {"image_size": 64, "block": "inverted_residual", "stem": "conv", "widths": SMALL},
    ]
    results = (await client.post("/plan/batch", json={"requests": requests})).json()["results"]
    assert [item["ok"] for item in results] == [True, False, True]
    assert results[1]["problem"]["field"] == "max_params"
    single = (await client.post("/plan", json=requests[2])).json()
    assert results[2]["result"] == single


async def test_async_client_sends_the_new_fields(app):
    transport = httpx.ASGITransport(app=app)
    async with AsyncPlannerClient("http://testserver", transport=transport) as planner:
        plan = await planner.plan(image_size=64, block="bottleneck", stem="conv", widths=SMALL)
    expected = make_plan(PlanRequest(64, block="bottleneck", stem="conv", widths=WidthRule(8, 2, 32)))
    assert tuple(plan.stages) == expected.stages and plan.params == expected.params
    assert plan.stem is not None and plan.stem.depth_without_stem == make_plan(PlanRequest(64)).depth


def test_cli_plan_with_block_stem_and_budget() -> None:
    runner = CliRunner()
    args = ["plan", "96", "--block", "bottleneck", "--stem", "conv_pool", "--max-flops", "2000000000"]
    table = runner.invoke(main, args)
    assert table.exit_code == 0, table.output
    assert "block bottleneck, stem conv_pool" in table.output and "without the stem: depth" in table.output
    answer = json.loads(runner.invoke(main, [*args, "--json"]).output)
    expected = make_plan(PlanRequest(96, block="bottleneck", stem="conv_pool", max_flops=2_000_000_000))
    assert answer["flops"] == expected.flops <= 2_000_000_000
    assert f"budget: widths base {expected.widths.base}," in table.output
    bad = runner.invoke(main, ["plan", "96", "--block", "bottleneck", "--max-params", "10"])
    assert bad.exit_code == 2 and "max_params" in bad.output


async def test_styled_plan_formats_name_the_block_and_plot_the_spatial_convs(client):
    body = {"image_size": 64, "block": "bottleneck", "stem": "conv", "widths": SMALL}
    svg = (await client.post("/plan?format=svg", json=body)).content.decode()
    plan = make_plan(PlanRequest(64, block="bottleneck", stem="conv", widths=WidthRule(8, 2, 32)))
    assert f"depth {plan.depth} k x k convolutions of {plan.report.depth}" in svg
    assert "bottleneck blocks, stem conv" in svg
    source = (await client.post("/plan?format=pytorch", json=body)).text
    assert "block bottleneck, stem conv." in source and " + " in source  # the shortcut adds
