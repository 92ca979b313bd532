"""Request and response bodies of the REST API (pydantic v2). Importing this module has no side effects.

Conventions: a c-value is given twice, ``c_value`` (a JSON number rounded to 6 decimals) and
``c_value_exact`` (the exact fraction as a ``"p/q"`` string); compare the exact one. Sizes are
``[height, width]``. A layer's ``stride`` defaults to 1 for convolutions and to ``kernel_size`` for
pools, as in PyTorch. Every field carries the limits of `cnnplan.solver.limits`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from cnnplan.solver.analysis import normalize_image_size
from cnnplan.solver.errors import SolverError
from cnnplan.solver.limits import (
    MAX_CHANNELS,
    MAX_DILATION,
    MAX_FAN_IN,
    MAX_IMAGE_SIDE,
    MAX_KERNEL_SIZE,
    MAX_LAYERS,
    MAX_NAME_LENGTH,
    MAX_PADDING,
    MAX_STRIDE,
)
from cnnplan.solver.rational import parse_min_c_value

MAX_BATCH = 1000
"""Most requests in one batch body."""

DEFAULT_MIN_C_VALUE = "1/6"


def _solver_check(parse):
    """Wrap a solver parser as a pydantic validator; the solver's field path travels in the error's ctx."""

    def check(value: Any) -> Any:
        try:
            return parse(value)
        except SolverError as error:
            raise PydanticCustomError("solver", "{reason}", {"reason": error.reason, "field": error.field}) from None

    return check


_SIDE_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_IMAGE_SIDE}

ImageSize = Annotated[
    int | tuple[int, int],
    PlainValidator(_solver_check(normalize_image_size)),
    WithJsonSchema(
        {
            "anyOf": [_SIDE_SCHEMA, {"type": "array", "items": _SIDE_SCHEMA, "minItems": 2, "maxItems": 2}],
            "description": f"Square side, or [height, width]; each side 1..{MAX_IMAGE_SIDE} (2^20) pixels.",
            "examples": [224, [224, 160]],
        }
    ),
]
"""An image side or [height, width]; validated into a (height, width) tuple."""

MinCValue = Annotated[
    float | str,
    PlainValidator(_solver_check(parse_min_c_value)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                {"type": "string", "maxLength": 64, "examples": ["1/6"]},
                {"type": "null"},
            ],
            "description": "Minimum c-value t in (0, 1]: a number or an exact 'p/q' string (denominator <= 10^6); "
            "null means the default 1/6.",
            "default": DEFAULT_MIN_C_VALUE,
        }
    ),
]
"""The minimum c-value t; validated into an exact Fraction."""

Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
LayerType = Literal[
    "conv", "maxpool", "avgpool", "global_maxpool", "global_avgpool", "linear", "add", "concat", "relu", "bn", "dropout",
    "select",
]  # fmt: skip
Level = Literal["feature", "classifier"]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
Padding = Annotated[int, Field(ge=0, le=MAX_PADDING)] | Literal["same", "valid"]


class _Request(BaseModel):
    """Strict request bodies: unknown fields and type coercions (\"3\" for 3) are rejected."""

    model_config = ConfigDict(extra="forbid", strict=True)


class WidthRuleModel(_Request):
    """Filters of stage i = min(base * multiplier^(i-1), max_width)."""

    base: int = Field(64, ge=1, le=MAX_CHANNELS)
    multiplier: int = Field(2, ge=1, le=16)
    max_width: int = Field(512, ge=1, le=MAX_CHANNELS)


class PlanRequestModel(_Request):
    """POST /plan: the deepest network for an image size under both constraints (THEORY.md sections 4-7)."""

    image_size: ImageSize
    kernel_size: int = Field(3, ge=3, le=31, description="Odd kernel size of the planned convolutions, 3..31.")
    min_c_value: MinCValue = Fraction(1, 6)
    model: Literal["exact", "simplified"] = "exact"
    downsample: Literal["maxpool", "avgpool", "conv"] = "maxpool"
    in_channels: Channels = 3
    num_classes: Channels = 1000
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout probability of the classifier level.")
    widths: WidthRuleModel = Field(default_factory=WidthRuleModel)
    batch_norm: bool = True
    rf_side: Literal["min", "max"] = Field("min", description="Image side the top receptive field is compared with.")


class LayerModel(_Request):
    """One layer of a sequential architecture."""

    type: LayerType
    kernel_size: int = Field(1, ge=1, le=MAX_KERNEL_SIZE)
    stride: int | None = Field(
        None, ge=1, le=MAX_STRIDE, description="Default: 1 for convolutions, kernel_size for pools (PyTorch's rule)."
    )
    dilation: int = Field(1, ge=1, le=MAX_DILATION)
    padding: Padding = Field(0, description="Pixels on each side, 'same' (left pad (ke-1)//2) or 'valid' (0).")
    groups: int = Field(1, ge=1, le=MAX_CHANNELS)
    out_channels: Channels | None = None
    name: Name | None = None
    level: Level = "feature"
    bias: bool = True
    rate: float | None = Field(None, ge=0, lt=1, description="Dropout probability (dropout layers only).")


class GraphNodeModel(LayerModel):
    """A graph node: a layer with a name and the names of its inputs (``input`` is the image)."""

    name: Name
    inputs: list[Name] | None = Field(
        None, min_length=1, max_length=MAX_FAN_IN, description="Default: the previous node (or the image)."
    )


class GraphModel(_Request):
    """An architecture as a graph of named nodes (residual adds, concats)."""

    nodes: list[GraphNodeModel] = Field(min_length=1, max_length=MAX_LAYERS)


class ValidateRequestModel(_Request):
    """POST /validate: check an architecture against both constraints; give exactly one of layers, graph, preset."""

    image_size: ImageSize | None = Field(None, description="Required except with a preset (default: its own size).")
    min_c_value: MinCValue = Fraction(1, 6)
    layers: list[LayerModel] | None = Field(None, min_length=1, max_length=MAX_LAYERS)
    graph: GraphModel | None = None
    preset: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(None, description="See GET /presets.")
    in_channels: Channels = 3
    include_pointwise: bool = Field(False, description="Also constrain 1x1 convolutions.")
    rf_side: Literal["min", "max"] = "min"


class LayerResult(BaseModel):
    """Exact statistics of one layer (receptive field, jump and effective padding are after the layer)."""

    name: str
    type: str
    level: Level
    inputs: list[str]
    kernel_size: int
    stride: int
    dilation: int
    padding: tuple[int, int] = Field(description="Resolved [left, right] padding.")
    groups: int
    in_channels: int
    out_channels: int
    output_size: tuple[int, int]
    receptive_field: int
    jump: int
    effective_padding: int
    real_filter_size: int | None = Field(description="ke * jump before the layer (convolutions only).")
    c_value: float | None = Field(description="real_filter_size / receptive_field to 6 decimals (convolutions only).")
    c_value_exact: str | None = Field(description="The exact c-value as 'p/q'.")
    params: int
    flops: int


class RelaxedResult(BaseModel):
    """The simplified model's continuous optimum (THEORY.md section 5)."""

    stages: list[float]
    stages_exact: list[str]
    depth: float
    depth_exact: str


class PlanInputs(BaseModel):
    """The inputs a plan used, defaults filled in."""

    image_size: tuple[int, int]
    kernel_size: int
    min_c_value: float
    min_c_value_exact: str
    model: str
    downsample: str
    in_channels: int
    num_classes: int
    dropout: float
    widths: WidthRuleModel
    batch_norm: bool
    rf_side: str


class PlanResponse(BaseModel):
    """The deepest valid network: stage lengths, the full layer list, its counts and the relaxed optimum."""

    depth: int
    stages: list[int]
    top_receptive_field: int
    depth_headroom: int
    relaxed: RelaxedResult
    params: int
    flops: int = Field(description="2 FLOPs per multiply-add of convolutions and linear layers, per image.")
    inputs: PlanInputs
    layers: list[LayerResult]


class ViolationResult(BaseModel):
    """One broken constraint."""

    constraint: Literal["c_value", "receptive_field"]
    layer: str
    value: float
    value_exact: str
    limit: float
    limit_exact: str
    message: str


class ValidateResponse(BaseModel):
    """The verdict: valid, the violations with fixes in words, per-layer statistics, depth and headroom."""

    valid: bool
    violations: list[ViolationResult]
    top_layer: str | None
    top_receptive_field: int | None
    receptive_field_limit: int
    depth: int
    depth_headroom: int
    min_c_value: float
    min_c_value_exact: str
    image_size: tuple[int, int]
    params: int
    flops: int
    layers: list[LayerResult]


class FieldProblem(BaseModel):
    """One bad field and why."""

    field: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details (media type application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str | None = Field(None, description="Machine-readable kind, e.g. limit_exceeded, invalid_layer.")
    field: str | None = Field(None, description="Location of the bad input, e.g. layers[3].kernel_size.")
    reason: str | None = None
    errors: list[FieldProblem] | None = Field(None, description="Every bad field, when there are several.")


def _batch_items(schema: str) -> dict[str, Any]:
    """Items are meant to be `schema` bodies, but any JSON value is accepted: a bad item gets its own problem."""
    return {"items": {"anyOf": [{"$ref": f"#/components/schemas/{schema}"}, {}]}}


class PlanBatchRequest(BaseModel):
    """Up to 1000 /plan bodies, each checked on its own so that one bad item does not sink the batch."""

    model_config = ConfigDict(extra="forbid")

    requests: list[Any] = Field(min_length=1, max_length=MAX_BATCH, json_schema_extra=_batch_items("PlanRequestModel"))


class ValidateBatchRequest(BaseModel):
    """Up to 1000 /validate bodies, each checked on its own."""

    model_config = ConfigDict(extra="forbid")

    requests: list[Any] = Field(
        min_length=1, max_length=MAX_BATCH, json_schema_extra=_batch_items("ValidateRequestModel")
    )


class PlanBatchItem(BaseModel):
    """Either `result` or `problem` is set."""

    index: int
    ok: bool
    result: PlanResponse | None = None
    problem: Problem | None = None


class ValidateBatchItem(BaseModel):
    """Either `result` or `problem` is set."""

    index: int
    ok: bool
    result: ValidateResponse | None = None
    problem: Problem | None = None


class PlanBatchResponse(BaseModel):
    """One item per request, in order."""

    results: list[PlanBatchItem]


class ValidateBatchResponse(BaseModel):
    """One item per request, in order."""

    results: list[ValidateBatchItem]


class PresetSummary(BaseModel):
    """A well-known architecture."""

    name: str
    title: str
    default_image_size: int
    description: str
    source: str


class PresetList(BaseModel):
    presets: list[PresetSummary]


class PresetDetail(PresetSummary):
    """A preset with its layers as a graph (feed them to POST /validate as `graph.nodes`)."""

    nodes: list[dict[str, Any]]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """``ready`` is false when a required component is down; each component reports ok and a detail."""

    ready: bool
    components: dict[str, dict[str, Any]]
