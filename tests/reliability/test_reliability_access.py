"""Access control: the API key on job endpoints, the per-key submission rate limit, planning left open,
the key kept out of logs, nothing from a request executed or unpickled, and a non-root container."""

from __future__ import annotations

import ast
import hashlib
import hmac
import logging
import pickle
import re
import shutil
import subprocess
import time

import httpx
import pytest
import redis
import yaml
from kombu.exceptions import ContentDisallowed
from kombu.serialization import loads as kombu_loads
from kombu.serialization import prepare_accept_content
from pydantic import ValidationError
from reliability_helpers import ROOT, AppClient, Uvicorn, assert_problem, free_port

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings
from cnnplan.service.worker.celery_app import make_celery
from cnnplan.service.worker.embedded import settings_environment

KEY = "cnnplan-test-key-7f3a9c1e5b"
"""A distinctive key: any occurrence of it in a log or a response is a leak."""

JOB = {"plan": {"image_size": 32}, "batch_sizes": [1], "iterations": 1, "warmup": 0}
JOB_OPERATIONS = [
    ("POST", "/benchmarks", JOB),
    ("GET", "/benchmarks", None),
    ("GET", "/benchmarks/0f6e1c1e-0000-4000-8000-000000000000", None),
    ("POST", "/benchmarks/0f6e1c1e-0000-4000-8000-000000000000/cancel", None),
    ("DELETE", "/benchmarks/0f6e1c1e-0000-4000-8000-000000000000", None),
]
PLANNING_OPERATIONS = [
    ("POST", "/plan", {"image_size": 18}),
    ("GET", "/plan?image_size=18", None),
    ("POST", "/validate", {"image_size": 18, "layers": [{"type": "conv", "kernel_size": 3}]}),
    ("POST", "/plan/batch", {"requests": [{"image_size": 18}]}),
    ("POST", "/validate/batch", {"requests": [{"preset": "vgg16"}]}),
    ("GET", "/presets", None),
    ("GET", "/presets/vgg16", None),
]


def make_client(tmp_path, address: str = "127.0.0.1", **settings) -> AppClient:
    base = {"data_dir": tmp_path / "data", "redis_url": None, "embedded_worker": False}
    return AppClient(create_app(Settings(**{**base, **settings})), client=(address, 40000))


def call(client: AppClient, method: str, path: str, body, headers=None) -> httpx.Response:
    return client.request(method, path, json=body, headers=headers or {})


def onnx_upload(client: AppClient, headers=None) -> httpx.Response:
    """A multipart POST /validate (the ONNX route); the file is not a model, so an open route answers 422."""
    files = {"model": ("model.onnx", b"not a model", "application/octet-stream")}
    return client.post("/validate", files=files, data={"image_size": "224"}, headers=headers or {})


# -- the key --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, body", JOB_OPERATIONS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": KEY[:-1]},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"X-API-Key": ""},
    ],
    ids=["none", "wrong-x-api-key", "wrong-bearer", "basic-scheme", "no-scheme", "empty"],
)
def test_job_endpoints_refuse_requests_without_the_key(tmp_path, method, path, body, headers):
    client = make_client(tmp_path, api_key=KEY)
    problem = assert_problem(call(client, method, path, body, headers), 401, "Authorization")
    assert problem["code"] == "unauthorized"


def test_a_401_says_how_to_authenticate(tmp_path):
    response = make_client(tmp_path, api_key=KEY).get("/benchmarks")
    assert_problem(response, 401, "Authorization", ["Bearer", "X-API-Key"])
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {KEY}"}]
)
def test_job_endpoints_serve_the_key_holder(tmp_path, headers):
    client = make_client(tmp_path, api_key=KEY)
    submitted = client.post("/benchmarks", json=JOB, headers=headers)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert submitted.headers["Location"] == f"/benchmarks/{job_id}"
    assert client.get(f"/benchmarks/{job_id}", headers=headers).json()["status"] == "queued"
    assert [job["id"] for job in client.get("/benchmarks", headers=headers).json()["items"]] == [job_id]
    assert client.post(f"/benchmarks/{job_id}/cancel", headers=headers).json()["status"] == "cancelled"


@pytest.mark.parametrize("method, path, body", PLANNING_OPERATIONS)
def test_planning_stays_open_when_a_key_is_set(tmp_path, method, path, body):
    assert call(make_client(tmp_path, api_key=KEY), method, path, body).status_code == 200


def test_the_onnx_upload_stays_open_when_a_key_is_set(tmp_path):
    assert onnx_upload(make_client(tmp_path, api_key=KEY)).status_code == 422


@pytest.mark.parametrize("method, path, body", PLANNING_OPERATIONS)
def test_protect_planning_puts_planning_behind_the_key(tmp_path, method, path, body):
    client = make_client(tmp_path, api_key=KEY, protect_planning=True)
    assert_problem(call(client, method, path, body), 401, "Authorization")
    assert call(client, method, path, body, {"X-API-Key": KEY}).status_code == 200


def test_protect_planning_guards_the_onnx_upload_and_leaves_probes_open(tmp_path):
    client = make_client(tmp_path, api_key=KEY, protect_planning=True)
    assert_problem(onnx_upload(client), 401, "Authorization")
    assert onnx_upload(client, {"X-API-Key": KEY}).status_code == 422
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_without_a_configured_key_job_endpoints_are_open(tmp_path):
    assert make_client(tmp_path).get("/benchmarks").status_code == 200


def test_an_empty_key_is_refused_at_startup(monkeypatch):
    with pytest.raises(ValidationError, match="api_key"):
        Settings(api_key="")
    monkeypatch.setenv("CNNPLAN_API_KEY", "")
    with pytest.raises(ValidationError, match="api_key"):
        Settings()


def test_the_key_is_compared_in_constant_time(tmp_path, monkeypatch):
    """Every check goes through hmac.compare_digest of the SHA-256 digests (a spy that records and delegates)."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(given, expected):
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    client = make_client(tmp_path, api_key=KEY)
    assert client.get("/benchmarks", headers={"X-API-Key": "guess"}).status_code == 401
    assert client.get("/benchmarks", headers={"X-API-Key": KEY}).status_code == 200
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    assert compared == [(hashlib.sha256(b"guess").hexdigest(), digest), (digest, digest)]


# -- the key never leaks --------------------------------------------------------------------------


def test_the_key_never_reaches_logs_responses_or_the_worker(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(tmp_path, api_key=KEY, job_rate_limit="2/minute")
    responses = [
        client.post("/benchmarks", json=JOB, headers={"X-API-Key": KEY}),
        client.post("/benchmarks", json={"plan": {"image_size": 1}}, headers={"X-API-Key": KEY}),  # 422
        client.post("/benchmarks", json=JOB, headers={"X-API-Key": KEY}),  # 429
        client.get("/benchmarks", headers={"Authorization": f"Bearer {KEY}"}),
        client.get("/benchmarks", headers={"Authorization": f"Bearer {KEY}-wrong"}),  # 401
        client.get("/benchmarks/nope", headers={"X-API-Key": KEY}),  # 404
    ]
    assert [r.status_code for r in responses] == [202, 422, 429, 200, 401, 404]
    for response in responses:
        assert KEY not in response.text and KEY not in str(response.headers)
    assert KEY not in caplog.text
    settings = Settings(data_dir=tmp_path, api_key=KEY)
    assert KEY not in repr(settings) and KEY not in str(settings) and KEY not in settings.model_dump_json()
    assert KEY not in str(settings_environment(settings))  # the embedded worker does not get it


def test_a_real_server_logs_requests_but_never_the_key(tmp_path):
    server = Uvicorn(tmp_path / "data", tmp_path / "uvicorn.log", {"CNNPLAN_API_KEY": KEY}, log_level="debug")
    with server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/benchmarks", headers={"X-API-Key": KEY}).status_code == 200
        assert http.get("/benchmarks", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert http.get("/benchmarks", headers={"X-API-Key": f"{KEY}-wrong"}).status_code == 401
        assert http.post("/benchmarks", json=JOB, headers={"X-API-Key": KEY}).status_code == 202
    log = server.log_text()
    assert "GET /benchmarks" in log and "401" in log  # the access log is on
    assert KEY not in log


# -- the rate limit -------------------------------------------------------------------------------


def test_job_submission_is_rate_limited_per_key(tmp_path):
    client = make_client(tmp_path, api_key=KEY, job_rate_limit="3/minute")
    headers = {"X-API-Key": KEY}
    assert [client.post("/benchmarks", json=JOB, headers=headers).status_code for _ in range(3)] == [202] * 3
    refused = client.post("/benchmarks", json=JOB, headers=headers)
    problem = assert_problem(refused, 429, "Authorization", ["3/minute"])
    assert problem["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert client.get("/benchmarks", headers=headers).json()["total"] == 3  # reads are not limited
    assert client.post("/plan", json={"image_size": 18}).status_code == 200  # nor is planning


def test_refused_credentials_do_not_spend_the_key_holders_quota(tmp_path):
    client = make_client(tmp_path, api_key=KEY, job_rate_limit="2/minute")
    for _ in range(10):
        assert client.post("/benchmarks", json=JOB, headers={"X-API-Key": "guess"}).status_code == 401
    assert [client.post("/benchmarks", json=JOB, headers={"X-API-Key": KEY}).status_code for _ in range(3)] == [
        202,
        202,
        429,
    ]


def test_without_a_key_the_limit_is_per_client_address(tmp_path):
    first = make_client(tmp_path, address="10.0.0.1", job_rate_limit="2/minute")
    second = AppClient(first.app, client=("10.0.0.2", 40000))
    assert [first.post("/benchmarks", json=JOB).status_code for _ in range(3)] == [202, 202, 429]
    assert second.post("/benchmarks", json=JOB).status_code == 202


def test_a_refused_client_is_served_again_after_retry_after(tmp_path):
    client = make_client(tmp_path, api_key=KEY, job_rate_limit="1/second")
    headers = {"X-API-Key": KEY}
    assert client.post("/benchmarks", json=JOB, headers=headers).status_code == 202
    refused = client.post("/benchmarks", json=JOB, headers=headers)
    assert refused.status_code == 429
    time.sleep(int(refused.headers["Retry-After"]) + 0.2)
    assert client.post("/benchmarks", json=JOB, headers=headers).status_code == 202


@pytest.fixture
def private_redis(tmp_path):
    """A private redis-server on a free loopback port (else db 11 of the machine's Redis, flushed)."""
    executable = shutil.which("redis-server")
    if executable is None:
        client = redis.Redis(port=6379, db=11, socket_connect_timeout=2)
        client.flushdb()
        yield "redis://127.0.0.1:6379/11"
        client.flushdb()
        return
    port = free_port()
    command = [
        executable,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_connect_timeout=1)
        for _ in range(100):  # a liveness guard, not a timed assertion
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_with_redis_the_limit_is_shared_by_every_api_process(tmp_path, private_redis):
    """Two apps (as two uvicorn workers would be) count the same key's submissions together."""
    settings = {"api_key": KEY, "job_rate_limit": "3/minute", "redis_url": private_redis}
    first = make_client(tmp_path, **settings)
    second = make_client(tmp_path, **settings)
    headers = {"X-API-Key": KEY}
    assert [first.post("/benchmarks", json=JOB, headers=headers).status_code for _ in range(2)] == [202, 202]
    assert second.post("/benchmarks", json=JOB, headers=headers).status_code == 202
    assert_problem(second.post("/benchmarks", json=JOB, headers=headers), 429, "Authorization", ["3/minute"])
    assert_problem(first.post("/benchmarks", json=JOB, headers=headers), 429, "Authorization", ["3/minute"])


def test_unreachable_counters_make_submission_503_and_planning_goes_on(tmp_path):
    client = make_client(tmp_path, api_key=KEY, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    refused = client.post("/benchmarks", json=JOB, headers={"X-API-Key": KEY})
    assert_problem(refused, 503, None, ["counters", "planning and validation still work"])
    assert int(refused.headers["Retry-After"]) > 0
    assert client.post("/plan", json={"image_size": 18}).status_code == 200


def test_a_rate_that_is_not_a_rate_is_refused_at_startup():
    with pytest.raises(ValidationError, match="job_rate_limit"):
        Settings(job_rate_limit="lots")


# -- nothing from a request runs ------------------------------------------------------------------

FORBIDDEN_CALLS = {
    "eval", "exec", "compile", "__import__", "breakpoint",
    "importlib.import_module", "importlib.__import__", "runpy.run_path", "runpy.run_module",
    "pickle.load", "pickle.loads", "pickle.Unpickler", "marshal.load", "marshal.loads", "shelve.open",
    "yaml.load", "yaml.unsafe_load", "yaml.full_load", "torch.load", "numpy.load", "np.load",
    "os.system", "os.popen", "os.exec", "os.execv", "os.execvp", "os.spawnv",
}  # fmt: skip
COMMAND_LINE_ONLY = {
    # `cnnplan validate --module package.module:factory` imports the user's own factory, named on their own
    # command line (docs/importers.md); no route reaches torch_import, which the next test checks.
    ("service/interop/torch_import.py", "importlib.import_module"),
}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "jsonpickle", "runpy"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def test_no_code_path_executes_unpickles_or_imports_dynamically():
    """An AST scan of every module of the product: no eval/exec/pickle/dynamic import, no shell."""
    findings = []
    for path in sorted([*(ROOT / "service").rglob("*.py"), *(ROOT / "solver").rglob("*.py")]):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                if name in FORBIDDEN_CALLS and (str(where), name) not in COMMAND_LINE_ONLY:
                    findings.append(f"{where}:{node.lineno} calls {name}")
                if any(
                    k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                    for k in node.keywords
                ):
                    findings.append(f"{where}:{node.lineno} runs a shell")
                if any(k.arg == "allow_pickle" for k in node.keywords):
                    findings.append(f"{where}:{node.lineno} allows pickles")
            elif isinstance(node, ast.Import):
                findings += [
                    f"{where}:{node.lineno} imports {a.name}"
                    for a in node.names
                    if a.name.split(".")[0] in FORBIDDEN_MODULES
                ]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                findings.append(f"{where}:{node.lineno} imports from {node.module}")
    assert findings == []


def test_no_route_reaches_the_command_line_only_import():
    """The one dynamic import the scan allows (the CLI's --module) is in a module no part of the web layer imports."""
    importers = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "service" / "api").rglob("*.py"))
        if "torch_import" in path.read_text()
    ]
    assert importers == []


def test_the_scan_would_catch_what_it_looks_for():
    tree = ast.parse("import pickle\npickle.loads(b'')\neval('1')\nsubprocess.run('ls', shell=True)\n")
    calls = {_dotted(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert {"pickle.loads", "eval"} <= calls & FORBIDDEN_CALLS


def test_celery_accepts_json_only(tmp_path):
    app = make_celery(Settings(data_dir=tmp_path, redis_url=None))
    assert app.conf.task_serializer == "json" and app.conf.result_serializer == "json"
    assert list(app.conf.accept_content) == ["json"] and list(app.conf.result_accept_content) == ["json"]
    accept = prepare_accept_content(app.conf.accept_content)  # what the worker's consumer hands to kombu
    payload = pickle.dumps({"task": "cnnplan.benchmark"})  # a message a hostile producer could queue
    with pytest.raises(ContentDisallowed):
        kombu_loads(payload, "application/x-python-serialize", "binary", accept=accept)
    assert kombu_loads(b'{"job": "1"}', "application/json", "utf-8", accept=accept) == {"job": "1"}


# -- the container --------------------------------------------------------------------------------


def _final_stage(dockerfile: str) -> list[str]:
    """Instructions of the last stage, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[last_from:]


def test_the_container_runs_as_a_non_root_user():
    stage = _final_stage((ROOT / "Dockerfile").read_text())
    cmd = next(i for i, line in enumerate(stage) if line.upper().startswith(("CMD ", "ENTRYPOINT ")))
    users = [line.split(None, 1)[1].strip() for line in stage[:cmd] if line.upper().startswith("USER ")]
    assert users, "no USER before CMD: the container would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0") and group not in ("root", "0"), users[-1]
    assert not any(line.upper().startswith("USER ") for line in stage[cmd:]), "USER changes after CMD"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        assert str(service.get("user", "")).split(":")[0] not in ("root", "0"), name
        assert not service.get("privileged", False), name
