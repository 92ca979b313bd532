"""A JSON response class that serializes with orjson (several times faster than the stdlib on plans)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """``application/json`` rendered by orjson; the body must be plain dicts, lists, str, int, float, bool, None."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


__all__ = ["FastJSONResponse"]
