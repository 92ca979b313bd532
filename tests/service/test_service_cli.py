"""The cnnplan command line: tables, --json, and exit codes (0 valid, 1 violation, 2 bad input)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cnnplan.service.cli.main import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


CONV = {"type": "conv", "kernel_size": 3, "padding": "same"}


def test_plan_table(runner):
    result = runner.invoke(main, ["plan", "36", "--kernel-size", "3"])
    assert result.exit_code == 0, result.output
    assert "depth 12  stages [7, 5]  top receptive field 36" in result.output
    assert "relaxed optimum: stages [6, 3], depth 9" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("s1.conv2 "))
    assert row.split()[-1] == "3/5"


def test_plan_json_matches_the_api_body(runner):
    result = runner.invoke(main, ["plan", "36x40", "--json", "--downsample", "conv"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["inputs"]["image_size"] == [36, 40] and plan["inputs"]["downsample"] == "conv"
    assert plan["depth"] == sum(plan["stages"])


@pytest.mark.parametrize(
    ("args", "message"),
    [(["plan", "36", "-k", "4"], "kernel_size"), (["plan", "36", "-t", "7/3"], "min_c_value"),
     (["plan", "2"], "image_size"), (["plan", "abc"], "224x160")],
)  # fmt: skip
def test_plan_bad_input_exits_2(runner, args, message):
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert message in result.output


def test_validate_exit_codes(runner, tmp_path):
    valid = write(tmp_path, "valid.json", {"image_size": 17, "layers": [CONV] * 5})
    violating = write(tmp_path, "violating.json", [CONV] * 9)
    graph = write(tmp_path, "graph.json", {"nodes": [{"name": "a", **CONV, "inputs": ["input"]}]})
    assert runner.invoke(main, ["validate", valid]).exit_code == 0
    result = runner.invoke(main, ["validate", violating, "--image-size", "19"])
    assert result.exit_code == 1
    assert "INVALID (1 violations)" in result.output and "[c_value]" in result.output
    assert runner.invoke(main, ["validate", graph, "--image-size", "8"]).exit_code == 0
    assert runner.invoke(main, ["validate", "--preset", "vgg16", "--image-size", "224"]).exit_code == 0
    assert runner.invoke(main, ["validate", "--preset", "vgg16", "--image-size", "100"]).exit_code == 1


def test_validate_json_output(runner, tmp_path):
    path = write(tmp_path, "arch.json", [CONV] * 9)
    result = runner.invoke(main, ["validate", path, "--image-size", "19", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["violations"][0]["value_exact"] == "3/19"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [("{not json", ["--image-size", "8"], "not valid JSON"),
     (json.dumps([{"type": "conv", "kernel_size": 99}]), ["--image-size", "8"], "layers[0]"),
     (json.dumps([CONV]), [], "image_size"),
     (json.dumps(42), ["--image-size", "8"], "expected a JSON object")],
)  # fmt: skip
def test_validate_bad_input_exits_2(runner, tmp_path, content, args, message):
    result = runner.invoke(main, ["validate", write(tmp_path, "arch.json", content), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_validate_needs_a_file_or_a_preset(runner, tmp_path):
    assert runner.invoke(main, ["validate"]).exit_code == 2
    assert runner.invoke(main, ["validate", "--preset", "nope"]).exit_code == 2
    assert runner.invoke(main, ["validate", str(tmp_path / "missing.json"), "--image-size", "8"]).exit_code == 2


def test_exit_codes_of_the_real_process(tmp_path):
    """The console entry point as CI would call it (a real interpreter, a real exit status)."""
    violating = write(tmp_path, "arch.json", [CONV] * 9)
    command = [sys.executable, "-m", "cnnplan.service.cli.main", "validate"]
    assert subprocess.run([*command, "--preset", "vgg16"], capture_output=True).returncode == 0
    assert subprocess.run([*command, violating, "--image-size", "19"], capture_output=True).returncode == 1
    bad = subprocess.run([*command, violating], capture_output=True, text=True)
    assert bad.returncode == 2 and "image_size" in bad.stderr


def test_openapi_command_prints_the_spec(runner):
    result = runner.invoke(main, ["openapi"])
    assert result.exit_code == 0
    spec = json.loads(result.output)
    assert {
        "/plan",
        "/validate",
        "/plan/batch",
        "/validate/batch",
        "/presets",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(spec["paths"])


def test_validate_repair_prints_the_repaired_network(runner):
    result = runner.invoke(main, ["validate", "--preset", "resnet50", "--image-size", "224", "--repair"])
    assert result.exit_code == 1, result.output  # the input violates
    assert "remove the last 16 convolutions of the feature level" in result.output
    # the receptive-field fix goes first: it also removes layer4.0.conv2, whose c-value was too small
    assert "Repaired: VALID after 1 edit, depth 37" in result.output
    answer = runner.invoke(main, ["validate", "--preset", "resnet50", "--image-size", "224", "--repair", "--json"])
    body = json.loads(answer.output)
    assert body["repair"]["valid"] and body["repair"]["result"]["depth"] == 37
    assert [edit["convolutions"] for edit in body["repair"]["edits"]] == [16]
