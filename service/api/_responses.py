"""A JSON response class that serializes with orjson (several times faster than the stdlib on plans)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi.responses import JSONResponse


def render_json(content: Any) -> bytes:
    """Compact JSON by orjson; the stdlib (same bytes) for integers past 64 bits, where orjson stops."""
    try:
        return orjson.dumps(content)
    except TypeError:  # orjson stops at 64-bit integers; params and FLOPs of huge layers go past them
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class FastJSONResponse(JSONResponse):
    """``application/json`` rendered by orjson; the body must be plain dicts, lists, str, int, float, bool, None."""

    def render(self, content: Any) -> bytes:
        return render_json(content)


__all__ = ["FastJSONResponse", "render_json"]
