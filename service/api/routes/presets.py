"""/presets: the well-known architectures that POST /validate accepts by name."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Path

from cnnplan.service.problems import ProblemError, problem_responses
from cnnplan.service.schemas import PresetDetail, PresetList
from cnnplan.solver.errors import UnknownPresetError
from cnnplan.solver.layers import Layer, as_graph
from cnnplan.solver.presets import preset, preset_info, preset_names

router = APIRouter(tags=["presets"])

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Layer)}


def node_dict(layer: Layer) -> dict[str, Any]:
    """A preset node in the request format of POST /validate (`graph.nodes`), defaults left out."""
    node: dict[str, Any] = {"name": layer.name, "type": layer.kind}
    fields = (
        "kernel_size",
        "stride",
        "dilation",
        "padding",
        "ceil_mode",
        "groups",
        "out_channels",
        "level",
        "bias",
        "rate",
    )
    for field in fields:
        value = getattr(layer, field)
        if value != _DEFAULTS[field]:
            node[field] = value
    node["inputs"] = list(layer.inputs or ())
    return node


@router.get("/presets", response_model=PresetList, responses=problem_responses(401), summary="List the presets")
def list_presets() -> dict[str, Any]:
    """Name, title, default image size, description and source of every preset."""
    return {"presets": [preset_info(name) for name in preset_names()]}


@router.get(
    "/presets/{name}",
    response_model=PresetDetail,
    responses=problem_responses(401, 404, 422),
    summary="One preset's graph",
)
def get_preset(name: str = Path(max_length=64)) -> dict[str, Any]:
    """The preset's description and its nodes. An unknown name is a 404 naming ``name`` (the resource does
    not exist); in a POST /validate body it is a 422 naming ``preset`` (a bad field of a valid request)."""
    try:
        return {**preset_info(name), "nodes": [node_dict(layer) for layer in as_graph(preset(name))]}
    except UnknownPresetError as error:
        raise ProblemError(
            404, "Not found", f"name: {error.reason}", field="name", reason=error.reason, code=error.code
        ) from None
