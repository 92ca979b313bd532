"""The distribution installs one import name, `cnnplan`, over the repository's solver/ and service/ folders."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("cnnplan", "solver", "service", "tests", "benchmarks", "examples")
FOLDER_OF = {"cnnplan": "cnnplan", "cnnplan.solver": "solver", "cnnplan.service": "service"}


def python_files() -> list[Path]:
    return [path for folder in SOURCE_DIRS for path in (ROOT / folder).rglob("*.py")]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_nothing_imports_service_or_solver_bare():
    offenders = [str(path.relative_to(ROOT)) for path in python_files() if imported_roots(path) & {"service", "solver"}]
    assert offenders == []


def test_a_bare_import_fails_outside_the_repository(tmp_path):
    code = "import importlib.util, cnnplan.service, cnnplan.solver; print(importlib.util.find_spec('service'), importlib.util.find_spec('solver'))"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["None", "None"]


def test_the_top_level_exports_resolve():
    import cnnplan

    assert cnnplan.PlannerClient.__module__.startswith("cnnplan.service.client")
    assert cnnplan.make_plan(cnnplan.PlanRequest(image_size=18)).stages == (8,)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cnnplan.nope  # noqa: B018


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == FOLDER_OF
    found = set()
    for init in ROOT.glob("*/**/__init__.py"):
        parts = init.parent.relative_to(ROOT).parts
        if parts[0] in ("solver", "service"):
            found.add(".".join(("cnnplan", *parts)))
    found.add("cnnplan")
    assert sorted(config["packages"]) == sorted(found)


@pytest.mark.timeout(600)
def test_a_wheel_holds_only_the_cnnplan_package(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("cnnplan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"cnnplan"}
    assert "cnnplan/solver/planner.py" in names and "cnnplan/service/api/app.py" in names
