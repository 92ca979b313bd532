"""Batch answering shared by /plan/batch and /validate/batch: size check, per-item problems, layer budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from cnnplan.service.api.deps import AppSettings
from cnnplan.service.problems import ProblemError, field_problem, invalid_field, problem_for_exception
from cnnplan.solver.errors import SolverError

Answer = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns one request body into its JSON answer (the same work as the single-item route)."""


def check_batch_size(count: int, settings: AppSettings) -> None:
    """422 when a batch exceeds CNNPLAN_MAX_BATCH."""
    if count > settings.max_batch:
        reason = f"has {count} items; at most {settings.max_batch} are accepted"
        raise invalid_field("requests", reason, code="limit_exceeded")


def not_an_object(index: int) -> dict[str, Any]:
    """The problem of a batch item that is not a JSON object."""
    return field_problem(f"requests[{index}]", "must be a JSON object (a request body)")


def over_layer_budget(index: int, budget: int) -> dict[str, Any]:
    """The answer of a batch item that would push the batch past CNNPLAN_MAX_BATCH_LAYERS."""
    reason = f"the batch's answers would hold more than {budget} layers in all; send the rest in another batch"
    problem = field_problem(f"requests[{index}]", reason, code="limit_exceeded")
    return {"index": index, "ok": False, "problem": problem}


def answer_item(index: int, item: Any, answer: Answer) -> dict[str, Any]:
    """One batch item: ``{index, ok: true, result}``, or ``{index, ok: false, problem}`` for the problem that
    sank only this item."""
    if not isinstance(item, dict):
        return {"index": index, "ok": False, "problem": not_an_object(index)}
    try:
        return {"index": index, "ok": True, "result": answer(item)}
    except (SolverError, ValidationError, ProblemError) as error:
        return {"index": index, "ok": False, "problem": problem_for_exception(error)}


def answer_within_budget(requests: list[Any], answer: Answer, budget: int) -> list[dict[str, Any]]:
    """Answer the items in order until their answers hold `budget` layers; later items get a 422 problem
    without being computed, so a small body (presets, huge plans) cannot build gigabytes of JSON. Summary
    answers (no ``layers``) spend nothing."""
    results: list[dict[str, Any]] = []
    spent = 0
    for index, item in enumerate(requests):
        if spent > budget:
            results.append(over_layer_budget(index, budget))
            continue
        result = answer_item(index, item, answer)
        if result["ok"]:
            spent += len(result["result"].get("layers", ()))
            if spent > budget:
                result = over_layer_budget(index, budget)
        results.append(result)
    return results
