"""Run a whole experiment in this process tree, without the service (``cnnplan experiment run --local``).

Runs go seed by seed (every architecture of seed 0, then seed 1, ...) on a pool of `workers`
processes; after each finished run the result document so far is written to `output` (atomically), so
a long run can be read, plotted or stopped at any time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from cnnplan.service.experiments.results import aggregate, environment, run_record
from cnnplan.service.experiments.spec import experiment_spec, run_architecture


def _one(request: dict[str, Any], index: int, seed: int, data_root: str | None) -> dict[str, Any]:
    return run_architecture(experiment_spec(request, data_root), index, seed, data_root)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write `document` to `path` through a temporary file and a rename (readers never see half a file)."""
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def run_local(
    request: dict[str, Any],
    output: Path | None = None,
    workers: int = 1,
    data_root: str | None = None,
    on_run: Callable[[dict[str, Any], int, int], None] = lambda _run, _done, _total: None,
) -> dict[str, Any]:
    """Every architecture x seed of `request`; the result document (also written to `output` as it grows)."""
    spec = experiment_spec(request, data_root)
    runs = [run_record(spec, index, seed) for seed in spec.request.seeds for index in range(len(spec.architectures))]
    env = environment()
    done = 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future, dict[str, Any]] = {
            pool.submit(
                _one,
                spec.request.model_dump(mode="json", warnings=False),
                run["architecture_index"],
                run["seed"],
                data_root,
            ): run
            for run in runs
        }
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                run = pending.pop(future)
                try:
                    run.update(future.result(), status="succeeded", progress=1.0)
                except Exception as error:  # one failed run does not sink the experiment
                    run.update(status="failed", error={"type": type(error).__name__, "message": str(error)})
                done += 1
                on_run(run, done, len(runs))
                if output is not None:
                    write_json(output, aggregate(spec, runs, env))
    return aggregate(spec, runs, env)


__all__ = ["run_local", "write_json"]
