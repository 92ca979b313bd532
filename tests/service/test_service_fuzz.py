"""No input produces a 5xx: arbitrary JSON and near-valid bodies get a 2xx answer or a 4xx problem."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnplan.service.api.app import create_app
from cnnplan.service.settings import Settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
sides = st.one_of(st.integers(-3, 2**21), st.lists(st.integers(-3, 2**21), min_size=0, max_size=3), json_values)
plan_bodies = st.fixed_dictionaries(
    {"image_size": sides},
    optional={
        "kernel_size": st.integers(-2, 40) | json_values,
        "min_c_value": st.sampled_from(["1/6", "1/64", "1/65", "0", "1", "2/3", "1e-9", "nan", "inf", "1/0"])
        | st.floats(allow_nan=True)
        | json_values,
        "model": st.sampled_from(["exact", "simplified", "x"]),
        "downsample": st.sampled_from(["maxpool", "avgpool", "conv", ""]),
        "in_channels": st.integers(-1, 2_000_000),
        "num_classes": st.integers(-1, 2_000_000),
        "dropout": st.floats(-1, 2) | json_values,
        "widths": st.fixed_dictionaries(
            {},
            optional={
                "base": st.integers(-1, 2**20),
                "multiplier": st.integers(-1, 40),
                "max_width": st.integers(-1, 2**21),
            },
        ),
        "rf_side": st.sampled_from(["min", "max", "mid"]),
    },
)
layers = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "conv",
                    "maxpool",
                    "avgpool",
                    "global_maxpool",
                    "linear",
                    "add",
                    "concat",
                    "relu",
                    "bn",
                    "dropout",
                    "x",
                ]
            )
        },
        optional={
            "kernel_size": st.integers(-1, 1100),
            "stride": st.integers(-1, 1100) | st.none(),
            "dilation": st.integers(0, 1100),
            "padding": st.integers(-1, 1100) | st.sampled_from(["same", "valid", "full"]),
            "groups": st.integers(0, 9),
            "out_channels": st.integers(0, 64),
            "name": st.text(max_size=5),
            "inputs": st.lists(st.text(max_size=5), max_size=3),
            "level": st.sampled_from(["feature", "classifier", "x"]),
            "rate": st.floats(-1, 2),
        },
    ),
    max_size=8,
)
validate_bodies = st.fixed_dictionaries(
    {"image_size": sides},
    optional={
        "layers": layers,
        "graph": st.fixed_dictionaries({"nodes": layers}),
        "preset": st.sampled_from(["vgg16", "resnet18", "nope"]),
        "min_c_value": json_values,
    },
)

APP = create_app(Settings(embedded_worker=False))


def post(path: str, body) -> httpx.Response:
    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://t") as client:
            # json.dumps lets NaN and Infinity through (as Python's json.loads on the server accepts them)
            content = json.dumps(body).encode()
            return await client.post(path, content=content, headers={"content-type": "application/json"})

    return asyncio.run(send())


def assert_client_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]


FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(body=json_values)
@pytest.mark.parametrize("path", ["/plan", "/validate", "/plan/batch", "/validate/batch"])
def test_arbitrary_json_never_gets_a_5xx(path, body):
    assert_client_answer(post(path, body))


@FUZZ
@given(body=plan_bodies)
def test_near_valid_plan_bodies_never_get_a_5xx(body):
    assert_client_answer(post("/plan", body))


@FUZZ
@given(body=validate_bodies)
def test_near_valid_validate_bodies_never_get_a_5xx(body):
    assert_client_answer(post("/validate", body))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(bodies=st.lists(plan_bodies | json_values, min_size=1, max_size=5))
def test_batch_items_never_get_a_5xx(bodies):
    response = post("/plan/batch", {"requests": bodies})
    assert_client_answer(response)
    assert len(response.json()["results"]) == len(bodies)
