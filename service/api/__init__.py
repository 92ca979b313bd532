"""The web layer: the FastAPI app (`app`), its routes (one router per resource in `routes/`), its middleware
(`middleware/`), the dependencies (`deps`), and the HTTP-only helpers (batches, formats, rate limit).

Routes stay thin: they parse a request model, call the solver through `cnnplan.service.convert` (or the
job service of `cnnplan.service.worker.jobs`) and render the answer. Nothing here is imported by the CLI's
offline commands, the solver or the worker.
"""
