"""/presets: the well-known architectures that POST /validate accepts by name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from cnnplan.service.api.answer_cache import json_answer
from cnnplan.service.convert import node_dict
from cnnplan.service.problems import ProblemError, problem_responses
from cnnplan.service.schemas import PresetDetail, PresetList
from cnnplan.solver.errors import UnknownPresetError
from cnnplan.solver.layers import as_graph
from cnnplan.solver.presets import preset, preset_info, preset_names

router = APIRouter(tags=["presets"])


@router.get("/presets", response_model=PresetList, responses=problem_responses(401), summary="List the presets")
def list_presets(request: Request) -> Response:
    """Name, title, default image size, description and source of every preset; with a strong ETag and
    Cache-Control (If-None-Match naming it: 304)."""
    return json_answer(request, ("presets",), _preset_list, http_caching=True)


def _preset_list() -> dict[str, Any]:
    return {"presets": [preset_info(name) for name in preset_names()]}


@router.get(
    "/presets/{name}",
    response_model=PresetDetail,
    responses=problem_responses(401, 404, 422),
    summary="One preset's graph",
)
def get_preset(request: Request, name: str = Path(max_length=64)) -> Response:
    """The preset's description and its nodes, with a strong ETag and Cache-Control (If-None-Match naming it:
    304). An unknown name is a 404 naming ``name`` (the resource does not exist); in a POST /validate body it
    is a 422 naming ``preset`` (a bad field of a valid request)."""
    return json_answer(request, ("preset", name), lambda: _preset_detail(name), http_caching=True)


def _preset_detail(name: str) -> dict[str, Any]:
    try:
        return {**preset_info(name), "nodes": [node_dict(layer) for layer in as_graph(preset(name))]}
    except UnknownPresetError as error:
        raise ProblemError(
            404, "Not found", f"name: {error.reason}", field="name", reason=error.reason, code=error.code
        ) from None
