"""/metrics: the Prometheus text exposition of the app's registry."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics: requests and latency per route")
def metrics(request: Request) -> Response:
    """Request counts by method, route template and status; latency histograms by method and route."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
