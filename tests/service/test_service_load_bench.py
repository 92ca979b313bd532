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
@pytest.mark.parametrize(("app", "module"), [("service", "service.app:app"), ("floor", "floor_app:app")])
def test_a_short_run_serves_both_endpoints_without_errors(app, module):
    command = [sys.executable, str(ROOT / "benchmarks" / "load_bench.py"), "--app", app, "--generator", "python",
               "--duration", "1", "--rounds", "1", "--connections", "2", "--json"]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150, check=False)
    print(run.stdout, run.stderr[-2000:], sep="\n")
    assert run.returncode == 0
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["app"] == module
    for endpoint in ("healthz", "plan"):
        assert summary[endpoint]["requests"] > 0 and summary[endpoint]["errors"] == 0
