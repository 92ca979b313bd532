"""Every router of the API, one per resource; adding a router is one line in `ROUTERS`."""

from cnnplan.service.api.routes import benchmarks, experiments, health, metrics, onnx_upload, plan, presets, validate

ROUTERS = [
    plan.router,
    onnx_upload.router,  # multipart ONNX uploads to POST /validate; must precede validate.router
    validate.router,
    presets.router,
    health.router,
    metrics.router,
    benchmarks.router,
    experiments.router,
]
