"""Offline /docs and /redoc, the OpenAPI description of the new formats, and `cnnplan plan --format pytorch`."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from click.testing import CliRunner

from cnnplan.service.api._docs_assets import ASSET_FILES
from cnnplan.service.cli.main import main
from cnnplan.solver import PlanRequest, WidthRule, make_plan

URL = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.mark.anyio
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_load_every_asset_from_the_app(app, page):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        html = await http.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "cdn" not in html.text.lower() and "https://" not in html.text
        urls = URL.findall(html.text)
        assert urls and all(url.startswith("/docs/static/") for url in urls), urls
        for url in urls:
            asset = await http.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
        assert "/openapi.json" in html.text


@pytest.mark.anyio
async def test_swagger_ui_bundle_is_a_version_that_reads_openapi_3_1(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        spec = (await http.get("/openapi.json")).json()
        bundle = (await http.get("/docs/static/swagger-ui-bundle.js")).text
    assert spec["openapi"].startswith("3.1")
    assert "swagger-ui" in bundle.lower() and '"5.' in bundle  # Swagger UI 5 renders OpenAPI 3.1
    assert set(ASSET_FILES) >= {"swagger-ui-bundle.js", "swagger-ui.css"}


@pytest.mark.anyio
async def test_openapi_documents_formats_and_the_onnx_upload(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        spec = (await http.get("/openapi.json")).json()
    get_plan = spec["paths"]["/plan"]["get"]
    assert {"json", "pytorch", "svg"} <= set(
        next(p for p in get_plan["parameters"] if p["name"] == "format")["schema"]["enum"]
    )
    assert {"text/x-python", "image/svg+xml"} <= set(get_plan["responses"]["200"]["content"])
    body = spec["paths"]["/validate"]["post"]["requestBody"]["content"]
    assert "application/json" in body and body["multipart/form-data"]["schema"]["required"] == ["model"]


@pytest.mark.anyio
async def test_get_plan_pytorch_is_a_download(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        got = await http.get("/plan", params={"image_size": "224", "format": "pytorch"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/x-python")
    assert 'filename="planned_net.py"' in got.headers["content-disposition"]
    assert f"PARAMETERS = {make_plan(PlanRequest(224)).params}" in got.text
    compile(got.text, "planned_net.py", "exec")


def test_cli_plan_format_pytorch_runs(tmp_path):
    result = CliRunner().invoke(main, ["plan", "18", "--num-classes", "4", "--width-base", "8", "--format", "pytorch"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "net.py"
    path.write_text(result.output)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    expected = make_plan(PlanRequest(18, num_classes=4, widths=WidthRule(base=8)))
    assert f"{expected.params} parameters, output shape (1, 4)" in done.stdout
