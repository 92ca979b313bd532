"""The optional benchmark worker: builds planned networks in PyTorch and measures them as durable Celery jobs.

Modules: `builder` (graph to nn.Module), `memory` (fit estimate), `benchmark` (the measurement),
`store` (job records), `celery_app` (broker configuration), `tasks` (the Celery task),
`recovery` (leases and re-queue of jobs whose worker died), `embedded` (the worker `cnnplan serve`
starts). Only `builder`, `memory` and `benchmark` import torch.
"""
