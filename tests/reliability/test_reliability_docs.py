"""The "Limits and guarantees" page (docs/limits.md) names only tests that exist, and every limit module's
constants that it quotes are the ones the code enforces."""

from __future__ import annotations

import ast
import re

from reliability_helpers import ROOT

from cnnplan.service.api.middleware.json_limits import MAX_JSON_DEPTH, MAX_JSON_NUMBER_DIGITS
from cnnplan.service.settings import Settings
from cnnplan.solver.limits import MAX_FAN_IN, MAX_IMAGE_SIDE, MAX_JUMP, MAX_LAYERS

PAGE = ROOT / "docs" / "limits.md"
TITLE = "# Limits and guarantees"
FILE_SPAN = re.compile(r"(?:R|tests)/[\w/]+\.py(?:::(\w+))?(?:\[[\w-]+\])?")
TEST_SPAN = re.compile(r"(?:::)?(test_\w+)(?:\[[\w-]+\])?")


def section_text() -> str:
    """The whole "Limits and guarantees" page (it starts with its title)."""
    text = PAGE.read_text()
    assert text.startswith(TITLE + "\n")
    return text


def referenced_tests() -> list[tuple[str, str]]:
    """(file, test) of every `path::test` in the doc's tables; a bare `::test` or `test` reuses the last path named
    before it (in its row, or in its table's header)."""
    pairs = []
    current = None
    for row in section_text().splitlines():
        if not row.startswith("|"):
            continue
        for span in re.findall(r"`([^`]+)`", row):
            if FILE_SPAN.fullmatch(span):
                current = span.split("::")[0].replace("R/", "tests/reliability/", 1)
                name = FILE_SPAN.fullmatch(span).group(1)
            elif TEST_SPAN.fullmatch(span) and current:
                name = TEST_SPAN.fullmatch(span).group(1)
            else:
                continue
            if name:
                pairs.append((current, name))
    return pairs


def test_every_test_the_doc_names_exists():
    pairs = referenced_tests()
    assert len(pairs) >= 40
    missing = []
    for path, name in pairs:
        tree = ast.parse((ROOT / path).read_text())
        names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
        if name not in names:
            missing.append(f"{path}::{name}")
    assert missing == []


def test_the_doc_quotes_the_enforced_limits():
    text = section_text()
    settings = Settings()
    for value in (
        MAX_JSON_DEPTH,
        MAX_JSON_NUMBER_DIGITS,
        MAX_FAN_IN,
        MAX_IMAGE_SIDE,
        MAX_JUMP,
        settings.max_body_bytes,
    ):
        assert str(value) in text, value
    assert f"{MAX_LAYERS:,}" in text and f"{settings.max_batch:,}" in text
    assert settings.job_rate_limit.replace("/minute", " per minute") in text
