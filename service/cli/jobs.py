"""``cnnplan worker`` (join a benchmark worker to the configured broker) and ``cnnplan bench`` (submit a
benchmark job through the HTTP API, follow it with a progress bar, print the result table)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from cnnplan.service.settings import get_settings

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
LONG_JOB_SECONDS = 120
"""`cnnplan bench` warns before a job estimated to take longer than this."""


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def estimate_line(estimate: dict[str, Any]) -> str:
    """What `cnnplan bench` prints about a job's estimate before following it."""
    basis = "measured" if estimate["basis"] == "measured" else "nominal (torch not importable by the API)"
    return (
        f"estimated {format_duration(estimate['seconds'])}: {estimate['flops'] / 1e12:.2f} TFLOP at "
        f"{estimate['device_flops_per_second'] / 1e9:.1f} GFLOP/s on {estimate['device']} ({basis})"
    )


def long_job_warning(estimate: dict[str, Any], job_url: str) -> str | None:
    """The warning for a job estimated past `LONG_JOB_SECONDS`, else None."""
    if estimate["seconds"] <= LONG_JOB_SECONDS:
        return None
    return (
        f"warning: this benchmark will take more than {format_duration(LONG_JOB_SECONDS)}; fewer or smaller "
        "--batch-size values, fewer --iterations or a smaller image finish sooner (Ctrl-C leaves it running: "
        f"DELETE {job_url} cancels it)"
    )


def remaining_seconds(estimate: dict[str, Any] | None, progress: float, running_for: float | None) -> float | None:
    """The ETA: from the progress so far once there is some (elapsed x (1 - p) / p), else the estimate
    less the time already running; None when neither is known."""
    if running_for is not None and progress >= 0.05:
        return running_for * (1 - progress) / progress
    if estimate is not None:
        return max(0.0, estimate["seconds"] - (running_for or 0.0))
    return None


def end_reason(job: dict[str, Any]) -> str:
    """The line printed for a job that did not succeed: its status and why (who cancelled it, why it failed)."""
    if job.get("status") == "cancelled" and job.get("reason"):
        return f"job cancelled by {job.get('cancelled_by') or 'anonymous'}: {job['reason']}"
    error = job.get("error") or {}
    if error.get("message"):
        where = f" ({error['field']})" if error.get("field") else ""
        return f"job {job['status']}: {error.get('type', 'error')}{where}: {error['message']}"
    return f"job {job['status']}: no reason was recorded (a record from an older service)"


@click.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Jobs run at once.")
@click.option("--loglevel", default="info", show_default=True)
def worker(concurrency: int, loglevel: str) -> None:
    """Run a benchmark and experiment worker on the configured broker (embedded SQLite files, or CNNPLAN_REDIS_URL)."""
    from cnnplan.service.worker import benchmark  # noqa: F401  torch loads once here, before the pool forks, not inside a job's lease
    from cnnplan.service.worker.celery_app import BENCHMARK_QUEUE, EXPERIMENT_QUEUE, app

    app.worker_main(
        [
            "worker", "--queues", f"{BENCHMARK_QUEUE},{EXPERIMENT_QUEUE}", "--concurrency", str(concurrency), "--pool", "prefork",
            "--loglevel", loglevel, "--hostname", f"cnnplan-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
    )  # fmt: skip


def parse_image_size(_ctx: click.Context, _param: click.Parameter, value: str) -> int | tuple[int, int]:
    """``224`` or ``224x160``, read by `parse_image_size_text` (the rule of GET /plan and ``cnnplan plan``)."""
    from cnnplan.service.schemas import parse_image_size_text
    from cnnplan.solver.errors import SolverError

    try:
        return parse_image_size_text(value)
    except SolverError as error:
        raise click.BadParameter(f"{error.field}: {error.reason}") from None


def result_rows(result: dict[str, Any]) -> list[list[str]]:
    return [
        [
            str(row["batch_size"]),
            f"{row['latency_ms_p50']:.3f}",
            f"{row['latency_ms_p90']:.3f}",
            f"{row['images_per_second']:.1f}",
            f"{row['tflops_per_second']:.4f}",
            f"{row['peak_memory_bytes'] / 2**20:.0f}",
        ]
        for row in result["results"]
    ]


def format_result(result: dict[str, Any]) -> str:
    """The header lines and the per-batch-size table of a finished job."""
    env, options = result["environment"], result["options"]
    headers = ["batch", "p50 ms", "p90 ms", "images/s", "TFLOP/s", "peak MiB"]
    rows = result_rows(result)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        f"device {env['device']} ({env['device_name']}), torch {env['torch']}, CUDA {env['cuda'] or '-'}, "
        f"driver {env['driver'] or '-'}",
        f"{options['mode']}, {options['dtype']}, channels_last={options['channels_last']}, compile={options['compile']}; "
        f"image {result['image_size'][0]}x{result['image_size'][1]}, params {result['params']:,}, "
        f"FLOPs/image {result['flops']:,}",
        "  ".join(h.rjust(w) for h, w in zip(headers, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


@click.command()
@click.argument("image_size", callback=parse_image_size, metavar="SIZE")
@click.option("--batch-size", "-b", "batch_sizes", type=int, multiple=True, default=(32,), show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True)
@click.option("--mode", type=click.Choice(["inference", "training"]), default="inference", show_default=True)
@click.option("--warmup", type=int, default=2, show_default=True)
@click.option("--iterations", type=int, default=10, show_default=True)
@click.option("--channels-last", is_flag=True)
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the module.")
@click.option("--num-classes", type=int, default=1000, show_default=True)
@click.option("--width-base", type=int, default=64, show_default=True)
@click.option("--max-width", type=int, default=512, show_default=True)
@click.option("--url", default=None, help="API base URL (default http://CNNPLAN_HOST:CNNPLAN_PORT).")
@click.option("--api-key", envvar="CNNPLAN_API_KEY", default=None, help="Sent as X-API-Key (or CNNPLAN_API_KEY).")
@click.option("--poll", type=float, default=0.5, show_default=True, help="Seconds between status requests.")
def bench(
    image_size: int | tuple[int, int], batch_sizes: tuple[int, ...], device: str, dtype: str, mode: str, warmup: int,
    iterations: int, channels_last: bool, compile_: bool, num_classes: int, width_base: int, max_width: int,
    url: str | None, api_key: str | None, poll: float,
) -> None:  # fmt: skip
    """Benchmark the planned network for SIZE through the HTTP API of a running `cnnplan serve`."""
    import httpx

    settings = get_settings()
    base = url or f"http://{settings.host}:{settings.port}"
    body = {
        "plan": {"image_size": image_size, "num_classes": num_classes,
                 "widths": {"base": width_base, "multiplier": 2, "max_width": max_width}},
        "device": device, "dtype": dtype, "mode": mode, "batch_sizes": list(batch_sizes), "warmup": warmup,
        "iterations": iterations, "channels_last": channels_last, "compile": compile_,
    }  # fmt: skip
    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        try:
            answer = client.post("/benchmarks", json=body)
        except httpx.HTTPError as error:
            click.echo(f"error: cannot reach the API at {base}: {error} (is `cnnplan serve` running?)", err=True)
            sys.exit(EXIT_FAILED)
        if answer.status_code != 202:
            problem = answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
            click.echo(
                f"error: {problem.get('field') or answer.status_code}: {problem.get('reason') or problem.get('detail') or answer.text}",
                err=True,
            )
            sys.exit(EXIT_BAD_INPUT if 400 <= answer.status_code < 500 else EXIT_FAILED)
        location = answer.headers["Location"]
        job = answer.json()
        click.echo(f"job {job['id']} queued", err=True)
        estimate = job.get("estimate")
        if estimate is not None:
            click.echo(estimate_line(estimate), err=True)
            warning = long_job_warning(estimate, f"{base}{location}")
            if warning:
                click.echo(warning, err=True)
        started: float | None = None

        def eta(_item: object) -> str:
            left = remaining_seconds(estimate, job["progress"], None if started is None else time.monotonic() - started)
            return "" if left is None else f"ETA {format_duration(left)}"

        with click.progressbar(
            length=1000, label="benchmarking", file=sys.stderr, show_eta=False, item_show_func=eta
        ) as bar:
            shown = 0
            failures = 0
            while job["status"] in ("queued", "running"):
                time.sleep(poll)
                try:
                    job = client.get(location).raise_for_status().json()
                    failures = 0
                except httpx.HTTPError as error:  # a restarting server: the job is durable, keep asking
                    failures += 1
                    if failures * poll >= 60:
                        click.echo(f"\nerror: lost the API at {base} for a minute ({error}); the job continues: "
                                   f"GET {base}{location}", err=True)  # fmt: skip
                        sys.exit(EXIT_FAILED)
                if started is None and job["status"] == "running":
                    started = time.monotonic()
                target = int(job["progress"] * 1000)
                bar.update(max(0, target - shown), current_item=job)
                shown = max(shown, target)
            bar.update(1000 - shown)
    if job["status"] != "succeeded":
        click.echo(end_reason(job), err=True)
        sys.exit(EXIT_FAILED)
    click.echo(format_result(job["result"]))


@click.group()
def jobs_cli() -> None:
    """The job commands alone (``python -m cnnplan.service.cli.jobs worker``)."""


jobs_cli.add_command(worker)
jobs_cli.add_command(bench)

if __name__ == "__main__":
    jobs_cli()
