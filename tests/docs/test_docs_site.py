"""The documentation as a site: a short README whose links resolve, one port throughout, code citations that
point at sections of the theory page that exist, and a strict MkDocs build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")
ANCHOR = re.compile(r"\{ #([\w-]+) \}")
CITATION = re.compile(r"docs/theory\.md#([\w-]+)")


def anchors(page: Path) -> set[str]:
    """The anchors of a page: explicit `{ #id }` ones and the slugs of headings without one."""
    found = set()
    for line in page.read_text().splitlines():
        if not line.startswith("#"):
            continue
        explicit = ANCHOR.search(line)
        found.add(explicit.group(1) if explicit else slugify(line.lstrip("#").strip(), "-"))
    return found


def test_the_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    links = [link for link in LINK.findall(text) if not link.startswith(("http://", "https://"))]
    assert len(links) >= 9
    for link in links:
        path, _, anchor = link.partition("#")
        assert (ROOT / path).is_file(), link
        if anchor:
            assert anchor in anchors(ROOT / path), link


def test_the_readme_quick_start_installs_the_onnx_extra_and_runs_ci():
    text = (ROOT / "README.md").read_text()
    assert "pip install torch==2.13.0 -e '.[worker,onnx]'" in text and "$ bash .ci/run" in text


def test_one_port_throughout():
    """The service is on port 8000 on every page; the only other ports are Redis's, `mkdocs serve`'s and the
    compose fleet profile's API (8080, beside the default profile's 8000)."""
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        ports = set(re.findall(r"(?:localhost|127\.0\.0\.1|0\.0\.0\.0):(\d+)", page.read_text()))
        assert ports <= {"8000", "6379", "8001", "8080"}, (page.name, ports)


def test_code_cites_sections_of_the_theory_page_that_exist():
    theory = anchors(DOCS / "theory.md")
    assert {"layer-arithmetic", "c-value", "constraints", "exact-model", "simplified-model"} <= theory
    cited = []
    for folder in ("solver", "service", "cnnplan", "tests", "examples", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue  # this test names the file it looks for
            text = path.read_text()
            assert "THEORY.md" not in text, f"{path} cites THEORY.md, which is not in the repository"
            cited += [(path.name, anchor) for anchor in CITATION.findall(text)]
    assert len(cited) >= 14
    assert [(name, anchor) for name, anchor in cited if anchor not in theory] == []


def test_the_site_builds_in_strict_mode(tmp_path):
    """`mkdocs build --strict` (also in .ci/run): a broken link, anchor or image, or a page missing from nav, fails."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "theory" / "index.html").is_file()


def test_every_setting_is_documented():
    """Each `CNNPLAN_*` setting is named on the service page or the worker page."""
    from cnnplan.service.settings import Settings

    text = (DOCS / "service.md").read_text() + (DOCS / "worker.md").read_text()
    missing = [name for name in Settings.model_fields if f"`CNNPLAN_{name.upper()}`" not in text]
    worker_rows = re.findall(r"^\| `([A-Z_]+)` \|", (DOCS / "worker.md").read_text(), flags=re.M)
    assert [name for name in missing if name.upper() not in worker_rows] == []
