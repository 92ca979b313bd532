"""The load benchmark script (benchmarks/load_bench.py) end to end, in a short run: it starts a real
uvicorn, drives both endpoints with its Python clients, stops the server and reports zero errors.
Its figures are printed, never asserted (they depend on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("app", "target"),
    [
        ("service", "cnnplan.service.api.app:app"),
        ("floor", "floor_app:median_answer_app"),
        ("floor-tiny", "floor_app:tiny_answer_app"),
        ("bare", "floor_app:bare_asgi_app"),
    ],
)
def test_a_short_run_serves_both_endpoints_without_errors(app, target):
    command = [sys.executable, str(ROOT / "benchmarks" / "load_bench.py"), "--app", app, "--generator", "python",
               "--duration", "1", "--rounds", "1", "--connections", "2", "--json"]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150, check=False)
    print(run.stdout, run.stderr[-2000:], sep="\n")
    assert run.returncode == 0
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["app"] == target
    for endpoint in ("healthz", "plan"):
        assert summary[endpoint]["requests"] > 0 and summary[endpoint]["errors"] == 0


FLOOR_CHECK = """
import json, sys
from fastapi.testclient import TestClient
import floor_app
client = TestClient(floor_app.median_answer_app())
answers = [client.post("/plan", json={"image_size": side}).json() for side in (32, 1024)]
bad = client.post("/plan", json={"image_size": 0})
bare = TestClient(floor_app.bare_asgi_app()).post("/plan", json={"image_size": 32})
median = json.loads(floor_app.orjson.dumps(floor_app.median_answer()))  # tuples become lists, as on the wire
print(json.dumps({"same": answers[0] == answers[1] == median, "depth": answers[0]["depth"],
                  "bad": [bad.status_code, bad.json()["field"]], "bare": [bare.status_code, bare.content.decode()]}))
"""


def test_the_floor_answers_one_fixed_plan_but_still_validates_every_body():
    """In a subprocess: a floor patches the /plan route of the process that serves it."""
    run = subprocess.run(
        [sys.executable, "-c", FLOOR_CHECK],
        cwd=ROOT / "benchmarks", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["same"] is True and outcome["depth"] > 1
    assert outcome["bad"] == [422, "image_size"]
    assert outcome["bare"] == [200, '{"status":"ok"}']
