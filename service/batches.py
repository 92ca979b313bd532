"""Batch answering shared by /plan/batch and /validate/batch: size check, per-item problems, layer budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .dependencies import AppSettings
from .problems import ProblemError, problem_body

AnswerItem = Callable[[int, Any], dict[str, Any]]


def check_batch_size(count: int, settings: AppSettings) -> None:
    """422 when a batch exceeds CNNPLAN_MAX_BATCH."""
    if count > settings.max_batch:
        reason = f"has {count} items; at most {settings.max_batch} are accepted"
        raise ProblemError(
            422, "Invalid request", f"requests: {reason}", field="requests", reason=reason, code="limit_exceeded"
        )


def not_an_object(index: int) -> dict[str, Any]:
    """The problem of a batch item that is not a JSON object."""
    reason = "must be a JSON object (a request body)"
    return problem_body(
        422,
        "Invalid request",
        f"requests[{index}]: {reason}",
        code="validation_error",
        field=f"requests[{index}]",
        reason=reason,
    )


def over_layer_budget(index: int, budget: int) -> dict[str, Any]:
    """The answer of a batch item that would push the batch past CNNPLAN_MAX_BATCH_LAYERS."""
    reason = f"the batch's answers would hold more than {budget} layers in all; send the rest in another batch"
    problem = problem_body(
        422,
        "Invalid request",
        f"requests[{index}]: {reason}",
        code="limit_exceeded",
        field=f"requests[{index}]",
        reason=reason,
    )
    return {"index": index, "ok": False, "problem": problem}


def answer_within_budget(requests: list[Any], answer_item: AnswerItem, budget: int) -> list[dict[str, Any]]:
    """Answer the items in order until their answers hold `budget` layers; later items get a 422 problem
    without being computed, so a small body (presets, huge plans) cannot build gigabytes of JSON."""
    results: list[dict[str, Any]] = []
    spent = 0
    for index, item in enumerate(requests):
        if spent > budget:
            results.append(over_layer_budget(index, budget))
            continue
        result = answer_item(index, item)
        if result["ok"]:
            spent += len(result["result"]["layers"])
            if spent > budget:
                result = over_layer_budget(index, budget)
        results.append(result)
    return results
