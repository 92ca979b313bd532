"""``cnnplan experiment``: submit a training experiment (through the HTTP API, or ``--local`` in this
process), follow it with a progress bar, write the result JSON and the figure; draw a figure or a
picture of dataset samples from the command line (docs/experiments.md)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from cnnplan.service.settings import get_settings

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


@click.group()
def experiment() -> None:
    """Test the theory: train the plan, its depth variants and constraint breakers; plot accuracy vs depth."""


def _body(config: Path | None, overrides: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(config.read_text(encoding="utf-8")) if config else {}
    body.update({name: value for name, value in overrides.items() if value is not None})
    return body


def _write_outputs(result: dict[str, Any], output: Path, figure: Path | None) -> None:
    from cnnplan.service.experiments.figure import experiment_image
    from cnnplan.service.experiments.local import write_json
    from cnnplan.service.experiments.results import format_table

    write_json(output, result)
    click.echo(f"wrote {output}", err=True)
    if figure is not None and any(entry["test_accuracy"]["n"] for entry in result["architectures"]):
        figure.write_bytes(experiment_image(result, figure.suffix.lstrip(".") or "svg"))
        click.echo(f"wrote {figure}", err=True)
    click.echo(format_table(result))


def _run_local(body: dict[str, Any], output: Path, figure: Path | None, workers: int) -> None:
    from cnnplan.service.experiments.local import run_local
    from cnnplan.service.experiments.schemas import ExperimentRequest
    from cnnplan.service.experiments.spec import ExperimentInputError, experiment_spec

    settings = get_settings()
    try:
        spec = experiment_spec(ExperimentRequest.model_validate(body), settings.experiment_data_root)
    except ValidationError as error:
        first = error.errors()[0]
        click.echo(f"error: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except ExperimentInputError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    total = len(spec.architectures) * len(spec.request.seeds)
    with click.progressbar(length=total, label=f"{total} runs", file=sys.stderr) as bar:
        result = run_local(
            body, output, workers, settings.experiment_data_root, lambda _run, _done, _total: bar.update(1)
        )
    _write_outputs(result, output, figure)


def _problem_text(answer: Any) -> str:
    problem = answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
    return (
        f"{problem.get('field') or answer.status_code}: {problem.get('reason') or problem.get('detail') or answer.text}"
    )


def _run_remote(body: dict[str, Any], output: Path, figure: Path | None, url: str | None, api_key: str | None,
                poll: float) -> None:  # fmt: skip
    import httpx

    settings = get_settings()
    base = url or f"http://{settings.host}:{settings.port}"
    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        try:
            answer = client.post("/experiments", json=body)
        except httpx.HTTPError as error:
            click.echo(f"error: cannot reach the API at {base}: {error} (is `cnnplan serve` running?)", err=True)
            sys.exit(EXIT_FAILED)
        if answer.status_code != 202:
            click.echo(f"error: {_problem_text(answer)}", err=True)
            sys.exit(EXIT_BAD_INPUT if 400 <= answer.status_code < 500 else EXIT_FAILED)
        location, job = answer.headers["Location"], answer.json()
        click.echo(f"experiment {job['id']} queued: {len(job['runs'])} runs", err=True)
        failures = 0
        with click.progressbar(length=1000, label="training", file=sys.stderr) as bar:
            shown = 0
            while job["status"] in ("queued", "running"):
                time.sleep(poll)
                try:
                    job = client.get(location).raise_for_status().json()
                    failures = 0
                except httpx.HTTPError as error:  # a restarting server: the experiment is durable, keep asking
                    failures += 1
                    if failures * poll >= 120:
                        click.echo(f"\nerror: lost the API at {base} ({error}); the experiment continues: "
                                   f"GET {base}{location}", err=True)  # fmt: skip
                        sys.exit(EXIT_FAILED)
                    continue
                target = int(job["progress"] * 1000)
                bar.update(max(0, target - shown))
                shown = max(shown, target)
            bar.update(1000 - shown)
    if job["status"] != "succeeded":
        click.echo(f"experiment {job['status']}: {(job.get('error') or {}).get('message', '')}", err=True)
        sys.exit(EXIT_FAILED)
    _write_outputs(job["result"], output, figure)


@experiment.command("run")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A POST /experiments body (JSON); the options below override its fields.")  # fmt: skip
@click.option("--image-size", type=int)
@click.option("--dataset", type=click.Choice(["relations", "multiscale", "image_folder"]))
@click.option("--epochs", type=int)
@click.option("--seeds", type=int, help="Train seeds 0..N-1.")
@click.option("--train-samples", type=int)
@click.option("--test-samples", type=int)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("experiment.json"),
              show_default=True, help="Result JSON.")  # fmt: skip
@click.option("--figure", type=click.Path(dir_okay=False, path_type=Path), default=Path("experiment.svg"),
              show_default=True, help="The figure (.svg or .png).")  # fmt: skip
@click.option("--local", is_flag=True, help="Train in this process tree instead of through the API.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="--local: processes.")
@click.option("--url", default=None, help="API base URL (default http://CNNPLAN_HOST:CNNPLAN_PORT).")
@click.option("--api-key", envvar="CNNPLAN_API_KEY", default=None, help="Sent as X-API-Key (or CNNPLAN_API_KEY).")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between status requests.")
def run(
    config: Path | None, image_size: int | None, dataset: str | None, epochs: int | None, seeds: int | None,
    train_samples: int | None, test_samples: int | None, output: Path, figure: Path, local: bool, workers: int,
    url: str | None, api_key: str | None, poll: float,
) -> None:  # fmt: skip
    """Run an experiment (default: relations, z = 32, 3 seeds), write OUTPUT and FIGURE, print the table."""
    body = _body(config, {"image_size": image_size, "dataset": dataset, "epochs": epochs,
                          "seeds": list(range(seeds)) if seeds else None, "train_samples": train_samples,
                          "test_samples": test_samples})  # fmt: skip
    if local:
        _run_local(body, output, figure, workers)
    else:
        _run_remote(body, output, figure, url, api_key, poll)


@experiment.command("figure")
@click.argument("result", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("figure", type=click.Path(dir_okay=False, path_type=Path))
def figure_command(result: Path, figure: Path) -> None:
    """Draw FIGURE (.svg or .png) from a RESULT JSON written by `cnnplan experiment run`."""
    from cnnplan.service.experiments.figure import experiment_image

    document = json.loads(result.read_text(encoding="utf-8"))
    figure.write_bytes(experiment_image(document, figure.suffix.lstrip(".") or "svg"))
    click.echo(f"wrote {figure}", err=True)


@experiment.command("merge")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
def merge(results: tuple[Path, ...], output: Path) -> None:
    """Merge RESULTS of the same task (e.g. a supplementary t-sweep) into OUTPUT; prints the table."""
    from cnnplan.service.experiments.local import write_json
    from cnnplan.service.experiments.results import format_table, merge_results

    try:
        merged = merge_results([json.loads(path.read_text(encoding="utf-8")) for path in results])
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    write_json(output, merged)
    click.echo(format_table(merged))


@experiment.command("samples")
@click.argument("figure", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--image-size", type=int, default=32, show_default=True)
@click.option("--count", type=click.IntRange(1, 8), default=4, show_default=True, help="Samples per class.")
@click.option("--seed", type=int, default=0, show_default=True)
def samples(figure: Path, image_size: int, count: int, seed: int) -> None:
    """Draw FIGURE (.png or .svg): `count` samples per class of the relations and multiscale datasets."""
    from cnnplan.service.experiments.samples import samples_image

    figure.write_bytes(samples_image(image_size, count, seed, figure.suffix.lstrip(".") or "png"))
    click.echo(f"wrote {figure}", err=True)


__all__ = ["experiment"]
