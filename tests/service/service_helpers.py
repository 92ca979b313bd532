"""Assertions shared by the service tests (a uniquely named module: several test folders have a conftest.py)."""

from __future__ import annotations

import httpx


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict:
    """The response is an RFC 9457 problem with `status` (and naming `field`); returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    if field is not None:
        assert body["field"] == field, body
        assert body["reason"], body
    return body
