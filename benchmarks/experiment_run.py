"""Run one experiment in-process (no service) and write its result JSON as it grows.

    python benchmarks/experiment_run.py OUTPUT.json [REQUEST.json] [--workers N]

REQUEST.json is a POST /experiments body (default: the default experiment, ``{}``). Equivalent to
``cnnplan experiment run --local``; the figure is drawn from the JSON with ``cnnplan experiment figure``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cnnplan.service.experiments.local import run_local


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("request", type=Path, nargs="?")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    request = json.loads(args.request.read_text()) if args.request else {}
    started = time.time()

    def report(run: dict, done: int, total: int) -> None:
        accuracy = run.get("test_accuracy")
        print(f"[{time.time() - started:7.0f} s] {done}/{total} {run['architecture']} seed {run['seed']}: "
              f"{run['status']} test acc {accuracy}", flush=True)  # fmt: skip

    run_local(request, args.output, workers=args.workers, on_run=report)
    print(f"done in {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
