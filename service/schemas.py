"""Request and response bodies of the REST API (pydantic v2). Importing this module has no side effects.

Conventions: a c-value is given twice, ``c_value`` (a JSON number rounded to 6 decimals) and
``c_value_exact`` (the exact fraction as a ``"p/q"`` string); compare the exact one. Sizes and every
per-axis quantity of an answer (kernel, stride, dilation, receptive field, jump, effective padding,
real filter size, c-value) are ``[height, width]`` pairs; a resolved padding is
``[[top, bottom], [left, right]]`` (docs/geometry.md). An answer's layer is accepted unchanged as a
request layer: the fields it computes are recognised and ignored. A layer's ``stride`` defaults to 1 for convolutions and to ``kernel_size`` for
pools, as in PyTorch. Every field carries the limits of `cnnplan.solver.limits`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from cnnplan.solver.analysis import normalize_image_size
from cnnplan.solver.errors import InvalidLayerError, SolverError
from cnnplan.solver.limits import (
    MAX_BUDGET,
    MAX_CHANNELS,
    MAX_DILATION,
    MAX_EXPANSION,
    MAX_FAN_IN,
    MAX_IMAGE_SIDE,
    MAX_KERNEL_SIZE,
    MAX_LAYERS,
    MAX_NAME_LENGTH,
    MAX_PADDING,
    MAX_STRIDE,
    PLAN_KERNEL_SIZES,
    PLAN_MIN_C_VALUE_FLOOR,
)
from cnnplan.solver.presets import preset_names
from cnnplan.solver.rational import DEFAULT_MIN_C_VALUE, format_fraction, parse_min_c_value

MAX_BATCH = 1000
"""Most requests in one batch body."""

DEFAULT_MIN_C_VALUE_TEXT = format_fraction(DEFAULT_MIN_C_VALUE)
"""The default t as text, ``"1/6"`` (query strings, form fields, CLI options, the OpenAPI defaults)."""


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

IMAGE_SIZE_TEXT_MAX_LENGTH = 40
"""Longest image size written as text (``224x160``, padded) that is read at all."""
IMAGE_SIZE_TEXT_PATTERN = r"^ *([0-9]+) *(?:[xX] *([0-9]+) *)?$"
"""What `parse_image_size_text` reads, as a JSON Schema ``pattern`` (the OpenAPI document carries it). ASCII
only (spaces, digits, x), so that Python's, pydantic's and ECMA's regex engines read it alike."""
_IMAGE_SIZE_TEXT = re.compile(IMAGE_SIZE_TEXT_PATTERN)


def parse_image_size_text(text: str, field: str = "image_size") -> int | tuple[int, int]:
    """``"224"`` -> 224, ``"224x160"`` -> (224, 160): the one reading of an image size written as text
    (GET /plan's query, the ONNX upload's form field, the CLI's SIZE arguments), with the one limit of
    `normalize_image_size` (each side 1..2^20 pixels).

    Raises `InvalidLayerError` naming `field` when the text is not a side or HEIGHTxWIDTH (or is longer
    than `IMAGE_SIZE_TEXT_MAX_LENGTH`), and the errors of `normalize_image_size` (``field`` or
    ``field[axis]``) when a side is out of range."""
    match = _IMAGE_SIZE_TEXT.fullmatch(text) if len(text) <= IMAGE_SIZE_TEXT_MAX_LENGTH else None
    if match is None:
        raise InvalidLayerError(field, f"must be a side like 224 or HEIGHTxWIDTH like 224x160, got {text[:40]!r}")
    height, width = match.groups()
    size: int | tuple[int, int] = int(height) if width is None else (int(height), int(width))
    normalize_image_size(size, field)
    return size


MIN_C_VALUE_TEXT_PATTERN = r"^ *[0-9]+(?:\.[0-9]+|/[0-9]+)? *$"
"""How t is written as text: a decimal (``0.25``) or a fraction (``1/6``); the server refuses any other text."""
_MIN_C_VALUE_TEXT = re.compile(MIN_C_VALUE_TEXT_PATTERN)


def parse_min_c_value_text(value: object) -> Fraction:
    """`parse_min_c_value` for API values: a JSON number, null, or text matching `MIN_C_VALUE_TEXT_PATTERN`
    (the OpenAPI document states that pattern; the solver itself also reads other spellings such as 1e-3).
    Raises `SolverError` naming ``min_c_value``."""
    if isinstance(value, str) and len(value) <= 64 and _MIN_C_VALUE_TEXT.fullmatch(value) is None:
        raise InvalidLayerError(
            "min_c_value", f"must be a decimal like 0.25 or a 'p/q' fraction like 1/6, got {value[:40]!r}"
        )
    return parse_min_c_value(value)


def _min_c_value_schema(floor: Fraction, who: str) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "number", **({"minimum": float(floor)} if floor else {"exclusiveMinimum": 0}), "maximum": 1},
            {
                "type": "string",
                "maxLength": 64,
                "pattern": MIN_C_VALUE_TEXT_PATTERN,
                "examples": [DEFAULT_MIN_C_VALUE_TEXT],
            },
            {"type": "null"},
        ],
        "description": f"Minimum c-value t in {f'[{format_fraction(floor)}' if floor else '(0'}, 1]"
        f"{' (' + who + ')' if who else ''}: a number or an exact 'p/q' string (denominator <= 10^6); "
        f"null means the default {DEFAULT_MIN_C_VALUE_TEXT}. The value range of the string form and the "
        "denominator bound are checked by the server (422), as JSON Schema cannot compare fractions.",
        "default": DEFAULT_MIN_C_VALUE_TEXT,
    }


MinCValue = Annotated[
    Fraction,
    PlainValidator(_solver_check(parse_min_c_value_text)),
    WithJsonSchema(_min_c_value_schema(Fraction(0), "")),
]
"""The minimum c-value t; validated into an exact Fraction."""

PlanMinCValue = Annotated[
    Fraction,
    PlainValidator(_solver_check(parse_min_c_value_text)),
    WithJsonSchema(
        _min_c_value_schema(Fraction(PLAN_MIN_C_VALUE_FLOOR), f"the planner takes t >= {PLAN_MIN_C_VALUE_FLOOR}")
    ),
]
"""t for the planner: as `MinCValue`, and at least `PLAN_MIN_C_VALUE_FLOOR` (checked by the solver)."""

Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
LayerType = Literal[
    "conv", "maxpool", "avgpool", "global_maxpool", "global_avgpool", "linear", "add", "concat", "relu", "bn", "dropout",
    "select", "upsample", "conv_transpose", "attention",
]  # fmt: skip
"""The last three are recognised and refused with a 422 naming the layer: the theory covers downsampling CNNs."""
Level = Literal["feature", "classifier"]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]


# per-axis fields: an int in [1, MAX_...], or [height, width] of them (spelled out: mypy takes no computed alias)
_Kernel = Annotated[int, Field(ge=1, le=MAX_KERNEL_SIZE)]
_Stride = Annotated[int, Field(ge=1, le=MAX_STRIDE)]
_Dilation = Annotated[int, Field(ge=1, le=MAX_DILATION)]
KernelSize = _Kernel | Annotated[list[_Kernel], Field(min_length=2, max_length=2)]
Stride = _Stride | Annotated[list[_Stride], Field(min_length=2, max_length=2)]
Dilation = _Dilation | Annotated[list[_Dilation], Field(min_length=2, max_length=2)]
_Side = Annotated[int, Field(ge=0, le=MAX_PADDING)]
Padding = (
    _Side
    | Literal["same", "valid", "same_upper", "same_lower"]
    | Annotated[
        list[_Side | Annotated[list[_Side], Field(min_length=2, max_length=2)]], Field(min_length=2, max_length=2)
    ]
)
_COMPUTED = "Computed by answers; recognised and ignored on input (an answer's layer posts back unchanged)."


class StrictRequest(BaseModel):
    """Strict request bodies: unknown fields and type coercions (\"3\" for 3) are rejected."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _integral_numbers(cls, data: Any) -> Any:
        """224.0 for 224 in the integer fields: JSON Schema (and so the OpenAPI document) counts a number with
        no fractional part as an integer, which strict mode alone would refuse. Nothing else is coerced."""
        if not isinstance(data, dict):
            return data
        names = _integer_fields(cls)
        return {key: _integral(value) if key in names else value for key, value in data.items()}


_Request = StrictRequest


@cache
def _integer_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields of `model` that take integers (or lists of them) and never a float."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if "int" in (text := repr(info.annotation)) and "float" not in text and "Fraction" not in text
    )


def _integral(value: Any) -> Any:
    """A float with no fractional part as an int (also inside lists, nested ones too: per-axis padding);
    anything else unchanged."""
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is list:
        return [_integral(item) for item in value]
    return value


def _given(name: str) -> dict[str, Any]:
    """JSON Schema: property `name` is present and not null."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def exactly_one_of_schema(names: tuple[str, ...]) -> dict[str, Any]:
    """JSON Schema: exactly one of the properties `names` is given (present and not null)."""
    return {"oneOf": [_given(name) for name in names]}


def check_exactly_one_of(model: BaseModel, names: tuple[str, ...]) -> None:
    """The server side of `exactly_one_of_schema`: a 422 naming the first of `names` unless exactly one is
    given. For a pydantic ``model_validator`` (the error's ``field`` is relative to the model)."""
    given = [name for name in names if getattr(model, name) is not None]
    if len(given) != 1:
        listed = ", ".join(names[:-1]) + " or " + names[-1]
        reason = f"give exactly one of {listed}" + (f" (got {', '.join(given)})" if given else "")
        raise PydanticCustomError("rule", "{reason}", {"reason": reason, "field": names[0]})


class WidthRuleModel(_Request):
    """Filters of stage i = min(base * multiplier^(i-1), max_width)."""

    base: int = Field(64, ge=1, le=MAX_CHANNELS)
    multiplier: int = Field(2, ge=1, le=16)
    max_width: int = Field(
        512,
        ge=1,
        le=MAX_CHANNELS,
        description="At least base; a smaller one is a 422 (JSON Schema cannot compare two fields).",
    )


class PlanRequestModel(_Request):
    """POST /plan: the deepest network for an image size under both constraints (docs/theory.md, sections 4-7)."""

    image_size: ImageSize
    kernel_size: int = Field(
        3,
        ge=3,
        le=31,
        description="Odd kernel size of the planned convolutions, 3..31.",
        json_schema_extra={"enum": list(PLAN_KERNEL_SIZES)},
    )
    min_c_value: PlanMinCValue = DEFAULT_MIN_C_VALUE
    model: Literal["exact", "simplified"] = "exact"
    downsample: Literal["maxpool", "avgpool", "conv"] = "maxpool"
    in_channels: Channels = 3
    num_classes: Channels = 1000
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout probability of the classifier level.")
    widths: WidthRuleModel = Field(default_factory=WidthRuleModel)
    batch_norm: bool = True
    rf_side: Literal["min", "max"] = Field("min", description="Image side the top receptive field is compared with.")
    block: Literal["plain", "basic", "bottleneck", "inverted_residual"] = Field(
        "plain",
        description="Block style: plain k x k convs; basic (two k x k convs + shortcut); bottleneck (1x1, k x k, "
        "1x1 expand + shortcut); inverted_residual (1x1 expand, k x k depthwise, 1x1 project, shortcut where "
        "shapes match). Stage lengths count the k x k convolutions (basic: in pairs).",
    )
    stem: Literal["none", "conv", "conv_pool"] = Field(
        "none",
        description="Before stage 1: nothing, a k x k stride-2 conv, or that conv and a 2x2 stride-2 max pool; "
        "part of the exact arithmetic (exact model only).",
    )
    expansion: Annotated[int, Field(ge=1, le=MAX_EXPANSION)] | None = Field(
        None,
        description="Expansion factor of bottleneck (default 4) or inverted_residual (default 6) blocks.",
    )
    max_flops: Annotated[int, Field(ge=1, le=MAX_BUDGET)] | None = Field(
        None,
        description="FLOPs budget: the widest width rule (base 1..widths.base) that fits is used.",
    )
    max_params: Annotated[int, Field(ge=1, le=MAX_BUDGET)] | None = Field(
        None,
        description="Parameter budget: the widest width rule (base 1..widths.base) that fits is used.",
    )


class LayerModel(_Request):
    """One layer of a sequential architecture (or graph node). Per-axis fields take an int or [h, w]."""

    type: LayerType
    kernel_size: KernelSize = Field(1, description="An int or [height, width] (e.g. [1, 7]).")
    stride: Stride | None = Field(
        None, description="An int or [h, w]. Default: 1 for convolutions, kernel_size for pools (PyTorch's rule)."
    )
    dilation: Dilation = 1
    padding: Padding = Field(
        0,
        description="Pixels on every side, 'same' (left pad (ke-1)//2 per axis), 'valid' (0), 'same_upper' or "
        "'same_lower' (TensorFlow's SAME / ONNX auto_pad, from the input size), [h, w] (symmetric per axis) or "
        "[[top, bottom], [left, right]].",
    )
    ceil_mode: bool = Field(False, description="Pools only: round the output size up (PyTorch's rule).")
    groups: int = Field(1, ge=1, le=MAX_CHANNELS)
    out_channels: Channels | None = None
    name: Name | None = None
    level: Level = "feature"
    bias: bool = True
    rate: float | None = Field(None, ge=0, lt=1, description="Dropout probability (dropout layers only).")
    inputs: list[Name] | None = Field(
        None, min_length=1, max_length=MAX_FAN_IN, description="Default: the previous node (or the image)."
    )
    in_channels: Any = Field(None, exclude=True, description=_COMPUTED)
    output_size: Any = Field(None, exclude=True, description=_COMPUTED)
    receptive_field: Any = Field(None, exclude=True, description=_COMPUTED)
    jump: Any = Field(None, exclude=True, description=_COMPUTED)
    effective_padding: Any = Field(None, exclude=True, description=_COMPUTED)
    real_filter_size: Any = Field(None, exclude=True, description=_COMPUTED)
    c_value: Any = Field(None, exclude=True, description=_COMPUTED)
    c_value_exact: Any = Field(None, exclude=True, description=_COMPUTED)
    c_axis: Any = Field(None, exclude=True, description=_COMPUTED)
    params: Any = Field(None, exclude=True, description=_COMPUTED)
    flops: Any = Field(None, exclude=True, description=_COMPUTED)


class GraphNodeModel(LayerModel):
    """A graph node: a layer with a name and the names of its inputs (``input`` is the image)."""

    name: Name


class GraphModel(_Request):
    """An architecture as a graph of named nodes (residual adds, concats)."""

    nodes: list[GraphNodeModel] = Field(min_length=1, max_length=MAX_LAYERS)


class ChainModel(_Request):
    """A plain chain in compact form (an AutoML candidate in a few bytes): stage l is ``stages[l-1]`` k x k
    'same' convolutions of ``width`` filters (each + BN when ``batch_norm``) + ReLU; a 2x2 stride-2 pool
    (maxpool, avgpool) between stages, or a stride-2 first convolution in each later stage (conv). The
    layers are the planner's feature level (names ``s1.conv1``, ...)."""

    stages: list[Annotated[int, Field(ge=1, le=MAX_LAYERS)]] = Field(min_length=1, max_length=64)
    kernel_size: int = Field(3, ge=1, le=MAX_KERNEL_SIZE)
    downsample: Literal["maxpool", "avgpool", "conv"] = "maxpool"
    width: Channels = 64
    batch_norm: bool = False


Pair = tuple[int, int]

ARCHITECTURE_FIELDS = ("layers", "graph", "chain", "preset")
"""A validate body gives exactly one of these."""


class ValidateRequestModel(_Request):
    """POST /validate: check an architecture against both constraints; give exactly one of layers, graph,
    chain, preset (and image_size unless it is a preset)."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [exactly_one_of_schema(ARCHITECTURE_FIELDS), {"anyOf": [_given("preset"), _given("image_size")]}]
        }
    )

    image_size: ImageSize | None = Field(None, description="Required except with a preset (default: its own size).")
    min_c_value: MinCValue = DEFAULT_MIN_C_VALUE
    layers: list[LayerModel] | None = Field(None, min_length=1, max_length=MAX_LAYERS)
    graph: GraphModel | None = None
    chain: ChainModel | None = Field(None, description="A plain chain in compact form (see ChainModel).")
    preset: Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={"enum": preset_names()})] | None = (
        Field(None, description="See GET /presets.")
    )
    in_channels: Channels = 3
    include_pointwise: bool = Field(False, description="Also constrain 1x1 convolutions.")
    rf_side: Literal["axis", "min", "max"] = Field(
        "axis",
        description="Constraint 2's limit: each axis against its own image side ('axis'), or both axes against "
        "the smaller ('min') or larger ('max') side.",
    )
    repair: bool = Field(
        False, description="Also answer the repaired architecture: every safe fix applied, re-validated."
    )

    @model_validator(mode="after")
    def _one_architecture(self) -> ValidateRequestModel:
        check_exactly_one_of(self, ARCHITECTURE_FIELDS)
        if self.image_size is None and self.preset is None:
            reason = "is required (except with a preset)"
            raise PydanticCustomError("rule", "{reason}", {"reason": reason, "field": "image_size"})
        return self


class LayerResult(BaseModel):
    """Exact statistics of one layer, per axis as [height, width] (receptive field, jump and effective padding
    are after the layer). The input fields come first and post back unchanged as a request layer."""

    name: str
    type: str
    level: Level
    inputs: list[str]
    kernel_size: Pair
    stride: Pair
    dilation: Pair
    padding: tuple[Pair, Pair] = Field(description="Resolved [[top, bottom], [left, right]] padding.")
    ceil_mode: bool
    groups: int
    out_channels: int
    bias: bool
    rate: float | None
    in_channels: int
    output_size: Pair
    receptive_field: Pair
    jump: Pair
    effective_padding: Pair
    real_filter_size: Pair | None = Field(description="ke * jump before the layer, per axis (convolutions only).")
    c_value: tuple[float, float] | None = Field(
        description="real_filter_size / receptive_field per axis, to 6 decimals (convolutions only)."
    )
    c_value_exact: tuple[str, str] | None = Field(description="The exact c-values as 'p/q'.")
    c_axis: Literal["height", "width", "both"] | None = Field(
        description="The axis constraint 1 compares (smallest c among axes with kernel > 1); null when exempt."
    )
    params: int
    flops: int


class RelaxedResult(BaseModel):
    """The simplified model's continuous optimum (docs/theory.md#simplified-model)."""

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
    widths: WidthRuleModel = Field(description="The width rule used (under a budget: the chosen one).")
    batch_norm: bool
    rf_side: str
    block: str
    stem: str
    expansion: int | None
    max_flops: int | None
    max_params: int | None


class StemResult(BaseModel):
    """What the stem did: the same request (same widths) without a stem has this depth and these counts."""

    depth_without_stem: int
    flops_without_stem: int
    params_without_stem: int


class BudgetResult(BaseModel):
    """The budget's choice: the requested rule, the widest rule that fits, and the next wider one with its
    counts (null when the requested rule itself fits)."""

    requested_widths: WidthRuleModel
    widths: WidthRuleModel
    next_wider: WidthRuleModel | None
    next_wider_flops: int | None
    next_wider_params: int | None


class PlanGraph(BaseModel):
    """The planned network as graph nodes in the request format of POST /validate (``graph.nodes``)."""

    nodes: list[dict[str, Any]]


class PlanResponse(BaseModel):
    """The deepest valid network: stage lengths, the full layer list, its counts and the relaxed optimum."""

    depth: int = Field(description="Spatial (k x k) feature-level convolutions, the stem's included.")
    stages: list[int] = Field(description="k x k convolutions per stage (the stem excluded).")
    top_receptive_field: Pair
    depth_headroom: int
    relaxed: RelaxedResult
    params: int
    flops: int = Field(description="2 FLOPs per multiply-add of convolutions and linear layers, per image.")
    inputs: PlanInputs
    stem: StemResult | None = Field(None, description="Set when a stem was asked for.")
    budget: BudgetResult | None = Field(None, description="Set when max_flops or max_params was given.")
    graph: PlanGraph | None = Field(
        description="A residual style's network as graph nodes (post them to /validate as `graph`); null for a "
        "plain chain, whose `layers` post back as `layers`."
    )
    layers: list[LayerResult]


class FixResult(BaseModel):
    """One edit (docs/geometry.md): ``remove_layers`` (the named nodes; ``convolutions`` counts the feature
    convolutions among them), ``insert_downsampling`` (``insert`` before ``before``) or ``change_layer``
    (``set`` on ``layer``)."""

    action: Literal["remove_layers", "insert_downsampling", "change_layer"]
    stage_end: str | None = None
    convolutions: int | None = None
    nodes: list[str] | None = None
    before: str | None = None
    insert: dict[str, Any] | None = None
    layer: str | None = None
    set: dict[str, Any] | None = None


class ViolationResult(BaseModel):
    """One broken constraint, on its binding axis, with its fix as an edit (null: no safe edit exists)."""

    constraint: Literal["c_value", "receptive_field"]
    layer: str
    axis: Literal["height", "width"]
    value: float
    value_exact: str
    limit: float
    limit_exact: str
    message: str
    fix: FixResult | None
    alternatives: list[FixResult]


class UnresolvedResult(BaseModel):
    """A violation a repair could not remove, and why."""

    constraint: Literal["c_value", "receptive_field"]
    layer: str
    reason: str


class RepairResult(BaseModel):
    """The repaired architecture in the input's format (``layers``, or ``graph`` for a graph or preset), the
    edits applied in order, what is left, and its validation."""

    valid: bool
    edits: list[FixResult]
    unresolved: list[UnresolvedResult]
    layers: list[dict[str, Any]] | None = None
    graph: dict[str, list[dict[str, Any]]] | None = None
    result: ValidateResponse


class ViolationSummary(BaseModel):
    """One broken constraint in a summary: its numbers, without the prose message of the full answer."""

    constraint: Literal["c_value", "receptive_field"]
    layer: str
    axis: Literal["height", "width"]
    value: float
    value_exact: str
    limit: float
    limit_exact: str


class ValidateSummary(BaseModel):
    """``view=summary`` of /validate: the verdict without the per-layer list (the same values as the full
    answer; violations without their prose message)."""

    valid: bool
    violations: list[ViolationSummary]
    top_layer: str | None
    top_receptive_field: Pair | None
    top_axis: Literal["height", "width"] | None = Field(description="The axis that binds constraint 2.")
    receptive_field_limit: Pair
    rf_side: Literal["axis", "min", "max"]
    depth: int
    depth_headroom: int
    min_c_value: float
    min_c_value_exact: str
    image_size: tuple[int, int]
    params: int
    flops: int
    notes: list[str] | None = Field(
        None,
        description="Present for a zoo preset whose params (the module's count, sum of p.numel()) holds parameters "
        "of modules its forward pass does not call, which the layers do not list (GoogLeNet's auxiliary heads).",
    )


class ValidateResponse(ValidateSummary):
    """The verdict: valid, the violations with fixes in words, per-layer statistics, depth and headroom."""

    violations: list[ViolationResult]  # type: ignore[assignment]
    layers: list[LayerResult]
    repair: RepairResult | None = None


RepairResult.model_rebuild()


class PlanSummary(BaseModel):
    """``view=summary`` of /plan: the planned network's verdict without relaxed, inputs and layers (the same
    values as the full answer; valid and violations as /validate reports them for that network)."""

    depth: int
    stages: list[int]
    top_receptive_field: Pair
    depth_headroom: int
    valid: bool
    violations: list[ViolationSummary]
    params: int
    flops: int


View = Literal["full", "summary"]
"""The ``view`` query parameter: the full answer (default) or its summary without the per-layer list."""

VIEW_DESCRIPTION = "full (default): the answer with every layer; summary: the verdict without the per-layer list."


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


class PlanSummaryBatchItem(BaseModel):
    """Either `result` or `problem` is set (``view=summary``)."""

    index: int
    ok: bool
    result: PlanSummary | None = None
    problem: Problem | None = None


class ValidateSummaryBatchItem(BaseModel):
    """Either `result` or `problem` is set (``view=summary``)."""

    index: int
    ok: bool
    result: ValidateSummary | None = None
    problem: Problem | None = None


class PlanSummaryBatchResponse(BaseModel):
    """One summary per request, in order."""

    results: list[PlanSummaryBatchItem]


class ValidateSummaryBatchResponse(BaseModel):
    """One summary per request, in order."""

    results: list[ValidateSummaryBatchItem]


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
