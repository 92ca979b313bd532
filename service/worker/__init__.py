"""Jobs: the job resources (`schemas`), the API-side job service (`jobs`: submit, list, read, cancel) and
the optional benchmark worker that builds planned networks in PyTorch and measures them as durable Celery jobs.

Modules: `schemas` (request, result and job shapes), `jobs` (what the /benchmarks routes call),
`builder` (graph to nn.Module), `memory` (fit estimate), `benchmark` (the measurement), `spec` (the
network a job measures), `store` (job records), `celery_app` (broker configuration), `tasks` (the
Celery task), `recovery` (leases and re-queue of jobs whose worker died), `embedded` (the worker
`cnnplan serve` starts). Only `builder`, `memory` and `benchmark` import torch.
"""
