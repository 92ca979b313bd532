"""ASGI middleware of the app, outermost first: body size limit, JSON shape limits, Prometheus metrics."""
