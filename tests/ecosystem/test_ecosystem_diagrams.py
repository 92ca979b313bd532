"""Plan diagrams: SVG from the service and the CLI, with stages, limits and violations drawn."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import httpx
import pytest
from click.testing import CliRunner

from cnnplan.service.cli.main import main
from cnnplan.service.interop.diagrams import report_image
from cnnplan.solver import PlanRequest, make_plan, validate

BAD = "#d62728"


def texts(svg: bytes) -> str:
    """matplotlib keeps every text (drawn as paths) in an XML comment; join them."""
    return " ".join(re.findall(r"<!-- (.*?) -->", svg.decode()))


def test_plan_diagram_marks_stages_limits_and_is_deterministic():
    plan = make_plan(PlanRequest(224))
    svg = report_image(plan.report, "plan")
    ElementTree.fromstring(svg)  # well-formed XML
    words = texts(svg)
    assert plan.stages == (8, 4, 4, 3, 3)
    for number, count in enumerate(plan.stages, start=1):
        assert f"stage {number}" in words and f"{count} conv" in words
    assert "image side z = 224" in words and "minimum t = 1/6" in words
    assert "depth 22, valid" in words
    assert BAD.encode() not in svg  # nothing violated
    assert svg == report_image(plan.report, "plan")


def test_violations_are_red_in_their_own_panel():
    layers = [{"type": "conv", "kernel_size": 3, "padding": 1}] * 9
    report = validate(layers, 18)
    svg = report_image(report, "too deep")
    assert "2 violation(s)" in texts(svg) and "violates a constraint" in texts(svg)
    assert svg.count(BAD.encode()) >= 2


def test_png_is_a_png():
    assert report_image(make_plan(PlanRequest(32)).report, "png", "png").startswith(b"\x89PNG")


@pytest.mark.anyio
async def test_svg_over_http_for_plan_and_validate(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        got = await http.get("/plan", params={"image_size": "64", "format": "svg"})
        assert got.status_code == 200 and got.headers["content-type"] == "image/svg+xml"
        assert "stage 1" in texts(got.content)
        posted = await http.post("/plan", params={"format": "svg"}, json={"image_size": 64})
        assert posted.content == got.content
        checked = await http.post("/validate", params={"format": "svg"}, json={"preset": "vgg16"})
        assert checked.status_code == 200 and "depth 13, valid" in texts(checked.content)
        wrong = await http.get("/plan", params={"image_size": "64", "format": "gif"})
        assert wrong.status_code == 422 and wrong.headers["content-type"] == "application/problem+json"
        assert wrong.json()["field"] == "format"


def test_cli_plot_writes_the_same_svg(tmp_path):
    out = tmp_path / "plan.svg"
    result = CliRunner().invoke(main, ["plan", "224", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == report_image(make_plan(PlanRequest(224)).report, _title(224))
    bad = CliRunner().invoke(main, ["plan", "224", "--plot", str(tmp_path / "missing" / "x.svg")])
    assert bad.exit_code == 2 and "--plot" in bad.output


def _title(side: int) -> str:
    from cnnplan.service.interop.diagrams import plan_title

    return plan_title(make_plan(PlanRequest(side)))


def test_deep_plans_switch_the_receptive_field_axis_to_log():
    assert "log scale" not in texts(report_image(make_plan(PlanRequest(224)).report, "linear"))
    assert "receptive field (px, log scale)" in texts(report_image(make_plan(PlanRequest(2048)).report, "log"))


def test_spatial_only_diagram_leaves_out_the_1x1_convolutions():
    """A bottleneck plan has 1x1 reduce/expand/projection convs: spatial_only plots just the k x k ones
    (the stem's and the stages'), so its stage labels count the stages' spatial convs."""
    plan = make_plan(PlanRequest(64, block="bottleneck"))
    words = texts(report_image(plan.report, "bottleneck", spatial_only=True))
    assert f"depth {plan.depth} k x k convolutions of {plan.report.depth}, valid" in words
    for number, count in enumerate(plan.stages, start=1):
        assert f"stage {number}" in words and f"{count} conv" in words
    assert "1x1: exempt" not in words
    assert "1x1: exempt" in texts(report_image(plan.report, "bottleneck"))
