"""The zoo as presets: shipped graphs equal a fresh regeneration, are listed and validated without torch, and the
zoo report page is what its script writes from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "solver" / "zoo_presets.json"


def shipped() -> dict:
    return json.loads(SHIPPED.read_text())


def test_a_regenerated_sample_equals_the_shipped_data():
    from cnnplan.service.interop.zoo import ZooModel, preset_entry

    data = shipped()
    name = "tv.mobilenet_v2" if "tv.mobilenet_v2" in data else sorted(data)[0]
    source, model = ("torchvision", name[3:]) if name.startswith("tv.") else ("timm", name[5:])
    fresh = preset_entry(ZooModel(source, model, data[name]["family"], data[name]["image_size"]))
    assert fresh == data[name]


def test_zoo_presets_are_listed_and_validated_on_a_server_without_torch(tmp_path):
    """A child process where importing torch fails: GET /presets lists the zoo, POST /validate reads one."""
    code = """
import sys
sys.modules["torch"] = None  # any import of torch now raises ImportError
from fastapi.testclient import TestClient
from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings
client = TestClient(create_app(Settings(redis_url=None, embedded_worker=False, data_dir=sys.argv[1])))
names = [p["name"] for p in client.get("/presets").json()["presets"]]
zoo = [n for n in names if n.startswith(("tv.", "timm."))]
answer = client.post("/validate", json={"preset": zoo[0]})
print(len(zoo), "vgg16" in names, answer.status_code, answer.json()["depth"], answer.json()["params"], zoo[0])
"""
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    count, has_vgg, status, depth, params, name = run.stdout.split()
    assert int(count) == len(shipped()) and has_vgg == "True" and status == "200"
    assert int(params) == shipped()[name]["params"]  # the module's count, not the graph's
    assert int(depth) == sum(
        1 for node in shipped()[name]["nodes"] if node["type"] == "conv" and node.get("level", "feature") == "feature"
    )


def test_zoo_preset_parameters_are_the_module_counts():
    from cnnplan.service.interop.zoo import build

    data = shipped()
    name = "tv.mobilenet_v2" if "tv.mobilenet_v2" in data else sorted(data)[0]
    source, model = ("torchvision", name[3:]) if name.startswith("tv.") else ("timm", name[5:])
    assert data[name]["params"] == sum(p.numel() for p in build(source, model).parameters())


def test_zoo_preset_answers_count_the_module_in_both_views_and_say_what_the_layers_lack():
    """params is the module's count in the full and the summary answer, alone and in a batch; the layers sum to it
    less the parameters of modules the forward pass never calls, which a note names."""
    from fastapi.testclient import TestClient

    from cnnplan.service.api.app import create_app
    from cnnplan.service.settings import Settings

    client = TestClient(create_app(Settings(redis_url=None, embedded_worker=False)))
    for name, entry in shipped().items():
        full = client.post("/validate", json={"preset": name}).json()
        summary = client.post("/validate?view=summary", json={"preset": name}).json()
        batch = client.post("/validate/batch?view=summary", json={"requests": [{"preset": name}]}).json()
        assert full["params"] == summary["params"] == batch["results"][0]["result"]["params"] == entry["params"]
        unused, elementwise = entry.get("unused_params", 0), entry.get("elementwise_params", 0)
        assert sum(layer["params"] for layer in full["layers"]) + unused + elementwise == entry["params"], name
        assert full.get("notes") == summary.get("notes") and bool(full.get("notes")) == bool(unused or elementwise)
        if unused:
            assert f"{unused:,}" in full["notes"][0] and entry["unused_modules"][0] in full["notes"][0]
        if elementwise:
            assert f"{elementwise:,} of the" in full["notes"][-1]


@pytest.mark.parametrize("page", ["zoo.md"])
def test_the_zoo_report_is_what_its_script_writes(tmp_path, page):
    out = tmp_path / page
    subprocess.run([sys.executable, "scripts/zoo_report.py", "--output", str(out)], check=True, cwd=ROOT,
                   timeout=300, capture_output=True)  # fmt: skip
    assert out.read_text() == (ROOT / "docs" / page).read_text()
