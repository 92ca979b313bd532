"""`cnnplan.service`: everything around the solver that talks to the world.

Shared core (used by every subpackage): `schemas` (the request and answer models), `convert` (request
models to solver objects, solver objects to JSON-ready answers), `problems` (RFC 9457 problem details),
`settings` (``CNNPLAN_*`` settings). Subpackages, one responsibility each: `api` (the FastAPI app, routes
and middleware), `cli` (the ``cnnplan`` command), `client` (the Python client), `interop` (ONNX import,
PyTorch export, diagrams), `worker` (jobs and the Celery worker). See docs/architecture.md.
"""
