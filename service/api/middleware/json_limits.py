"""ASGI middleware that refuses JSON bodies nested too deeply or carrying absurdly long numbers (422 problem).

Python's JSON parser recurses once per nesting level and converts every digit of an integer, so a
1 MiB body of ``[[[[...`` or a 5,000-digit number would otherwise end in a RecursionError, a
ValueError or a long CPU burn. The check is a few C-speed passes over the bytes: string literals
are blanked, then innermost ``[]`` pairs are removed, one nesting level per pass. Runs inside
`BodySizeLimitMiddleware`, so the body it reads is already at most ``max_body_bytes``.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from cnnplan.service.api.middleware.body_limit import _replay
from cnnplan.service.problems import field_problem, problem_response

MAX_JSON_DEPTH = 32
"""Deepest accepted nesting of JSON arrays and objects (the deepest valid body, a /validate/batch of graphs, needs 7)."""

MAX_JSON_NUMBER_DIGITS = 100
"""Most digits in a row in a JSON number (integer part, fraction or exponent): every limit of the API fits
in 7, and an exact c-value is a "p/q" string."""

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)  # possessive: linear time, no backtracking
_LONG_NUMBER = re.compile(rb"\d{%d,}" % (MAX_JSON_NUMBER_DIGITS + 1))
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")  # only the depth matters here; mismatches are the parser's to report


def json_limit_reason(body: bytes) -> str | None:
    """Why `body` breaks a JSON limit (depth or number length), or None when it does not."""
    skeleton = _STRING.sub(b'""', body)
    if _LONG_NUMBER.search(skeleton):
        return f"has a number with more than {MAX_JSON_NUMBER_DIGITS} digits; at most {MAX_JSON_NUMBER_DIGITS} are accepted"
    brackets = skeleton.translate(_AS_SQUARE, _NOT_A_BRACKET)
    levels = 0
    while brackets:
        reduced = brackets.replace(b"[]", b"")  # one pass removes exactly the innermost level
        if len(reduced) == len(brackets):  # unbalanced leftovers: the parser reports them, unless they nest deep
            levels += reduced.count(b"[")
            break
        levels += 1
        if levels > MAX_JSON_DEPTH:
            break
        brackets = reduced
    if levels > MAX_JSON_DEPTH:
        return f"nests arrays or objects more than {MAX_JSON_DEPTH} levels deep; at most {MAX_JSON_DEPTH} are accepted"
    return None


def _is_json(scope: Scope) -> bool:
    """FastAPI parses a body as JSON when its media type is application/json, */*+json, or missing."""
    for key, value in scope["headers"]:
        if key == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json" or (
                media_type.startswith(b"application/") and media_type.endswith(b"+json")
            )
    return True


class JsonLimitsMiddleware:
    """422 ``application/problem+json`` (field ``body``) for JSON bodies past `MAX_JSON_DEPTH` or `MAX_JSON_NUMBER_DIGITS`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        reason = json_limit_reason(body)
        if reason is not None:
            await problem_response(field_problem("body", reason, code="limit_exceeded"))(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


__all__ = ["MAX_JSON_DEPTH", "MAX_JSON_NUMBER_DIGITS", "JsonLimitsMiddleware", "json_limit_reason"]
