"""Every example on the documentation's pages prints, in a fresh run against a real server, exactly the
output its page shows (scripts/docs_examples.py; only the scratch path and the port are normalised)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_script():
    spec = importlib.util.spec_from_file_location("docs_examples", ROOT / "scripts" / "docs_examples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_examples"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


docs_examples = _load_script()


def test_every_page_shows_what_a_fresh_run_prints():
    missing = [tool for tool in ("curl", "jq") if shutil.which(tool) is None]
    assert not missing, f"the documentation's examples need {missing} on PATH (.ci/run installs them)"
    rendered = docs_examples.render_all()
    assert set(rendered.pages) == set(docs_examples.PAGES)
    diff = docs_examples.stale_pages(rendered)
    assert diff == "", "pages out of date; run `python scripts/docs_examples.py`:\n" + diff
    for name, data in rendered.images.items():
        assert (ROOT / name).read_bytes() == data, f"{name} differs from a fresh run"


@pytest.mark.parametrize("page", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")) + ["README.md"])
def test_every_command_against_the_server_is_a_checked_example(page):
    """A console block that talks to the server on port 8000 is marked as an example (and so is re-run),
    and its page is one the script runs."""
    lines = (ROOT / page).read_text().split("\n")
    unmarked = []
    for index, line in enumerate(lines):
        if line.startswith("```console"):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            talks = any(re.search(r"(localhost|127\.0\.0\.1):8000|\$CNNPLAN_URL", row) for row in lines[index:end])
            if talks and lines[index - 1] != docs_examples.EXAMPLE:
                unmarked.append(index + 1)
            if talks:
                assert page in docs_examples.PAGES, page
    assert unmarked == []


def test_a_stale_output_is_detected(tmp_path):
    """The check compares outputs line by line: a page whose shown output is wrong comes back rewritten."""
    page = tmp_path / "page.md"
    page.write_text("<!-- example -->\n```console\n$ echo 6/36\n1/6\n```\n")
    scratch = docs_examples.Scratch(tmp_path, 8000, {"PATH": "/usr/bin:/bin"})
    assert (
        docs_examples.render_page(page.read_text(), scratch) == "<!-- example -->\n```console\n$ echo 6/36\n6/36\n```\n"
    )


def test_a_failing_example_is_an_error(tmp_path):
    scratch = docs_examples.Scratch(tmp_path, 8000, {"PATH": "/usr/bin:/bin"})
    with pytest.raises(RuntimeError, match="exited with 3"):
        docs_examples.render_page("<!-- example -->\n```console\n$ exit 3\n```\n", scratch)
