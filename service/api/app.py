"""The ASGI application: ``cnnplan.service.api.app:app``, built by `create_app` from `Settings`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import Depends, FastAPI

from cnnplan.service.api._docs_assets import install_offline_docs
from cnnplan.service.api._responses import FastJSONResponse
from cnnplan.service.api.answer_cache import AnswerCache
from cnnplan.service.api.deps import require_api_key
from cnnplan.service.api.middleware.body_limit import BodySizeLimitMiddleware
from cnnplan.service.api.middleware.json_limits import JsonLimitsMiddleware
from cnnplan.service.api.middleware.metrics import MetricsMiddleware, ServiceMetrics
from cnnplan.service.api.owners import keys_configured
from cnnplan.service.api.routes import ROUTERS
from cnnplan.service.problems import install_problem_handlers
from cnnplan.service.settings import Settings, get_settings

DESCRIPTION = """Design very deep CNNs from first principles (receptive-field arithmetic, the c-value
constraint and the optimal-depth planner). c-values come as a rounded JSON number (`c_value`) and
an exact `"p/q"` string (`c_value_exact`). A layer's `stride` defaults to 1 for convolutions and to
`kernel_size` for pools, as in PyTorch. Errors are RFC 9457 `application/problem+json` bodies with
`field` and `reason`."""


PUBLIC_TAGS = frozenset({"health", "metrics"})
"""Routers tagged with one of these stay open even with CNNPLAN_PROTECT_PLANNING; the job routers always need the key."""


def package_version() -> str:
    """The installed distribution's version (0.0.0 when running from an uninstalled checkout)."""
    try:
        return version("cnnplan")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    """A FastAPI app with every router of `ROUTERS`, problem+json errors, the body limit and metrics."""
    settings = settings if settings is not None else get_settings()
    app = FastAPI(
        title="cnnplan",
        version=package_version(),
        description=DESCRIPTION,
        default_response_class=FastJSONResponse,
        docs_url=None,  # /docs and /redoc come from install_offline_docs: assets from the package, no CDN
        redoc_url=None,
    )
    install_offline_docs(app)
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    app.state.answer_cache = AnswerCache(
        settings.answer_cache_entries, settings.answer_cache_bytes, registry=app.state.metrics.registry
    )
    install_problem_handlers(app)
    guard = [Depends(require_api_key)] if keys_configured(settings) and settings.protect_planning else []
    for router in ROUTERS:
        public = PUBLIC_TAGS.intersection(router.tags)
        app.include_router(router, dependencies=[] if public else guard)
    app.add_middleware(JsonLimitsMiddleware)  # inside the body limit: sees at most max_body_bytes
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


app = create_app()

__all__ = ["app", "create_app"]
