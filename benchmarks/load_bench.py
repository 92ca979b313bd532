"""Bounded loopback load benchmark: POST /plan (mixed inputs) against GET /healthz on ONE uvicorn worker.

Starts ``uvicorn service.app:app`` (one worker) on a free 127.0.0.1 port, then alternates fixed-length
phases of GET /healthz and POST /plan (``--rounds`` of each, so background load hits both alike) and
prints requests/s, p50/p99 latency and errors per endpoint, and the plan/healthz ratio. Plan bodies
are random (seeded): image sides 32..1024 (square or not), kernel sizes {3, 5, 7}, t in {1/4, 1/6,
1/8}, every downsampling variant and both models, so no answer cache could carry the load.

The load generator is ``wrk`` with a Lua script when it is on PATH (it is not installed by this
script; Debian: ``apt-get install wrk``), else ``--clients`` Python processes with keep-alive
connections. Usage::

    python benchmarks/load_bench.py                   # 2 rounds x 5 s per endpoint, 8 connections
    python benchmarks/load_bench.py --duration 10 --connections 16 --json
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
WARM_POOL = 64
"""Distinct bodies of the warm phase (repeated requests, all answered from the answer cache once seen)."""
KERNEL_SIZES = (3, 5, 7)
MIN_C_VALUES = ("1/4", "1/6", "1/8")
DOWNSAMPLES = ("maxpool", "avgpool", "conv")
MODELS = ("exact", "simplified")
SIDES = (32, 1024)
MAX_DURATION_S = 120
MAX_CONNECTIONS = 256


def plan_body(rng: random.Random) -> dict:
    """One random POST /plan body of the benchmark mix."""
    height = rng.randint(*SIDES)
    width = height if rng.random() < 0.5 else rng.randint(*SIDES)
    return {
        "image_size": height if height == width else [height, width],
        "kernel_size": rng.choice(KERNEL_SIZES),
        "min_c_value": rng.choice(MIN_C_VALUES),
        "downsample": rng.choice(DOWNSAMPLES),
        "model": rng.choice(MODELS),
    }


@dataclass
class PhaseResult:
    """What one endpoint achieved over all its phases."""

    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    phase_p50_ms: list[float] = field(default_factory=list)
    phase_p99_ms: list[float] = field(default_factory=list)
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        """The server's CPU time per answered request (user + system), whatever else runs on the machine."""
        return 1000 * self.server_cpu_s / self.requests if self.requests else 0.0


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def keep_alive_timeout() -> int:
    """The idle keep-alive timeout `cnnplan serve` uses by default (longer than httpx's 5 s pool expiry)."""
    from cnnplan.service.settings import Settings

    return Settings.model_fields["keep_alive_timeout"].default


APPS = {
    "service": "cnnplan.service.api.app:app",
    "floor": "floor_app:median_answer_app",
    "floor-tiny": "floor_app:tiny_answer_app",
    "bare": "floor_app:bare_asgi_app",
}
"""--app: the service itself, or one of its transport floors (benchmarks/floor_app.py, uvicorn app factories)."""


def start_server(port: int, app: str = APPS["service"], cache: bool = True) -> subprocess.Popen:
    """One uvicorn worker serving `app` on the loopback port (without the answer cache unless `cache`);
    waits for /healthz."""
    env = {**os.environ, "CNNPLAN_EMBEDDED_WORKER": "false", "CNNPLAN_LOG_LEVEL": "warning"}
    if not cache:
        env["CNNPLAN_ANSWER_CACHE_ENTRIES"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(Path(__file__).resolve().parent), env.get("PYTHONPATH"))))
    env.pop("CNNPLAN_API_KEY", None)
    command = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port),
               "--workers", "1", "--log-level", "warning", "--no-access-log",
               "--timeout-keep-alive", str(keep_alive_timeout())]  # fmt: skip
    if app.startswith("floor_app:"):
        command.append("--factory")
    server = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"uvicorn exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("uvicorn did not answer /healthz within 60 s")


def stop_server(server: subprocess.Popen) -> None:
    """SIGINT (uvicorn's graceful shutdown), then SIGKILL after 20 s."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# -- wrk -------------------------------------------------------------------------------------------

WRK_SCRIPT = r"""
local endpoint = os.getenv("BENCH_ENDPOINT")
local ks = {3, 5, 7}
local ts = {"1/4", "1/6", "1/8"}
local ds = {"maxpool", "avgpool", "conv"}
local ms = {"exact", "simplified"}
local counter = 0
function setup(thread) counter = counter + 1; thread:set("id", counter) end
function init(args) math.randomseed(1000 + (id or 0)) end
local function pick(list) return list[math.random(1, #list)] end
local function mixed_body()
  local h = math.random(32, 1024)
  local w = h
  if math.random() >= 0.5 then w = math.random(32, 1024) end
  local size = tostring(h)
  if w ~= h then size = string.format("[%d, %d]", h, w) end
  return string.format(
    '{"image_size": %s, "kernel_size": %d, "min_c_value": "%s", "downsample": "%s", "model": "%s"}',
    size, pick(ks), pick(ts), pick(ds), pick(ms))
end
local pool = nil
request = function()
  if endpoint == "healthz" then return wrk.format("GET", "/healthz") end
  local path = "/plan"
  local body
  if endpoint == "warm" then  -- a fixed pool of WARM_POOL bodies, the same in every thread: all cached after one pass
    if pool == nil then
      pool = {}
      math.randomseed(42)
      for i = 1, WARM_POOL do pool[i] = mixed_body() end
    end
    body = pool[math.random(1, #pool)]
  else
    body = mixed_body()
  end
  if endpoint == "summary" then path = "/plan?view=summary" end
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "micros": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(wrk: str, script: Path, port: int, endpoint: str, duration: float, connections: int) -> dict:
    """One wrk phase; returns its BENCH summary (status >= 400 counts as an error)."""
    threads = max(1, min(2, connections))
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script),
               f"http://{HOST}:{port}/{'healthz' if endpoint == 'healthz' else 'plan'}"]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "BENCH_ENDPOINT": endpoint},
                            timeout=duration + 60, check=True).stdout  # fmt: skip
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    return json.loads(line[len("BENCH ") :])


# -- Python clients --------------------------------------------------------------------------------


def client_process(port: int, endpoint: str, duration: float, seed: int, queue) -> None:
    """Closed-loop keep-alive client: send, wait for the answer, repeat until the phase ends."""
    rng = random.Random(seed)
    pool_rng = random.Random(42)
    pool = [json.dumps(plan_body(pool_rng)) for _ in range(WARM_POOL)]
    path = "/plan?view=summary" if endpoint == "summary" else "/plan"
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + duration
    while True:
        start = time.perf_counter()
        if start >= end:
            break
        try:
            if endpoint == "healthz":
                connection.request("GET", "/healthz")
            else:
                body = rng.choice(pool) if endpoint == "warm" else json.dumps(plan_body(rng))
                connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status >= 400:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            connection = http.client.HTTPConnection(HOST, port, timeout=10)
        latencies.append((time.perf_counter() - start) * 1000)
    queue.put((latencies, errors))


def run_python_clients(port: int, endpoint: str, duration: float, clients: int, round_index: int) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=client_process, args=(port, endpoint, duration, 1000 * round_index + i, queue))
        for i in range(clients)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    results = [queue.get(timeout=duration + 60) for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(timeout=10)
    latencies = sorted(latency for part, _ in results for latency in part)
    return {
        "requests": len(latencies),
        "micros": int(min(elapsed, duration) * 1e6),
        "errors": sum(errors for _, errors in results),
        "latencies_ms": latencies,
    }


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


async def asgi_call(app, method: str, path: str, body: bytes = b"") -> int:
    """One request straight into the ASGI app (no client library, no sockets); returns the status."""
    path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
        "client": (HOST, 1), "server": (HOST, 80),
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def breakdown(count: int = 300, repeats: int = 5) -> None:
    """In-process CPU time per request (no sockets), every part back to back per body so the machine's other
    load hits them alike; the quietest repeat (smallest total) is reported. Through the ASGI app: GET /healthz,
    POST /plan of the floor (`floor_app`: the same app and validation, answering the mix's median plan
    rendered per request), cold POST /plan (full answer, answer cache off) and POST /plan?view=summary; and
    called directly: the route's `to_plan_request`, the answer `plan_answer_json` split into the input checks,
    the exact stage optimiser, the relaxed optimum and the stage-wise walk that writes the layers' JSON, the
    summary `plan_summary`, and the floor's rendering of its fixed answer."""
    import asyncio

    import cnnplan.service.api.routes.plan as plan_routes
    from cnnplan.service import plan_answer as answers
    from cnnplan.service.api._responses import render_json
    from cnnplan.service.api.app import create_app
    from cnnplan.service.convert import to_plan_request
    from cnnplan.service.schemas import PlanRequestModel
    from cnnplan.service.settings import Settings

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from floor_app import median_answer

    rng = random.Random(7)
    bodies = [plan_body(rng) for _ in range(count)]
    encoded = [json.dumps(body).encode() for body in bodies]
    requests = [to_plan_request(PlanRequestModel.model_validate(body)) for body in bodies]
    app = create_app(Settings(embedded_worker=False, answer_cache_entries=0))
    fixed = median_answer()
    service_json = plan_routes.plan_body_json

    def floor_json(body: object) -> bytes:
        return render_json(fixed)

    def checks(request) -> None:
        answers._check_request(request)

    def optimiser(request) -> None:
        t, size = answers._check_request(request)
        answers.optimal_stages(size, request.kernel_size, t, request.model, request.downsample, request.rf_side)

    def relaxed(request) -> None:
        t, size = answers._check_request(request)
        answers._relaxed(size, request.kernel_size, t, request.rf_side)

    plans = {}
    for request in requests:
        t, size = answers._check_request(request)
        stages = answers.optimal_stages(size, request.kernel_size, t, request.model, request.downsample,
                                        request.rf_side).stages  # fmt: skip
        plans[id(request)] = (t, size, stages)

    def walk(request) -> None:
        t, size, stages = plans[id(request)]
        answers._walk(request, size, stages, t, [], text=True)

    direct = (
        ("to_plan_request", lambda index: to_plan_request(PlanRequestModel.model_validate(bodies[index]))),
        ("answer", lambda index: answers.plan_answer_json(requests[index])),
        ("checks", lambda index: checks(requests[index])),
        ("optimiser", lambda index: optimiser(requests[index])),
        ("relaxed", lambda index: relaxed(requests[index])),
        ("walk", lambda index: walk(requests[index])),
        ("summary answer", lambda index: answers.plan_summary(requests[index])),
        ("floor render", lambda index: render_json(fixed)),
        ("model_validate", lambda index: PlanRequestModel.model_validate(bodies[index])),
    )

    async def one_repeat() -> dict[str, float]:
        totals: dict[str, float] = {}
        clock = time.process_time
        for index, payload in enumerate(encoded):
            for name, method, path, body, answer in (
                ("GET /healthz", "GET", "/healthz", b"", service_json),
                ("POST /plan floor", "POST", "/plan", payload, floor_json),
                ("POST /plan cold", "POST", "/plan", payload, service_json),
                ("POST /plan summary", "POST", "/plan?view=summary", payload, service_json),
            ):
                plan_routes.plan_body_json = answer
                start = clock()
                assert await asgi_call(app, method, path, body) == 200
                totals[name] = totals.get(name, 0.0) + clock() - start
            plan_routes.plan_body_json = service_json
            for name, action in direct:
                start = clock()
                action(index)
                totals[name] = totals.get(name, 0.0) + clock() - start
        return {name: total / count for name, total in totals.items()}

    best: dict[str, float] | None = None
    for _ in range(repeats):
        parts = asyncio.run(one_repeat())
        if best is None or sum(parts.values()) < sum(best.values()):
            best = parts
    assert best is not None
    us = {name: value * 1e6 for name, value in best.items()}
    answer_rest = us["answer"] - us["optimiser"] - us["relaxed"] - us["walk"]
    print(f"in-process CPU time per request, quietest of {repeats} repeats x {count} mixed bodies (no sockets; "
          f"load average {os.getloadavg()[0]:.2f}):")  # fmt: skip
    print(f"  GET /healthz            {us['GET /healthz']:7.0f} us  (middleware, routing, response)")
    print(f"  POST /plan, floor       {us['POST /plan floor']:7.0f} us  (body parsing and validation "
          f"{us['model_validate']:.0f}, rendering its fixed answer {us['floor render']:.0f})")  # fmt: skip
    print(
        f"  POST /plan, cold        {us['POST /plan cold']:7.0f} us  = the floor - {us['floor render']:.0f} "
        f"+ to_plan_request {us['to_plan_request'] - us['model_validate']:.0f} + the answer {us['answer']:.0f}"
    )
    print(f"    the answer (plan_answer_json) {us['answer']:.0f} us: input checks {us['checks']:.0f}, stage optimiser "
          f"{us['optimiser'] - us['checks']:.0f}, relaxed optimum {us['relaxed'] - us['checks']:.0f}, walk writing "
          f"the layers' JSON {us['walk']:.0f}, the rest (head, joins) {answer_rest + us['checks']:.0f}")  # fmt: skip
    print(f"  POST /plan, summary     {us['POST /plan summary']:7.0f} us  (its answer, plan_summary: "
          f"{us['summary answer']:.0f})")  # fmt: skip
    floor = us["POST /plan floor"]
    print(
        f"  floor / cold {floor / us['POST /plan cold']:.2f}, floor / summary {floor / us['POST /plan summary']:.2f}"
        " (in-process CPU cost ratios; the --against-floor targets are 0.7 and 0.9)"
    )


PHASES = (
    ("floor", "floor", "POST /plan, the floor app (fixed median answer, no planning, cache off)"),
    ("cold", "plan", "POST /plan, full answer, mixed bodies, cache off"),
    ("summary", "summary", "POST /plan?view=summary, mixed bodies, cache off"),
    ("warm", "warm", f"POST /plan, full answer, {WARM_POOL} repeated bodies, cache on"),
)
"""--against-floor: (phase, client endpoint, what it measures); the floor is run beside each round."""

TARGETS = {"cold": 0.7, "summary": 0.9, "warm": 0.95}
"""The issue's targets, as fractions of the floor's requests/s."""


def run_phase(wrk: str | None, script: Path, port: int, endpoint: str, args, round_index: int) -> dict:
    """One phase with whichever generator is in use (wrk, or the Python clients)."""
    if wrk:
        return run_wrk(wrk, script, port, endpoint, args.duration, args.connections)
    return run_python_clients(port, endpoint, args.duration, args.connections, round_index)


def add_phase(result: PhaseResult, phase: dict, cpu_seconds: float) -> None:
    """Accumulate one phase into an endpoint's result (wrk: per-phase percentiles; Python: all latencies)."""
    if "p50_us" in phase:
        result.phase_p50_ms.append(phase["p50_us"] / 1000)
        result.phase_p99_ms.append(phase["p99_us"] / 1000)
    else:
        result.latencies_ms.extend(phase["latencies_ms"])
    result.requests += phase["requests"]
    result.seconds += phase["micros"] / 1e6
    result.errors += phase["errors"]
    result.server_cpu_s += cpu_seconds


def finish(result: PhaseResult) -> None:
    """Set p50/p99: the worst phase's (wrk), or over all latencies (Python clients)."""
    if result.phase_p50_ms:
        result.p50_ms, result.p99_ms = max(result.phase_p50_ms), max(result.phase_p99_ms)
    elif result.latencies_ms:
        ordered = sorted(result.latencies_ms)
        result.p50_ms, result.p99_ms = percentile(ordered, 0.50), percentile(ordered, 0.99)


def against_floor(args, wrk: str | None, generator: str) -> int:
    """Floor, cold, summary and warm phases in turn, ``--rounds`` times, on three one-worker servers started
    side by side (floor app and service without the answer cache; service with it for the warm phase), so
    the machine's background load hits every phase alike; prints each phase's rate beside the floor's."""
    servers = {
        "floor": start_server(free_port_for("floor"), APPS["floor"], cache=False),
        "cold": start_server(free_port_for("cold"), APPS["service"], cache=False),
        "warm": start_server(free_port_for("warm"), APPS["service"], cache=True),
    }
    server_of = {"floor": "floor", "cold": "cold", "summary": "cold", "warm": "warm"}
    results = {phase: PhaseResult() for phase, _, _ in PHASES}
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            script = Path(scratch) / "bench.lua"
            script.write_text(WRK_SCRIPT.replace("WARM_POOL", str(WARM_POOL)))
            for round_index in range(args.rounds):
                for phase, endpoint, _ in PHASES:
                    server = servers[server_of[phase]]
                    port = SERVER_PORTS[server_of[phase]]
                    cpu_before = process_cpu_seconds(server.pid)
                    outcome = run_phase(
                        wrk, script, port, "plan" if endpoint == "floor" else endpoint, args, round_index
                    )
                    add_phase(results[phase], outcome, process_cpu_seconds(server.pid) - cpu_before)
    finally:
        for server in servers.values():
            stop_server(server)
    load_after = os.getloadavg()
    for result in results.values():
        finish(result)
    floor = results["floor"]
    print(f"load generator: {generator}, {args.connections} connections, {args.rounds} x {args.duration:g} s per phase, "
          f"one uvicorn worker per server on {HOST}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    print(f"{'phase':<9}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU ms/req':>12}"
          f"{'/ floor':>9}{'CPU / floor':>13}{'target':>8}  what")  # fmt: skip
    summary: dict = {"generator": generator, "connections": args.connections, "rounds": args.rounds,
                     "seconds_per_phase": args.duration, "load_before": load_before[0], "load_after": load_after[0]}  # fmt: skip
    for phase, _, what in PHASES:
        result = results[phase]
        ratio = result.rps / floor.rps if floor.rps else 0.0
        cpu_ratio = floor.cpu_ms_per_request / result.cpu_ms_per_request if result.cpu_ms_per_request else 0.0
        target = TARGETS.get(phase)
        shown = f"{target:.2f}" if target else "-"
        print(f"{phase:<9}{result.requests:>10}{result.rps:>10.1f}{result.p50_ms or 0:>9.2f}{result.p99_ms or 0:>9.2f}"
              f"{result.errors:>8}{result.cpu_ms_per_request:>12.3f}{ratio:>9.2f}{cpu_ratio:>13.2f}{shown:>8}  {what}")  # fmt: skip
        summary[phase] = {"requests": result.requests, "rps": round(result.rps, 1), "p50_ms": result.p50_ms,
                          "p99_ms": result.p99_ms, "errors": result.errors, "ratio": round(ratio, 4),
                          "cpu_ratio": round(cpu_ratio, 4),
                          "server_cpu_ms_per_request": round(result.cpu_ms_per_request, 4)}  # fmt: skip
    print(
        "/ floor: requests/s over the floor's; CPU / floor: the floor's server CPU per request over the phase's "
        "(the same ratio, free of the machine's other load)"
    )
    if args.json:
        print(json.dumps(summary))
    return 0 if all(r.errors == 0 for r in results.values()) else 1


SERVER_PORTS: dict[str, int] = {}


def free_port_for(name: str) -> int:
    """A free loopback port, remembered under `name`."""
    SERVER_PORTS[name] = free_port()
    return SERVER_PORTS[name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="Seconds per phase (at most 120).")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating healthz/plan phase pairs (1..10).")
    parser.add_argument("--connections", type=int, default=8, help="Concurrent connections (wrk) or clients.")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--json", action="store_true", help="Also print the summary as one JSON line.")
    parser.add_argument("--breakdown", action="store_true", help="Only the in-process cost split; no server.")
    parser.add_argument(
        "--against-floor",
        action="store_true",
        help="Cold, summary and warm POST /plan phases, each beside the floor app's, with their ratios (--app ignored).",
    )
    parser.add_argument(
        "--app",
        choices=tuple(APPS),
        default="service",
        help="service: service.app:app; floor: the same app answering one fixed plan without planning; floor-tiny: "
        "the same answering 13 bytes; bare: a bare ASGI callable answering like healthz (benchmarks/floor_app.py).",
    )
    args = parser.parse_args(argv)
    if args.breakdown:
        breakdown()
        return 0
    if not 0 < args.duration <= MAX_DURATION_S or not 1 <= args.rounds <= 10:
        parser.error(f"--duration must be in (0, {MAX_DURATION_S}] and --rounds in 1..10")
    if not 1 <= args.connections <= MAX_CONNECTIONS:
        parser.error(f"--connections must be in 1..{MAX_CONNECTIONS}")
    wrk = shutil.which("wrk") if args.generator in ("auto", "wrk") else None
    if args.generator == "wrk" and wrk is None:
        parser.error("wrk is not on PATH")
    generator = "wrk" if wrk else "python"
    if args.against_floor:
        return against_floor(args, wrk, generator)

    port = free_port()
    server = start_server(port, APPS[args.app])
    results = {"healthz": PhaseResult(), "plan": PhaseResult()}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            script = Path(scratch) / "bench.lua"
            script.write_text(WRK_SCRIPT.replace("WARM_POOL", str(WARM_POOL)))
            for round_index in range(args.rounds):
                for endpoint in ("healthz", "plan"):
                    result = results[endpoint]
                    cpu_before = process_cpu_seconds(server.pid)
                    if wrk:
                        phase = run_wrk(wrk, script, port, endpoint, args.duration, args.connections)
                        result.phase_p50_ms.append(phase["p50_us"] / 1000)
                        result.phase_p99_ms.append(phase["p99_us"] / 1000)
                    else:
                        phase = run_python_clients(port, endpoint, args.duration, args.connections, round_index)
                        result.latencies_ms.extend(phase["latencies_ms"])
                    result.requests += phase["requests"]
                    result.seconds += phase["micros"] / 1e6
                    result.errors += phase["errors"]
                    result.server_cpu_s += process_cpu_seconds(server.pid) - cpu_before
    finally:
        stop_server(server)

    for result in results.values():
        if wrk:  # wrk reports percentiles per phase; report the worst phase
            result.p50_ms, result.p99_ms = max(result.phase_p50_ms), max(result.phase_p99_ms)
        elif result.latencies_ms:
            ordered = sorted(result.latencies_ms)
            result.p50_ms, result.p99_ms = percentile(ordered, 0.50), percentile(ordered, 0.99)
    ratio = results["plan"].rps / results["healthz"].rps if results["healthz"].rps else 0.0
    print(f"load generator: {generator}, {args.connections} connections, {args.rounds} x {args.duration:g} s per endpoint, "
          f"one uvicorn worker on {HOST} serving {APPS[args.app]}")  # fmt: skip
    print(f"{'endpoint':<14}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
          f"{'server CPU':>12}{'CPU ms/req':>12}")  # fmt: skip
    for endpoint, label in (("healthz", "GET /healthz"), ("plan", "POST /plan")):
        result = results[endpoint]
        busy = result.server_cpu_s / result.seconds if result.seconds else 0.0
        print(f"{label:<14}{result.requests:>10}{result.rps:>10.1f}{result.p50_ms or 0:>10.2f}{result.p99_ms or 0:>10.2f}"
              f"{result.errors:>8}{busy:>12.0%}{result.cpu_ms_per_request:>12.3f}")  # fmt: skip
    print(f"plan / healthz requests/s: {ratio:.1%} (issue target: >= 70%)")
    cpu_ratio = (
        results["healthz"].cpu_ms_per_request / results["plan"].cpu_ms_per_request
        if results["plan"].cpu_ms_per_request
        else 0.0
    )
    print(f"healthz / plan server CPU per request: {cpu_ratio:.1%} (the same ratio, free of the machine's other load)")
    if args.json:
        summary = {
            "app": APPS[args.app],
            "generator": generator,
            "connections": args.connections,
            "seconds_per_endpoint": args.rounds * args.duration,
            "ratio": round(ratio, 4),
            "cpu_ratio": round(cpu_ratio, 4),
            **{
                endpoint: {
                    "requests": r.requests,
                    "rps": round(r.rps, 1),
                    "p50_ms": r.p50_ms,
                    "p99_ms": r.p99_ms,
                    "errors": r.errors,
                    "server_cpu_ms_per_request": round(r.cpu_ms_per_request, 4),
                }  # fmt: skip
                for endpoint, r in results.items()
            },
        }
        print(json.dumps(summary))
    return 0 if all(r.errors == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
