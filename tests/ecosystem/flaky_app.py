"""A tiny ASGI app for the client's retry and polling tests, served by a real uvicorn process.

``/flaky/{key}?fail=N&status=S&retry_after=R`` answers S (503 or 429) with ``Retry-After: R`` to the
first N requests for `key`, then 200 with the number of requests seen; ``/benchmarks/{id}`` walks a job
through queued -> running (progress 0.5) -> succeeded, one state per poll.
"""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI()
seen: Counter[str] = Counter()
STATES = ({"status": "queued", "progress": 0.0}, {"status": "running", "progress": 0.5})


@app.get("/ok")
def ok() -> dict:
    return {"ok": True}


@app.get("/flaky/{key}")
def flaky(key: str, fail: int = 2, status: int = 503, retry_after: str = "1") -> JSONResponse:
    seen[key] += 1
    if seen[key] <= fail:
        body = {"type": "about:blank", "title": "busy", "status": status, "detail": "try again later"}
        return JSONResponse(body, status_code=status, headers={"Retry-After": retry_after},
                            media_type="application/problem+json")  # fmt: skip
    return JSONResponse({"requests": seen[key]})


@app.get("/benchmarks/{job_id}")
def benchmark(job_id: str) -> dict:
    seen[f"job:{job_id}"] += 1
    step = seen[f"job:{job_id}"] - 1
    if step < len(STATES):
        return {"id": job_id, **STATES[step]}
    return {"id": job_id, "status": "succeeded", "progress": 1.0, "result": {"p50_ms": 1.25}}
