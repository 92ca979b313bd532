"""Transport floors of POST /plan for ``load_bench.py --app``: what the route would cost if planning were free.

Each function is a uvicorn app factory (``uvicorn --factory``), so only the floor being served
touches the route:

* `median_answer_app` (``--app floor``): service.app's own app (middleware, metrics, body parsing
  and validation, orjson, the socket), except that POST /plan answers one fixed plan, the answer of
  median JSON size among 300 bodies of the load mix, without calling the solver;
* `tiny_answer_app` (``--app floor-tiny``): the same, answering 13 bytes instead of a plan (how much
  of the floor is the answer's size);
* `bare_asgi_app` (``--app bare``): no FastAPI at all, an ASGI callable that reads a POST body and
  answers every request like /healthz (what uvicorn alone charges a POST with a body).
"""

from __future__ import annotations

import random
from typing import Any

import orjson
from load_bench import plan_body as mix_body

import cnnplan.service.api.routes.plan as plan_routes
from cnnplan.service.api._responses import render_json
from cnnplan.service.api.app import create_app
from cnnplan.service.convert import plan_body
from cnnplan.service.schemas import PlanRequestModel
from cnnplan.service.settings import Settings


def median_answer(count: int = 300, seed: int = 7) -> dict[str, Any]:
    """The plan answer of median JSON size among `count` random bodies of the load mix."""
    rng = random.Random(seed)
    answers = [plan_body(PlanRequestModel.model_validate(mix_body(rng))) for _ in range(count)]
    return sorted(answers, key=lambda answer: len(orjson.dumps(answer)))[count // 2]


def _service_answering(answer: dict[str, Any]) -> Any:
    """cnnplan.service.api.app's app whose POST /plan still parses and validates every body, then answers `answer`
    (rendered each time: the answer cache is off, as for the cold phase it is the floor of)."""
    plan_routes.plan_body = lambda body: answer
    plan_routes.plan_body_json = lambda body: render_json(answer)  # rendered per request, as the service renders
    return create_app(Settings(embedded_worker=False, answer_cache_entries=0))


def median_answer_app() -> Any:
    """``--app floor``: the service, answering the mix's median plan without planning."""
    return _service_answering(median_answer())


def tiny_answer_app() -> Any:
    """``--app floor-tiny``: the service, answering ``{"depth": 1}`` without planning."""
    return _service_answering({"depth": 1})


HEALTHZ_BODY = b'{"status":"ok"}'


def bare_asgi_app() -> Any:
    """``--app bare``: an ASGI callable that reads any request body and answers 200 with healthz's body."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more_body = scope["method"] == "POST"
        while more_body:
            message = await receive()
            more_body = message.get("more_body", False) and message["type"] == "http.request"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": HEALTHZ_BODY})

    return app
