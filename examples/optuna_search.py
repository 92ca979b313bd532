"""An Optuna architecture search whose candidates are screened by the theory before any training.

Search space (fixed, so that NSGA-II can cross over): number of stages 1..8, layers per stage 1..10,
kernel size 3/5/7, downsampling maxpool/avgpool/conv. Each generation of candidates is validated in
one ``POST /validate/batch?view=summary`` call through `cnnplan.service.client.PlannerClient`, each
candidate in the compact ``chain`` form (its stages, kernel, downsampling and width: a few dozen bytes,
so 1,000 fit one request) and answered by its verdict alone (no per-layer list); the constraint margins go
to Optuna's constraint mechanism (``Trial.set_constraint`` on Optuna >= 5, the sampler's
``constraints_func`` before; values > 0 mean infeasible), so the sampler steers away from
architectures the theory rules out and no training time is spent on them.

The objective here is a cheap proxy, NOT a trained accuracy: the theory's own preference (depth,
then the top receptive field closer to the image side). Swap `proxy_objective` for a real (short)
training run on the feasible candidates in practice; infeasible ones need none.

    cnnplan serve &   # or any running cnnplan service
    .venv/bin/python examples/optuna_search.py --url http://127.0.0.1:8000 --trials 64 --generation 16
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnplan.service.client import PlannerClient

MAX_STAGES = 8
MAX_LAYERS = 10
KERNELS = (3, 5, 7)
DOWNSAMPLING = ("maxpool", "avgpool", "conv")
CONSTRAINTS = ("c_value_deficit", "receptive_field_excess", "rejected")


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    """One candidate from the fixed search space (stage lengths past n_stages are sampled but unused)."""
    n_stages = trial.suggest_int("n_stages", 1, MAX_STAGES)
    lengths = [trial.suggest_int(f"a{i}", 1, MAX_LAYERS) for i in range(1, MAX_STAGES + 1)]
    return {
        "stages": lengths[:n_stages],
        "kernel_size": trial.suggest_categorical("kernel_size", KERNELS),
        "downsample": trial.suggest_categorical("downsample", DOWNSAMPLING),
    }


def candidate_layers(stages: list[int], kernel_size: int, downsample: str, width: int = 32) -> list[dict[str, Any]]:
    """The feature level of a candidate: k x k 'same' convs + ReLU; a 2x2 stride-2 pool between stages, or
    a stride-2 conv opening each stage after the first (downsample='conv')."""
    layers: list[dict[str, Any]] = []
    for stage, count in enumerate(stages, start=1):
        if stage > 1 and downsample != "conv":
            layers.append({"type": downsample, "kernel_size": 2, "stride": 2})
        for position in range(count):
            stride = 2 if downsample == "conv" and stage > 1 and position == 0 else 1
            layers.append(
                {"type": "conv", "kernel_size": kernel_size, "stride": stride, "padding": "same", "out_channels": width}
            )
            layers.append({"type": "relu"})
    return layers


def chain_request(candidate: dict[str, Any], image_size: int, min_c_value: str, width: int = 32) -> dict[str, Any]:
    """A /validate body for a candidate in the compact chain form (the same layers as `candidate_layers`)."""
    chain = {**candidate, "width": width}
    return {"image_size": image_size, "min_c_value": min_c_value, "chain": chain}


def constraint_values(item: dict[str, Any]) -> list[float]:
    """Optuna constraints (<= 0 feasible): the largest c-value deficit t - c among the violations (0 when
    there is none), (top r - z) / z, and 1 when the service rejected the candidate outright (e.g. a feature
    map that vanishes). A summary answer carries everything this needs."""
    if not item["ok"]:
        return [0.0, 0.0, 1.0]
    report = item["result"]
    deficits = [
        Fraction(v["limit_exact"]) - Fraction(v["value_exact"])
        for v in report["violations"]
        if v["constraint"] == "c_value"
    ]
    deficit = float(max(deficits)) if deficits else 0.0
    excess = max(  # per axis: the top receptive field against that axis's limit
        (r - limit) / limit for r, limit in zip(report["top_receptive_field"], report["receptive_field_limit"])
    )
    return [deficit, float(excess), 0.0]


def proxy_objective(item: dict[str, Any]) -> float:
    """Cheap stand-in for accuracy (no training): depth + top receptive field / z (the theory's tie-break)."""
    if not item["ok"]:
        return 0.0
    report = item["result"]
    return report["depth"] + max(r / z for r, z in zip(report["top_receptive_field"], report["receptive_field_limit"]))


def constraints_func(trial: optuna.trial.FrozenTrial) -> list[float]:
    """What a pre-5.0 sampler reads (``constraints_func``): the margins stored before the trial was told."""
    return trial.user_attrs["constraints"]


NATIVE_CONSTRAINTS = hasattr(optuna.trial.Trial, "set_constraint")
"""Optuna >= 5 records constraints on the trial; `constraints_func` is deprecated there."""


def run_study(
    client: PlannerClient,
    image_size: int = 224,
    trials: int = 64,
    generation: int = 16,
    seed: int = 0,
    min_c_value: str = "1/6",
) -> optuna.Study:
    """Ask a generation, validate it in one batch call, tell Optuna the proxy and the constraint margins."""
    legacy = {} if NATIVE_CONSTRAINTS else {"constraints_func": constraints_func}
    sampler = optuna.samplers.NSGAIISampler(population_size=generation, seed=seed, **legacy)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    done = 0
    while done < trials:
        batch = [study.ask() for _ in range(min(generation, trials - done))]
        candidates = [suggest(trial) for trial in batch]
        requests = [chain_request(candidate, image_size, min_c_value) for candidate in candidates]
        results = client.validate_batch(requests, view="summary").model_dump(mode="json")["results"]
        for trial, candidate, item in zip(batch, candidates, results):
            margins = constraint_values(item)
            trial.set_user_attr("constraints", margins)
            if NATIVE_CONSTRAINTS:
                for name, value in zip(CONSTRAINTS, margins):
                    trial.set_constraint(name, value)
            trial.set_user_attr("candidate", candidate)
            trial.set_user_attr("feasible", all(value <= 0 for value in margins))
            study.tell(trial, proxy_objective(item))
        done += len(batch)
    return study


def summary(study: optuna.Study) -> dict[str, Any]:
    """Counts and the best feasible candidate."""
    trials = study.trials
    feasible = [trial for trial in trials if trial.user_attrs.get("feasible")]
    best = max(feasible, key=lambda trial: trial.value, default=None)
    return {
        "trials": len(trials),
        "feasible": len(feasible),
        "screened_out": len(trials) - len(feasible),
        "best": None if best is None else {"value": best.value, **best.user_attrs["candidate"]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Theory-pruned Optuna search against a cnnplan service.")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--generation", type=int, default=16, help="candidates per generation (one batch call)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with PlannerClient(args.url) as client:
        study = run_study(client, args.image_size, args.trials, args.generation, args.seed)
    result = summary(study)
    print(
        f"{result['trials']} trials: {result['feasible']} feasible, {result['screened_out']} screened out by the theory "
        "before any training"
    )
    print(f"best feasible (proxy, not accuracy): {result['best']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
