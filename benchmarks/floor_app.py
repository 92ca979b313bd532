"""The transport floor of POST /plan: service.app's own app, except that the route answers one fixed plan.

Middleware, metrics, body parsing and validation, orjson and the socket are exactly those of
``service.app:app``; only the solver's work per request is gone (every request gets the answer of
median size among 300 bodies of the load mix, computed once at import). ``load_bench.py --app
floor`` measures it side by side with GET /healthz: the most any implementation of POST /plan
could reach on this stack and machine.
"""

from __future__ import annotations

import random

import orjson
from load_bench import plan_body as mix_body

import service.routers.plan as plan_routes
from service.app import create_app
from service.convert import plan_body
from service.schemas import PlanRequestModel
from service.settings import Settings


def median_answer(count: int = 300, seed: int = 7) -> dict:
    """The plan answer of median JSON size among `count` random bodies of the load mix."""
    rng = random.Random(seed)
    answers = [plan_body(PlanRequestModel.model_validate(mix_body(rng))) for _ in range(count)]
    return sorted(answers, key=lambda answer: len(orjson.dumps(answer)))[count // 2]


MEDIAN_ANSWER = median_answer()
plan_routes.plan_body = lambda body: MEDIAN_ANSWER  # the route still parses and validates every body
app = create_app(Settings(embedded_worker=False))
