"""RFC 9457 problem details: one exception type, one response builder and the app's error handlers.

Every client error leaves as ``application/problem+json`` with ``field`` (where) and ``reason``
(why); solver errors map to 422, request-model errors to 422, unknown routes to 404, wrong
methods to 405, oversized bodies to 413. Only a real bug reaches the catch-all 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cnnplan.solver.errors import SolverError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:cnnplan:problem:"
"""Problem ``type`` URIs are ``urn:cnnplan:problem:<code>`` (e.g. ``...:limit_exceeded``)."""

logger = logging.getLogger("cnnplan.service")


class ProblemError(Exception):
    """Raise anywhere in a request to answer with this problem (status, title, detail, field)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        reason: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
        self.headers = dict(headers) if headers else None
        self.reason = reason if reason is not None else (detail if field else None)
        self.code = code


def problem_body(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    *,
    code: str | None = None,
    field: str | None = None,
    reason: str | None = None,
    errors: list[dict[str, str]] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """The problem document as a dict (keys with no value are left out)."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}" if code else "about:blank",
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
    }
    for key, value in (
        ("instance", instance),
        ("code", code),
        ("field", field),
        ("reason", reason),
        ("errors", errors),
    ):
        if value is not None:
            body[key] = value
    return body


def field_problem(field: str, reason: str, code: str = "validation_error", status: int = 422) -> dict[str, Any]:
    """The problem document of one bad field: ``detail`` is ``"<field>: <reason>"``, ``title`` "Invalid request".
    The one builder of field problems (routes raise it as `invalid_field`)."""
    return problem_body(status, "Invalid request", f"{field}: {reason}", code=code, field=field, reason=reason)


def invalid_field(field: str, reason: str, code: str = "validation_error", status: int = 422) -> ProblemError:
    """`field_problem` as an exception to raise (``raise invalid_field("image_size", "is required")``)."""
    return ProblemError(status, "Invalid request", f"{field}: {reason}", field=field, reason=reason, code=code)


def problem_response(body: dict[str, Any], headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Send a problem document with its media type."""
    return JSONResponse(body, status_code=body["status"], headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def solver_problem(error: SolverError) -> dict[str, Any]:
    """422 for a solver error: its field, reason and code."""
    return problem_body(
        422,
        "Invalid input",
        f"{error.field}: {error.reason}",
        code=error.code,
        field=error.field,
        reason=error.reason,
    )


_UNION_TAG = re.compile(r"[^A-Za-z0-9_]|^(int|float|str|bool|list|dict|tuple|none)$")


def field_path(loc: Iterable[Any], ctx: Mapping[str, Any] | None = None) -> str:
    """``('body', 'layers', 3, 'kernel_size')`` -> ``layers[3].kernel_size``; drops the body/query prefix
    and pydantic's union-member tags; a solver-raised field in ctx (e.g. ``image_size[1]``) refines the leaf."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _UNION_TAG.search(part):
            path += f".{part}" if path else part
    solver_field = (ctx or {}).get("field")
    if isinstance(solver_field, str) and path:
        leaf = path.rsplit(".", 1)[-1]
        if solver_field.startswith(leaf):
            path = path[: len(path) - len(leaf)] + solver_field
    return path or "body"


def _reason(error: Mapping[str, Any]) -> str:
    if error.get("type") == "missing":
        return "is required"
    if error.get("type") == "extra_forbidden":
        return "is not an accepted field"
    if error.get("type") == "json_invalid":
        return f"is not valid JSON ({error.get('ctx', {}).get('error', 'decode error')})"
    message = str(error.get("msg", "is invalid"))
    return message[len("Value error, ") :] if message.startswith("Value error, ") else message


def validation_problem(errors: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """422 naming every bad field; union alternatives for one field are joined with 'or'."""
    merged: dict[str, list[str]] = {}
    for error in errors:
        if error.get("type") == "json_invalid":
            path = "body"
        elif error.get("type") == "rule":  # a model-level rule (schemas.check_exactly_one_of): its field is relative
            prefix, relative = field_path(error.get("loc", ())), error["ctx"]["field"]
            path = relative if prefix == "body" else f"{prefix}.{relative}"
        else:
            path = field_path(error.get("loc", ()), error.get("ctx"))
        reasons = merged.setdefault(path, [])
        reason = _reason(error)
        if reason not in reasons:
            reasons.append(reason)
    listed = [{"field": path, "reason": " or ".join(reasons)} for path, reasons in merged.items()]
    first = listed[0] if listed else {"field": "body", "reason": "is invalid"}
    detail = "; ".join(f"{item['field']}: {item['reason']}" for item in listed) or "the request is invalid"
    return problem_body(
        422,
        "Invalid request",
        detail,
        code="validation_error",
        field=first["field"],
        reason=first["reason"],
        errors=listed,
    )


def problem_for_exception(error: Exception) -> dict[str, Any]:
    """The problem document of a per-item failure in a batch (client errors only; bugs re-raise)."""
    if isinstance(error, SolverError):
        return solver_problem(error)
    if isinstance(error, ValidationError):
        return validation_problem(error.errors(include_url=False))
    if isinstance(error, ProblemError):
        return problem_body(
            error.status, error.title, error.detail, code=error.code, field=error.field, reason=error.reason
        )
    raise error


async def _problem_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)
    return problem_response(problem_for_exception(error), error.headers)


async def _solver_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, SolverError)
    return problem_response(solver_problem(error))


async def _request_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return problem_response(validation_problem(error.errors()))


async def _model_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ValidationError)
    return problem_response(validation_problem(error.errors(include_url=False)))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    status = error.status_code
    detail = error.detail if isinstance(error.detail, str) else HTTPStatus(status).phrase
    headers = dict(getattr(error, "headers", None) or {})
    if status == 404:
        detail = f"no route {request.url.path!r}; see /docs or /openapi.json"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path!r}"
        headers["Allow"] = ", ".join(sorted(allowed_methods(request))) or headers.get("Allow", "")
    elif status == 400:  # the framework could not parse the body (not UTF-8, broken multipart): as a JSON syntax error
        kind = "multipart/form-data" if request.headers.get("content-type", "").startswith("multipart/") else "JSON"
        reason = f"is not valid {kind} ({str(error.__cause__ or detail)[:200]})"
        return problem_response(field_problem("body", reason))
    return problem_response(problem_body(status, None, detail), headers)


def allowed_methods(request: Request) -> set[str]:
    """Every method the OpenAPI document lists for this path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if _path_pattern(template).fullmatch(request.url.path):
            methods.update(method.upper() for method in operations if method in _HTTP_METHODS)
    return methods


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


@lru_cache(maxsize=256)
def _path_pattern(template: str) -> re.Pattern[str]:
    """``/benchmarks/{job_id}`` -> a regex matching ``/benchmarks/<one segment>``."""
    return re.compile("[^/]+".join(re.escape(part) for part in re.split(r"\{[^/{}]+\}", template)))


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        problem_body(500, "Internal Server Error", "an unexpected error occurred (a bug); it was logged")
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers above on `app`."""
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(SolverError, _solver_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(ValidationError, _model_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "ProblemError",
    "field_path",
    "field_problem",
    "invalid_field",
    "install_problem_handlers",
    "problem_body",
    "problem_for_exception",
    "problem_response",
    "problem_responses",
    "solver_problem",
    "validation_problem",
]


def problem_responses(
    *statuses: int, rules: Sequence[str] = (), notes: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem+json bodies for `statuses`. `rules` are the rules a
    request can break although it matches the JSON Schema (they go in the 422's description, and in its
    ``x-rules-beyond-schema`` list); `notes` add a sentence to a status's description."""
    from cnnplan.service.schemas import Problem

    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description = HTTPStatus(status).phrase + " (RFC 9457 problem details)"
        if notes and status in notes:
            description += f": {notes[status]}"
        response: dict[str, Any] = {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            "description": description,
        }
        if status == 422 and rules:
            response["description"] += (
                ". Also for requests that match the schema but break a rule JSON Schema cannot state: "
                + "; ".join(rules)
                + "."
            )
            response["x-rules-beyond-schema"] = list(rules)
        responses[status] = response
    return responses
