"""A fleet on loopback, and the fault run: N API processes, M Celery workers, one redis-server (append-only).

``python benchmarks/fleet.py up`` starts the fleet and keeps it until Ctrl-C::

    one redis-server      on a free port, its own temp dir, --appendonly yes --appendfsync everysec
    one `cnnplan serve --workers N` (uvicorn: N API processes accepting on one port), no embedded worker
    M `cnnplan worker --concurrency 1` processes on the same Redis (broker, result backend, job store)

``python benchmarks/fleet.py faults`` starts it, runs a bounded loopback load (64 clients of the Python
client, about a minute: plan, validate, both batches, benchmark and experiment submissions, under two
API keys) and, while the load runs, injects the three faults in turn:

    api      SIGKILL one API process: the others keep answering; the requests that were in flight on
             it lose their connection (counted) and the client's retries recover them;
    worker   SIGKILL the worker running a job mid-run: another worker re-runs the job to success;
    redis    SIGTERM redis-server and start it again on the same port and data: every job record and
             finished result is there afterwards; job routes answer 503 with Retry-After meanwhile.

Then it waits for every job to finish and checks that each finished exactly once (one written run per
job in the Celery results, none run to completion twice, none stuck); an experiment likewise, each of
its runs (one Celery task per architecture x seed) written exactly once. Figures (requests, errors by
cause, jobs, re-runs, p50/p99 per kind, RSS of each process before and after) are printed, and with
``--json`` as one JSON line at the end. Exit status 0 when every check held. Only 127.0.0.1 is used;
nothing here touches any other Redis. The machine's shared Redis on 6379 is never used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
KEYS = {"alice": "fleet-alice-key-0123456789", "bob": "fleet-bob-key-9876543210ab"}
ADMIN_KEY = "fleet-admin-key-55aa55aa55aa"
TINY = {"image_size": 32, "widths": {"base": 4, "multiplier": 2, "max_width": 8}, "num_classes": 10}
QUICK_JOB = {"plan": TINY, "device": "cpu", "batch_sizes": [1], "warmup": 0, "iterations": 2}
LONG_JOB = {"plan": TINY, "device": "cpu", "batch_sizes": [1, 2], "warmup": 0, "iterations": 1000}
"""Several seconds of work on one core: caught running, then re-run."""
EXPERIMENT = {
    "image_size": 16, "train_samples": 64, "test_samples": 32, "epochs": 1, "seeds": [0],
    "widths": {"base": 4, "multiplier": 2, "max_width": 8},
    "variants": {"baseline": True, "stage_scales": [], "too_deep": [], "too_long": [], "t_sweep": []},
}  # fmt: skip
"""Two runs (the plan and one conv per stage, one seed), about a second of training each."""
PRESETS = ("vgg11", "vgg16", "resnet18", "mobilenet_v1")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a live process (from /proc), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc/<pid>/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return sorted(set(found))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_until(condition: Callable[[], Any], what: str, timeout: float) -> Any:
    """Poll until `condition()` is truthy (a liveness guard); raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.2)


class RedisServer:
    """A private redis-server on `port` with append-only persistence in `directory` (stop, start again)."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, port
        self.process: subprocess.Popen | None = None
        self.executable = shutil.which("redis-server")
        if self.executable is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis(host=HOST, port=self.port, socket_connect_timeout=1, socket_timeout=5)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", HOST, "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "yes"],
            stdout=open(self.directory / "redis.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_until(self.answers, "redis-server to answer", 30)

    def stop(self) -> None:
        """SIGTERM (redis writes and syncs its append-only file before it exits)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.process = None


@dataclass
class Fleet:
    """The processes of one fleet; `start` brings them up, `stop` tears them down."""

    workdir: Path
    api_processes: int = 2
    workers: int = 2
    lease_seconds: float = 4.0
    redis: RedisServer = field(init=False)
    port: int = field(default_factory=free_port)
    api: subprocess.Popen | None = None
    worker_procs: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.redis = RedisServer(self.workdir, free_port())

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CNNPLAN_")}
        env.update(
            CNNPLAN_REDIS_URL=self.redis.url, CNNPLAN_DATA_DIR=str(self.workdir / "data"),
            CNNPLAN_EMBEDDED_WORKER="false", CNNPLAN_PORT=str(self.port), CNNPLAN_HOST=HOST,
            CNNPLAN_API_KEYS=",".join(f"{owner}={key}" for owner, key in KEYS.items()),
            CNNPLAN_ADMIN_KEY=ADMIN_KEY, CNNPLAN_JOB_RATE_LIMIT="100000/minute",
            CNNPLAN_JOB_MAX_ACTIVE_PER_KEY="1000", CNNPLAN_JOB_LEASE_SECONDS=str(self.lease_seconds),
            CNNPLAN_JOB_MAX_ATTEMPTS="6", CNNPLAN_JOB_TIME_LIMIT="900", CNNPLAN_LOG_LEVEL="warning",
            OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT),
        )  # fmt: skip
        return env

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        return subprocess.Popen(
            args, env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def api_children(self) -> list[int]:
        """The API processes: uvicorn's spawned workers under the `cnnplan serve` supervisor."""
        assert self.api is not None
        return [pid for pid in children(self.api.pid) if "spawn_main" in cmdline(pid)]

    def _api_ready(self) -> bool:
        if len(self.api_children()) != self.api_processes:
            return False
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self) -> subprocess.Popen:
        index = len(self.worker_procs)
        args = [sys.executable, "-m", "cnnplan.service.cli.jobs", "worker", "--concurrency", "1"]
        process = self._spawn(args, f"worker-{index}")
        self.worker_procs.append(process)
        return process

    def start(self) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self.redis.start()
        serve = [sys.executable, "-m", "cnnplan.service.cli.main", "serve", "--workers", str(self.api_processes)]
        self.api = self._spawn(serve, "api")
        for _ in range(self.workers):
            self.start_worker()
        wait_until(self._api_ready, f"{self.api_processes} API processes", 180)
        wait_until(lambda: all(children(w.pid) for w in self.worker_procs), "the workers' pool processes", 180)

    def worker_holding(self, pool_pid: int) -> subprocess.Popen | None:
        """The worker whose pool process is `pool_pid`."""
        return next((w for w in self.worker_procs if w.poll() is None and pool_pid in children(w.pid)), None)

    def processes(self) -> dict[str, int]:
        """Every live process by role (redis, api supervisor and processes, workers and their pools)."""
        named = {f"redis {self.redis.process.pid}": self.redis.process.pid} if self.redis.process else {}
        if self.api is not None and self.api.poll() is None:
            named[f"api-supervisor {self.api.pid}"] = self.api.pid
            named |= {f"api {pid}": pid for pid in self.api_children()}
        for index, worker in enumerate(self.worker_procs):
            if worker.poll() is None:
                named[f"worker-{index} {worker.pid}"] = worker.pid
                named |= {f"worker-{index}-pool {pid}": pid for pid in children(worker.pid)}
        return named

    def rss(self) -> dict[str, int | None]:
        return {name: rss_bytes(pid) for name, pid in self.processes().items()}

    @staticmethod
    def _end(process: subprocess.Popen, sig: int, grace: float) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.api is not None:
            self._end(self.api, signal.SIGTERM, 30)
        for worker in self.worker_procs:
            self._end(worker, signal.SIGKILL, 30)  # a job left running is re-run by the next fleet
        self.redis.stop()


# -- the load -------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What the clients saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: Counter = field(default_factory=Counter)
    lost_connections: Counter = field(default_factory=Counter)
    retried_statuses: Counter = field(default_factory=Counter)
    jobs: dict[str, str] = field(default_factory=dict)
    experiments: dict[str, str] = field(default_factory=dict)
    phase: str = "warm-up"
    completed: Counter = field(default_factory=Counter)


class CountingTransport(httpx.AsyncBaseTransport):
    """The real transport, counting connections lost mid-request and the 429/503 answers retried."""

    def __init__(self, figures: Figures) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.figures = figures

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
        except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
            self.figures.lost_connections[(self.figures.phase, type(error).__name__)] += 1
            raise
        if response.status_code in (429, 503):
            self.figures.retried_statuses[(self.figures.phase, response.status_code)] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class JobPacing:
    """Allows `jobs` submissions (of one kind) spread evenly over `seconds` (so some fall in every fault)."""

    def __init__(self, jobs: int, seconds: float) -> None:
        self.jobs, self.spacing, self.allowed = jobs, seconds / max(1, jobs), 0
        self.started = time.monotonic()

    def __call__(self) -> bool:
        if self.allowed < self.jobs and time.monotonic() - self.started >= self.allowed * self.spacing:
            self.allowed += 1
            return True
        return False


async def one_request(client, rng: random.Random, figures: Figures, owner: str, pacing: dict[str, JobPacing]):
    """One request of the mix; returns its kind."""
    roll = rng.random()
    if roll < 0.15:  # a submission when its pacing allows one: benchmark or experiment first, by halves
        for kind in ("benchmark", "experiment") if roll < 0.075 else ("experiment", "benchmark"):
            if pacing[kind]():
                if kind == "benchmark":
                    figures.jobs[(await client.submit_benchmark(QUICK_JOB))["id"]] = owner
                else:
                    figures.experiments[(await client.submit_experiment(EXPERIMENT))["id"]] = owner
                return kind
    if roll < 0.5:
        await client.plan(image_size=rng.choice([32, 64, 96, 128, 224]), kernel_size=rng.choice([3, 5]))
        return "plan"
    if roll < 0.75:
        await client.validate(preset=rng.choice(PRESETS))
        return "validate"
    if roll < 0.875:
        await client.plan_batch([{"image_size": rng.choice([32, 64, 128])} for _ in range(3)])
        return "plan_batch"
    await client.validate_batch([{"preset": rng.choice(PRESETS)} for _ in range(3)])
    return "validate_batch"


async def client_loop(index: int, url: str, figures: Figures, stop: asyncio.Event, pacing, seed: int) -> None:
    """One client: requests back to back with a short random pause (the load is bounded by the pauses)."""
    from cnnplan.service.client import AsyncPlannerClient, RetryPolicy

    owner = "alice" if index % 2 == 0 else "bob"
    rng = random.Random(seed * 1000 + index)
    policy = RetryPolicy(retries=6, backoff=0.2, max_delay=2.0)
    async with AsyncPlannerClient(
        url, api_key=KEYS[owner], retry=policy, timeout=60, transport=CountingTransport(figures)
    ) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                kind = await one_request(client, rng, figures, owner, pacing)
            except Exception as error:  # counted, not raised: the figures say what failed and why
                figures.failures[(figures.phase, type(error).__name__, str(getattr(error, "status", "")))] += 1
                await asyncio.sleep(0.2)
                continue
            figures.latencies[kind].append(time.perf_counter() - started)
            figures.completed[figures.phase] += 1
            await asyncio.sleep(rng.uniform(0.0, 0.05))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- the faults -----------------------------------------------------------------------------------


def admin() -> httpx.Client:
    return httpx.Client(headers={"X-API-Key": ADMIN_KEY}, timeout=10)


def all_jobs(url: str, kind: str = "benchmarks") -> dict[str, dict]:
    """Every job record of `kind` (benchmarks, experiments), through the admin key (paged)."""
    jobs: dict[str, dict] = {}
    with admin() as http:
        offset = 0
        while True:
            page = http.get(f"{url}/{kind}", params={"limit": 100, "offset": offset}).raise_for_status().json()
            jobs |= {job["id"]: job for job in page["items"]}
            offset += 100
            if offset >= page["total"]:
                return jobs


def api_fault(fleet: Fleet, figures: Figures) -> dict[str, Any]:
    """SIGKILL one API process while the load runs; the supervisor starts a new one."""
    victims = fleet.api_children()
    victim = victims[0]
    figures.phase = "api"
    before = figures.completed["api"]
    os.kill(victim, signal.SIGKILL)
    time.sleep(3)
    served_meanwhile = figures.completed["api"] - before
    try:
        wait_until(lambda: len(fleet.api_children()) == fleet.api_processes, "uvicorn to replace the process", 60)
        replaced = victim not in fleet.api_children()
    except TimeoutError:
        replaced = False
    figures.phase = "after-api"
    return {"killed_pid": victim, "served_by_the_others_within_3s": served_meanwhile, "replaced": replaced}


def worker_fault(fleet: Fleet, figures: Figures) -> dict[str, Any]:
    """Submit a long job, SIGKILL the worker (main process and pool) running it mid-run; it must be re-run."""
    with admin() as http:
        job = http.post(f"{fleet.url}/benchmarks", json=LONG_JOB, headers={"Idempotency-Key": "fleet-long"}).json()

        def running() -> dict | None:
            current = http.get(f"{fleet.url}/benchmarks/{job['id']}").json()
            return current if current["status"] == "running" and current["progress"] > 0 else None

        current = wait_until(running, "the long job to run", 300)
    figures.phase = "worker"
    pool_pid = int(current["worker"].rsplit(":", 1)[1])
    worker = fleet.worker_holding(pool_pid)
    assert worker is not None, f"no worker holds pool process {pool_pid}"
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    figures.phase = "after-worker"
    return {"job": job["id"], "killed_worker_pid": worker.pid, "killed_pool_pid": pool_pid,
            "progress_when_killed": current["progress"]}  # fmt: skip


def redis_fault(fleet: Fleet, figures: Figures, down_seconds: float) -> dict[str, Any]:
    """SIGTERM redis-server, probe the job routes while it is down, start it again on the same data."""
    with admin() as http:  # work in the queue and one job running when redis goes down
        burst = [LONG_JOB | {"iterations": 300}] + [QUICK_JOB] * 3
        for index, body in enumerate(burst):
            answer = http.post(f"{fleet.url}/benchmarks", json=body, headers={"Idempotency-Key": f"burst-{index}"})
            figures.jobs[answer.raise_for_status().json()["id"]] = "admin"
        answer = http.post(f"{fleet.url}/experiments", json=EXPERIMENT, headers={"Idempotency-Key": "burst-experiment"})
        figures.experiments[answer.raise_for_status().json()["id"]] = "admin"
    time.sleep(1)
    snapshot, experiments = all_jobs(fleet.url), all_jobs(fleet.url, "experiments")
    probe_id = next(iter(snapshot))
    figures.phase = "redis"
    fleet.redis.stop()
    started_down = time.monotonic()
    probes: list[dict[str, Any]] = []
    with admin() as http:
        while time.monotonic() - started_down < down_seconds:
            for method, path, body in (("GET", f"/benchmarks/{probe_id}", None), ("GET", "/benchmarks", None),
                                       ("POST", "/benchmarks", QUICK_JOB), ("GET", "/experiments", None),
                                       ("POST", "/experiments", EXPERIMENT)):  # fmt: skip
                answer = http.request(method, fleet.url + path, json=body)
                probes.append({"route": f"{method} {path.split('/')[1]}", "status": answer.status_code,
                               "retry_after": answer.headers.get("retry-after")})  # fmt: skip
            plan = http.post(fleet.url + "/plan", json={"image_size": 64})
            probes.append({"route": "POST plan", "status": plan.status_code, "retry_after": None})
            time.sleep(0.5)
    fleet.redis.start()
    down_for = time.monotonic() - started_down
    after, experiments_after = all_jobs(fleet.url), all_jobs(fleet.url, "experiments")
    missing = sorted(set(snapshot) - set(after)) + sorted(set(experiments) - set(experiments_after))
    changed = sorted(
        job_id for before, now in ((snapshot, after), (experiments, experiments_after))
        for job_id, job in before.items()
        if job["status"] in ("succeeded", "failed") and (now.get(job_id) or {}).get("result") != job["result"]
    )  # fmt: skip
    figures.phase = "after-redis"
    job_probes = [p for p in probes if p["route"] != "POST plan"]
    return {
        "down_seconds": round(down_for, 1),
        "records_before": len(snapshot),
        "finished_before": sum(job["status"] in ("succeeded", "failed") for job in snapshot.values()),
        "queued_before": sum(job["status"] == "queued" for job in snapshot.values()),
        "running_before": sum(job["status"] == "running" for job in snapshot.values()),
        "experiments_before": len(experiments),
        "experiments_finished_before": sum(job["status"] in ("succeeded", "failed") for job in experiments.values()),
        "experiment_runs_pending_before": sum(
            run["status"] in ("queued", "running") for job in experiments.values() for run in job["runs"]
        ),
        "missing_after": missing,
        "finished_results_changed": changed,
        "job_route_probes": len(job_probes),
        "job_route_503_with_retry_after": sum(p["status"] == 503 and bool(p["retry_after"]) for p in job_probes),
        "plan_while_down": Counter(p["status"] for p in probes if p["route"] == "POST plan"),
    }


def task_runs(fleet: Fleet) -> dict[str, Counter]:
    """Per benchmark job and per experiment run (ids never shared: uuid4s), how its Celery deliveries that
    ran an attempt ended: written (succeeded/failed), ran to the end but `lost`, or stopped (`cancelled`)."""
    redis = fleet.redis.client()
    runs: dict[str, Counter] = defaultdict(Counter)
    for key in redis.scan_iter(match="celery-task-meta-*", count=500):
        meta = json.loads(redis.get(key) or b"{}")
        result = meta.get("result")
        if meta.get("status") == "SUCCESS" and isinstance(result, dict) and result.get("attempt") is not None:
            runs[result.get("job") or result["run"]][result["status"]] += 1
    return runs


PENDING = ("queued", "running")


def check_jobs(fleet: Fleet, figures: Figures, long_job: str, drain_seconds: float) -> dict[str, Any]:
    """Wait for every job and experiment to finish; then count outcomes, re-runs and runs per job (the
    experiments' in ``experiments``: `check_experiments`)."""

    def settled() -> tuple[dict[str, dict], dict[str, dict]] | None:
        jobs, experiments = all_jobs(fleet.url), all_jobs(fleet.url, "experiments")
        pending = any(job["status"] in PENDING for job in [*jobs.values(), *experiments.values()])
        return None if pending else (jobs, experiments)

    try:
        jobs, experiments = wait_until(settled, "every job to finish", drain_seconds)
    except TimeoutError:
        jobs, experiments = all_jobs(fleet.url), all_jobs(fleet.url, "experiments")
    runs = task_runs(fleet)
    submitted = set(figures.jobs) | {long_job}
    statuses = Counter(job["status"] for job in jobs.values())
    written = {job_id: runs[job_id]["succeeded"] + runs[job_id]["failed"] for job_id in jobs}
    long = jobs.get(long_job, {})
    return {
        "submitted": len(submitted),
        "records": len(jobs),
        "records_nobody_was_given": sorted(set(jobs) - submitted),
        "submitted_without_record": sorted(submitted - set(jobs)),
        "statuses": dict(statuses),
        "stuck": sorted(job_id for job_id, job in jobs.items() if job["status"] in PENDING),
        "failed_without_reason": sorted(j for j, job in jobs.items() if job["status"] == "failed" and not job["error"]),
        "written_runs_not_one": {j: n for j, n in written.items() if jobs[j]["status"] != "cancelled" and n != 1},
        "ran_to_completion_twice": sorted(j for j in jobs if runs[j]["lost"]),
        "reruns": sum(max(0, job["attempts"] - 1) for job in jobs.values()),
        "jobs_rerun": sum(job["attempts"] > 1 for job in jobs.values()),
        "long_job": {key: long.get(key) for key in ("status", "attempts", "worker", "error")},
        "experiments": check_experiments(experiments, set(figures.experiments), runs),
    }


def check_experiments(experiments: dict[str, dict], submitted: set[str], runs: dict[str, Counter]) -> dict[str, Any]:
    """The same counts for experiments, and for their runs (each architecture x seed its own Celery task,
    so each run must have exactly one written attempt and none that ran to completion unwritten)."""
    all_runs = {run["id"]: run for job in experiments.values() for run in job["runs"]}
    written = {run_id: runs[run_id]["succeeded"] + runs[run_id]["failed"] for run_id in all_runs}
    return {
        "submitted": len(submitted),
        "records": len(experiments),
        "records_nobody_was_given": sorted(set(experiments) - submitted),
        "submitted_without_record": sorted(submitted - set(experiments)),
        "statuses": dict(Counter(job["status"] for job in experiments.values())),
        "stuck": sorted(job_id for job_id, job in experiments.items() if job["status"] in PENDING),
        "failed_without_reason": sorted(
            job_id
            for job_id, job in experiments.items()
            if (job["status"] == "failed" and not job["error"])
            or any(run["status"] == "failed" and not run.get("error") for run in job["runs"])
        ),  # fmt: skip
        "runs": len(all_runs),
        "run_statuses": dict(Counter(run["status"] for run in all_runs.values())),
        "runs_stuck": sorted(run_id for run_id, run in all_runs.items() if run["status"] in PENDING),
        "written_runs_not_one": {
            run_id: n for run_id, n in written.items() if all_runs[run_id]["status"] != "cancelled" and n != 1
        },
        "ran_to_completion_twice": sorted(run_id for run_id in all_runs if runs[run_id]["lost"]),
        "reruns": sum(max(0, (run.get("attempts") or 0) - 1) for run in all_runs.values()),
        "runs_rerun": sum((run.get("attempts") or 0) > 1 for run in all_runs.values()),
    }


async def fault_run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="cnnplan-fleet-"))
    fleet = Fleet(workdir, api_processes=args.api_processes, workers=args.workers, lease_seconds=args.lease)
    figures = Figures()
    report: dict[str, Any] = {"api_processes": args.api_processes, "workers": args.workers,
                              "clients": args.clients, "workdir": str(workdir)}  # fmt: skip
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        fleet.start()
        report["startup_seconds"] = round(time.monotonic() - started, 1)
        stop = asyncio.Event()
        pacing = {
            "benchmark": JobPacing(args.jobs, args.duration),
            "experiment": JobPacing(args.experiments, args.duration),
        }
        clients = [
            asyncio.create_task(client_loop(i, fleet.url, figures, stop, pacing, args.seed))
            for i in range(args.clients)
        ]
        load_started = time.monotonic()
        await asyncio.sleep(args.warmup)
        report["rss_before"] = fleet.rss()
        report["api_fault"] = await loop.run_in_executor(None, api_fault, fleet, figures)
        report["worker_fault"] = await loop.run_in_executor(None, worker_fault, fleet, figures)
        report["redis_fault"] = await loop.run_in_executor(None, redis_fault, fleet, figures, args.redis_down)
        remaining = args.duration - (time.monotonic() - load_started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        figures.phase = "end"
        stop.set()
        await asyncio.gather(*clients)
        report["load_seconds"] = round(time.monotonic() - load_started, 1)
        report["jobs"] = await loop.run_in_executor(
            None, check_jobs, fleet, figures, report["worker_fault"]["job"], args.drain
        )
        report["rss_after"] = fleet.rss()
    finally:
        fleet.stop()
    report["requests"] = {
        kind: {"count": len(values), "p50_ms": round(1000 * percentile(values, 0.5), 1),
               "p99_ms": round(1000 * percentile(values, 0.99), 1)}
        for kind, values in sorted(figures.latencies.items())
    }  # fmt: skip
    report["requests_total"] = sum(len(values) for values in figures.latencies.values())
    report["failed_requests"] = {" ".join(filter(None, key)): n for key, n in figures.failures.items()}
    report["lost_connections_retried"] = {" ".join(key): n for key, n in figures.lost_connections.items()}
    report["retried_answers"] = {f"{phase} {status}": n for (phase, status), n in figures.retried_statuses.items()}
    report["checks"] = checks(report)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def checks(report: dict[str, Any]) -> dict[str, bool]:
    """Each fault's claim, as one boolean (the CI test asserts each; the script's exit status is their AND)."""
    jobs, redis = report["jobs"], report["redis_fault"]
    api, long, experiments = report["api_fault"], jobs["long_job"], jobs["experiments"]
    return {
        "api: the others kept answering": api["served_by_the_others_within_3s"] > 0,
        "api: every lost request recovered by the client": not report["failed_requests"],
        "worker: the killed job re-ran to success": long["status"] == "succeeded" and (long["attempts"] or 0) >= 2,
        "redis: job routes 503 + Retry-After while down": redis["job_route_probes"] > 0
        and redis["job_route_503_with_retry_after"] == redis["job_route_probes"],
        "redis: no record or finished result lost": not redis["missing_after"]
        and not redis["finished_results_changed"],
        "redis: queued and running jobs then finished": redis["queued_before"] + redis["running_before"] > 0
        and not jobs["stuck"]
        and not experiments["stuck"],
        "jobs: none stuck": not jobs["stuck"],
        "jobs: every submission has its record": not jobs["submitted_without_record"],
        "jobs: no duplicate from a retried submission": not jobs["records_nobody_was_given"],
        "jobs: failed ones say why": not jobs["failed_without_reason"],
        "jobs: each finished exactly once": not jobs["written_runs_not_one"] and not jobs["ran_to_completion_twice"],
        "experiments: none stuck, nor any of their runs": not experiments["stuck"] and not experiments["runs_stuck"],
        "experiments: every submission has its record": experiments["submitted"] > 0
        and not experiments["submitted_without_record"],
        "experiments: no duplicate from a retried submission": not experiments["records_nobody_was_given"],
        "experiments: failed ones (and failed runs) say why": not experiments["failed_without_reason"],
        "experiments: each run finished exactly once": not experiments["written_runs_not_one"]
        and not experiments["ran_to_completion_twice"],
    }


def print_report(report: dict[str, Any]) -> None:
    mib = 2**20
    print(f"fleet: {report['api_processes']} API processes, {report['workers']} workers, {report['clients']} clients, "
          f"load {report['load_seconds']} s (startup {report['startup_seconds']} s)")  # fmt: skip
    print(f"requests: {report['requests_total']} completed; failed after retries: {report['failed_requests'] or 0}")
    for kind, row in report["requests"].items():
        print(f"  {kind:15s} {row['count']:6d}  p50 {row['p50_ms']:8.1f} ms  p99 {row['p99_ms']:8.1f} ms")
    print(f"lost connections (retried): {report['lost_connections_retried'] or 0}")
    print(f"429/503 answers (retried): {report['retried_answers'] or 0}")
    print(f"api fault: {report['api_fault']}")
    print(f"worker fault: {report['worker_fault']}")
    print(f"redis fault: {report['redis_fault']}")
    print(f"jobs: { {key: value for key, value in report['jobs'].items() if key != 'experiments'} }")
    print(f"experiments: {report['jobs']['experiments']}")
    print("RSS MiB before -> after:")
    for name, before in report["rss_before"].items():
        after = report["rss_after"].get(name)
        print(f"  {name:22s} {(before or 0) / mib:7.1f} -> " + (f"{after / mib:7.1f}" if after else "gone"))
    for name in sorted(set(report["rss_after"]) - set(report["rss_before"])):
        print(f"  {name:22s}     new -> {(report['rss_after'][name] or 0) / mib:7.1f}")
    for claim, held in report["checks"].items():
        print(f"  [{'ok' if held else 'FAILED'}] {claim}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "faults"])
    parser.add_argument("--api-processes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60, help="Seconds of load (the faults fall inside).")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--jobs", type=int, default=40, help="Benchmark jobs the clients submit in all.")
    parser.add_argument("--experiments", type=int, default=8, help="Experiments (2 runs each) the clients submit.")
    parser.add_argument("--redis-down", type=float, default=3, help="Seconds redis-server stays down.")
    parser.add_argument("--lease", type=float, default=4, help="CNNPLAN_JOB_LEASE_SECONDS of the fleet.")
    parser.add_argument("--drain", type=float, default=300, help="At most this long to wait for the jobs.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="Keep the temp dir (logs, append-only file).")
    parser.add_argument("--json", action="store_true", help="Also print the report as one JSON line.")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 256 and 1 <= args.api_processes <= 16 and 2 <= args.workers <= 16):
        parser.error("1-256 clients, 1-16 API processes, 2-16 workers (one is killed)")
    if args.command == "up":
        fleet = Fleet(Path(tempfile.mkdtemp(prefix="cnnplan-fleet-")), args.api_processes, args.workers, args.lease)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        fleet.start()
        print(f"fleet up: API {fleet.url} ({args.api_processes} processes), {args.workers} workers, "
              f"redis {fleet.redis.url}; keys {KEYS}, admin {ADMIN_KEY}; Ctrl-C stops it", flush=True)  # fmt: skip
        try:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        finally:
            fleet.stop()
        return 0
    report = asyncio.run(fault_run(args))
    print_report(report)
    if args.json:
        print(json.dumps(report, default=str))
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
