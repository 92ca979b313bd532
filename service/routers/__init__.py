"""Every router of the API, one per resource; adding a router is one line in `ROUTERS`."""

from . import health, metrics, plan, presets, validate

ROUTERS = [
    plan.router,
    validate.router,
    presets.router,
    health.router,
    metrics.router,
]
