"""ASGI middleware of the app, outermost first: Prometheus metrics, body size limit, JSON shape limits.

What belongs here: pure ASGI wrappers that must see every request before routing (limits, metrics);
each is added in `cnnplan.service.api.app.create_app`. Per-route logic belongs in ``routes/`` or ``deps``.
See docs/architecture.md#request-path.
"""
