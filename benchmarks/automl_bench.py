"""Candidates/s of POST /validate/batch on the Optuna example's search space, in one process (one core).

The candidates are drawn (seeded) from `examples/optuna_search.py`'s space: 1..8 stages of 1..10
k x k 'same' convolutions (k in 3, 5, 7), maxpool/avgpool/conv downsampling, 32 filters, image 224,
t = 1/6. One batch of ``--candidates`` is sent through httpx's in-process ASGI transport (a real client:
it encodes the body and parses the answer; no sockets) to the service app, in two forms:

* ``full``: the explicit layer list of each candidate, the full answer (today's request);
* ``summary``: the compact ``chain`` form, ``?view=summary`` (what the example sends now);
* ``explicit-summary``: the explicit layer list, ``?view=summary`` (the generic analysis without the fixes'
  search: a client that cannot send chains).

Each form is timed ``--repeats`` times, alternating, and the median is printed with the body and
answer sizes, as candidates per wall-clock second and per CPU-second of the process (the one-core
rate, free of whatever else the machine runs). Usage::

    python benchmarks/automl_bench.py                      # 1000 candidates, 5 repeats
    python benchmarks/automl_bench.py --candidates 512 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from optuna_search import candidate_layers, chain_request, suggest  # noqa: E402


def candidates(count: int, seed: int = 0) -> list[dict]:
    """`count` candidates of the example's space, drawn by Optuna's random sampler."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [suggest(study.ask()) for _ in range(count)]


VIEWS = {"full": "full", "summary": "summary", "explicit-summary": "summary"}
"""The view each form asks for."""


async def timed_batch(client, body: bytes, view: str) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds of this process, answer bytes, items ok) of one POST /validate/batch."""
    start, cpu = time.perf_counter(), time.process_time()
    response = await client.post(
        "/validate/batch", params={"view": view}, content=body, headers={"content-type": "application/json"}
    )
    results = response.json()["results"]
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert response.status_code == 200, response.text[:500]
    return elapsed, cpu, len(response.content), sum(item["ok"] for item in results)


async def run(count: int, repeats: int) -> dict:
    import httpx

    from cnnplan.service.api.app import create_app
    from cnnplan.service.settings import Settings

    drawn = candidates(count)
    bodies = {
        "full": [{"image_size": 224, "min_c_value": "1/6", "layers": candidate_layers(**c)} for c in drawn],
        "summary": [chain_request(c, 224, "1/6") for c in drawn],
    }
    bodies["explicit-summary"] = bodies["full"]
    encoded = {form: json.dumps({"requests": items}).encode() for form, items in bodies.items()}
    app = create_app(Settings(embedded_worker=False, redis_url=None, max_body_bytes=64 * 1024 * 1024))
    times: dict[str, list[float]] = {form: [] for form in encoded}
    cpu_times: dict[str, list[float]] = {form: [] for form in encoded}
    sizes: dict[str, int] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for form in encoded:  # warm-up
            await timed_batch(client, encoded[form], VIEWS[form])
        for _ in range(repeats):
            for form in encoded:
                seconds, cpu, answer_bytes, ok = await timed_batch(client, encoded[form], VIEWS[form])
                times[form].append(seconds)
                cpu_times[form].append(cpu)
                sizes[form] = answer_bytes
    report = {"candidates": count, "repeats": repeats, "load_average": os.getloadavg()[0]}
    for form in encoded:
        median, cpu = statistics.median(times[form]), statistics.median(cpu_times[form])
        report[form] = {"seconds": round(median, 4), "candidates_per_s": round(count / median),
                        "cpu_seconds": round(cpu, 4), "candidates_per_cpu_s": round(count / cpu),
                        "request_bytes": len(encoded[form]), "answer_bytes": sizes[form]}  # fmt: skip
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    report = asyncio.run(run(args.candidates, args.repeats))
    print(f"{args.candidates} candidates of the Optuna example's space, one POST /validate/batch, in-process "
          f"(httpx ASGI transport, one process), median of {args.repeats}; load average {report['load_average']:.2f}")  # fmt: skip
    for form, what in (("full", "explicit layers, view=full"), ("summary", "chain form, view=summary"),
                       ("explicit-summary", "explicit layers, view=summary")):  # fmt: skip
        r = report[form]
        print(f"  {form:<16} {r['candidates_per_s']:>7} candidates/s  {r['seconds'] * 1000:8.1f} ms  "
              f"({r['candidates_per_cpu_s']:>6} per CPU-second)  "
              f"request {r['request_bytes'] / 1024:8.1f} KiB  answer {r['answer_bytes'] / 1024:9.1f} KiB  ({what})")  # fmt: skip
    print(f"  summary / full: {report['summary']['candidates_per_s'] / report['full']['candidates_per_s']:.1f}x")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
