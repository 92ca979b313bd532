"""The network a benchmark job measures, rebuilt from the job's stored JSON request.

A job stores its ``plan`` (a /plan body) or ``architecture`` (a /validate body) as plain JSON; both
the API (to reject bad input with a 4xx before queueing) and the worker (to build the module)
turn it into layers through the same request models and converters as /plan and /validate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnnplan.service.convert import architecture_of, to_plan_request
from cnnplan.service.schemas import PlanRequestModel, ValidateRequestModel
from cnnplan.solver import Layer, make_plan


@dataclass(frozen=True)
class NetworkSpec:
    """Layers, image size (height, width) and input channels of the network to benchmark."""

    layers: tuple[Layer, ...]
    image_size: tuple[int, int] | int
    in_channels: int
    field: str


def network_spec(request: Mapping[str, Any]) -> NetworkSpec:
    """From a job request holding exactly one of ``plan`` or ``architecture`` (checked by the API model)."""
    if request.get("plan") is not None:
        plan = make_plan(to_plan_request(PlanRequestModel.model_validate(request["plan"])))
        return NetworkSpec(plan.layers, plan.image_size, plan.request.in_channels, "plan")
    body = ValidateRequestModel.model_validate(request["architecture"])
    layers, image_size, field = architecture_of(body)
    return NetworkSpec(tuple(layers), image_size, body.in_channels, f"architecture.{field}")


__all__ = ["NetworkSpec", "network_spec"]
