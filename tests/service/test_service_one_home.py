"""One home per rule: the image-size text parser, the field-problem builder and the default t are each
defined once and used alike by the CLI (plan, validate, bench), the API (GET /plan, ONNX upload form)
and the OpenAPI contract."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from cnnplan.service.cli.main import main, openapi_document
from cnnplan.service.problems import field_problem, invalid_field, problem_for_exception
from cnnplan.service.schemas import DEFAULT_MIN_C_VALUE_TEXT, parse_image_size_text
from cnnplan.solver.errors import SolverError
from cnnplan.solver.limits import MAX_IMAGE_SIDE
from cnnplan.solver.rational import DEFAULT_MIN_C_VALUE, format_fraction

pytestmark = pytest.mark.anyio

REFUSED = [
    ("0", "image_size", "must be at least 1 pixel, got 0"),
    (
        str(MAX_IMAGE_SIDE + 1),
        "image_size",
        f"must be at most {MAX_IMAGE_SIDE} (2^20) pixels, got {MAX_IMAGE_SIDE + 1}",
    ),
    ("224x0", "image_size[1]", "must be at least 1 pixel, got 0"),
    (f"{MAX_IMAGE_SIDE + 1}x5", "image_size[0]", "must be at most 1048576 (2^20) pixels, got 1048577"),
    ("abc", "image_size", "must be a side like 224 or HEIGHTxWIDTH like 224x160, got 'abc'"),
    ("224x", "image_size", "must be a side like 224 or HEIGHTxWIDTH like 224x160, got '224x'"),
    ("-3", "image_size", "must be a side like 224 or HEIGHTxWIDTH like 224x160, got '-3'"),
]


def test_the_parser_reads_a_side_or_height_x_width_up_to_the_solver_limit():
    assert parse_image_size_text("224") == 224
    assert parse_image_size_text(" 36 x 40 ") == parse_image_size_text("36X40") == (36, 40)
    assert parse_image_size_text(str(MAX_IMAGE_SIDE)) == MAX_IMAGE_SIDE
    for text, field, reason in REFUSED:
        with pytest.raises(SolverError) as caught:
            parse_image_size_text(text)
        assert (caught.value.field, caught.value.reason) == (field, reason)


@pytest.mark.parametrize(("text", "field", "reason"), REFUSED)
async def test_cli_and_api_refuse_the_same_image_sizes_for_the_same_reason(client, text, field, reason):
    problem = (await client.get("/plan", params={"image_size": text})).json()
    assert (problem["status"], problem["field"], problem["reason"]) == (422, field, reason)
    runner = CliRunner()
    planned = runner.invoke(main, ["plan", "--", text])
    assert planned.exit_code == 2 and f"{field}: {reason}" in planned.output, planned.output
    benched = runner.invoke(main, ["bench", "--url", "http://127.0.0.1:9", "--", text])
    assert benched.exit_code == 2 and f"{field}: {reason}" in benched.output, benched.output
    validated = runner.invoke(main, ["validate", "--preset", "vgg16", f"--image-size={text}"])
    assert validated.exit_code == 2 and f"{field}: {reason}" in validated.output, validated.output


async def test_cli_and_api_read_an_accepted_size_alike(client):
    answer = (await client.get("/plan", params={"image_size": " 36 x 40"})).json()
    planned = CliRunner().invoke(main, ["plan", " 36 x 40", "--json"])
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.output) == answer
    assert answer["inputs"]["image_size"] == [36, 40]


async def test_every_field_problem_has_one_shape(client):
    """Problems from the request model, a model rule, a batch item, the JSON limits, the job limits and the
    query parser all read 'Invalid request' with detail '<field>: <reason>'."""
    answers = [
        await client.post("/validate", json={"image_size": 17}),
        await client.post("/validate", json={"image_size": 17, "preset": "vgg16", "layers": [{"type": "conv"}]}),
        await client.post("/benchmarks", json={"plan": {"image_size": 32}, "architecture": {"preset": "vgg16"}}),
        await client.post("/benchmarks", json={"plan": {"image_size": 32}, "iterations": 10**6}),
        await client.post("/plan", content=b"[" * 1000 + b"]" * 1000, headers={"content-type": "application/json"}),
        await client.get("/plan", params={"image_size": "abc"}),
    ]
    problems = [answer.json() for answer in answers]
    assert [answer.status_code for answer in answers] == [422] * len(answers)
    for problem in problems:
        assert problem["title"] in ("Invalid request", "Invalid input"), problem
        assert problem["detail"].startswith(f"{problem['field']}: {problem['reason']}"), problem
    assert [problem["field"] for problem in problems[:4]] == ["layers", "layers", "plan", "iterations"]
    assert problems[3]["code"] == "limit_exceeded"
    batch = (await client.post("/plan/batch", json={"requests": [7]})).json()["results"][0]["problem"]
    assert batch == field_problem("requests[0]", "must be a JSON object (a request body)")
    assert problem_for_exception(invalid_field("x", "is bad", code="c")) == field_problem("x", "is bad", code="c")


def test_one_default_t_everywhere():
    assert DEFAULT_MIN_C_VALUE_TEXT == format_fraction(DEFAULT_MIN_C_VALUE) == "1/6"
    spec = openapi_document()
    schemas = spec["components"]["schemas"]
    defaults = [
        schemas["PlanRequestModel"]["properties"]["min_c_value"]["default"],
        schemas["ValidateRequestModel"]["properties"]["min_c_value"]["default"],
        next(p for p in spec["paths"]["/plan"]["get"]["parameters"] if p["name"] == "min_c_value")["schema"]["default"],
        spec["paths"]["/validate"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"][
            "min_c_value"
        ]["default"],
    ]
    assert defaults == [DEFAULT_MIN_C_VALUE_TEXT] * 4
    planned = CliRunner().invoke(main, ["plan", "36", "--json"])
    assert json.loads(planned.output)["inputs"]["min_c_value_exact"] == DEFAULT_MIN_C_VALUE_TEXT
    help_text = " ".join(CliRunner().invoke(main, ["plan", "--help"]).output.split())
    assert f"[default: {DEFAULT_MIN_C_VALUE_TEXT}]" in help_text


async def test_onnx_upload_without_the_extra_is_the_documented_501(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "cnnplan.service.interop.onnx_import", None)  # as if onnx were missing
    answer = await client.post("/validate", files={"model": ("m.onnx", b"\x08\x07", "application/octet-stream")})
    assert answer.status_code == 501 and answer.json()["code"] == "onnx_unavailable"
    assert answer.headers["content-type"] == "application/problem+json"
    assert "501" in openapi_document()["paths"]["/validate"]["post"]["responses"]
