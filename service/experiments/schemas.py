"""The experiment resource's JSON shapes: the request (dataset, recipe, variants, user networks), a
run, the aggregated result and the job record (pydantic v2; shared by the API, the worker and the CLI).

The per-field bounds here are absolute; the service's settings add the budget limits (runs, samples x
epochs) checked in `cnnplan.service.worker.experiment_jobs.check_experiment_limits` (docs/experiments.md).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from cnnplan.service.schemas import (
    ARCHITECTURE_FIELDS,
    MinCValue,
    StrictRequest,
    ValidateRequestModel,
    WidthRuleModel,
    check_exactly_one_of,
    exactly_one_of_schema,
)  # fmt: skip

MAX_EXPERIMENT_IMAGE_SIDE = 256
DATASETS = ("relations", "multiscale", "image_folder")


def _scale(value: Any) -> Fraction:
    """A stage scale: a number or an exact 'p/q' string in [1/16, 8]."""
    if isinstance(value, Fraction):
        parsed = value
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)) or len(str(value)) > 32:
        raise PydanticCustomError("scale", "must be a number or a 'p/q' string")
    else:
        try:
            parsed = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            raise PydanticCustomError(
                "scale", "must be a number or a 'p/q' string, got {value!r}", {"value": value}
            ) from None
    if not Fraction(1, 16) <= parsed <= 8:
        raise PydanticCustomError("scale", "must be in [1/16, 8], got {value}", {"value": str(parsed)})
    return parsed


def _fraction_text(value: Any) -> str:
    value = _scale(value)
    return f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)


StageScale = Annotated[
    Fraction,
    PlainValidator(_scale),
    PlainSerializer(_fraction_text, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "maxLength": 32}],
                    "description": "A factor in [1/16, 8]: a number or an exact 'p/q' string."}),
]  # fmt: skip


class _Strict(StrictRequest):
    """Strict like every request body (unknown fields and coercions refused; 6.0 accepted for an integer)."""


class DatasetOptions(_Strict):
    """Generator options (docs/experiments.md); each applies to the datasets named, others are refused."""

    noise: float | None = Field(None, ge=0, le=10, description="relations, multiscale: std of the noise background.")
    distractors: int | None = Field(None, ge=0, le=16, description="relations: look-alike glyphs per image.")
    glyph_size: int | None = Field(None, ge=2, le=16, description="relations, multiscale: side of a glyph.")
    glyph_pixels: int | None = Field(None, ge=1, le=255, description="relations, multiscale: pixels on per glyph.")
    directions: Literal[4, 8] | None = Field(None, description="relations: direction sectors (classes = 2 x this).")
    parts: int | None = Field(None, ge=2, le=6, description="multiscale: part kinds.")
    layouts: int | None = Field(None, ge=2, le=4, description="multiscale: coarse layouts (classes = parts x this).")
    folder: str | None = Field(
        None, min_length=1, max_length=255,
        description="image_folder: a path relative to CNNPLAN_EXPERIMENT_DATA_ROOT (class per sub-folder).",
    )  # fmt: skip


class VariantsModel(_Strict):
    """Which architectures to train beside the plan (docs/experiments.md, section Architectures)."""

    baseline: bool = Field(True, description="One convolution per stage of the plan.")
    stage_scales: list[StageScale] = Field(
        default_factory=lambda: [Fraction(1, 4), Fraction(1, 2), Fraction(3, 2), Fraction(2)], max_length=12, description="Every stage scaled (rounded, >= 1 layer): 'p/q' or numbers."
    )  # fmt: skip
    too_deep: list[int] = Field([1, 2, 4], max_length=12, description="Layers added past the plan (constraint 2).")
    too_long: list[int] = Field(
        [2, 3], max_length=12, description="The plan's depth with this many layers moved into stage 1 (constraint 1)."
    )
    t_sweep: list[MinCValue] = Field(
        [Fraction(1, n) for n in range(4, 9)], max_length=12, description="Also train the plan for each t."
    )


class UserArchitecture(ValidateRequestModel):
    """A network to race against the plan: a POST /validate body plus a display name. Its input channels
    and image size are the experiment's (so, unlike POST /validate, it needs no image_size); its last
    layer must output one score per class."""

    model_config = ConfigDict(json_schema_extra={"allOf": [exactly_one_of_schema(ARCHITECTURE_FIELDS)]})

    name: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_architecture(self) -> UserArchitecture:  # replaces the parent's: the image size is the experiment's
        check_exactly_one_of(self, ARCHITECTURE_FIELDS)
        return self


class ExperimentRequest(_Strict):
    """An experiment: train the plan and its variants on a seeded dataset, several seeds each."""

    image_size: int = Field(32, ge=16, le=MAX_EXPERIMENT_IMAGE_SIDE, description="Square image side z.")
    dataset: Literal["relations", "multiscale", "image_folder"] = "relations"
    dataset_options: DatasetOptions = Field(default_factory=DatasetOptions)
    data_seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the dataset (fixed across training seeds).")
    train_samples: int = Field(2000, ge=16, le=200_000)
    test_samples: int = Field(1000, ge=16, le=100_000)
    epochs: int = Field(6, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=4096)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = Field(2e-3, gt=0, le=10)
    weight_decay: float = Field(5e-4, ge=0, le=1)
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    seeds: list[int] = Field([0, 1, 2], min_length=1, max_length=64, description="Training seeds (init, order).")
    min_c_value: MinCValue = Fraction(1, 6)
    widths: WidthRuleModel = Field(
        default_factory=lambda: WidthRuleModel.model_validate({"base": 16, "multiplier": 2, "max_width": 32}),
        description="Filters per stage; default 16, 32, 32... (small enough for CPU).",
    )
    variants: VariantsModel = Field(default_factory=VariantsModel)
    architectures: list[UserArchitecture] = Field([], max_length=16, description="Your own networks.")
    threads: int = Field(1, ge=1, le=64, description="torch threads per run.")
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ExperimentRun(BaseModel):
    model_config = ConfigDict(extra="allow")

    architecture: str
    seed: int
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    depth: int
    valid: bool
    test_accuracy: float | None = None
    train_accuracy: float | None = None
    test_loss: float | None = None
    train_loss: float | None = None
    params: int
    flops: int
    wall_seconds: float | None = None
    error: dict[str, Any] | None = None


class ExperimentResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    architectures: list[dict[str, Any]]
    runs: list[ExperimentRun]
    environment: dict[str, Any]


class ExperimentJob(BaseModel):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    request: dict[str, Any]
    runs: list[ExperimentRun] = Field(description="One per architecture x seed, with its own status and progress.")
    result: ExperimentResult | None
    error: dict[str, Any] | None
    owner: str | None = Field(None, description="The owner of the API key that submitted it (None without keys).")
    reason: str | None = Field(None, description="Why it ended, when it was cancelled (or deleted).")
    cancelled_by: str | None = Field(None, description="The owner whose key cancelled it (`anonymous` without keys).")


class ExperimentJobList(BaseModel):
    items: list[ExperimentJob]
    total: int
    limit: int
    offset: int


__all__ = [
    "DATASETS", "DatasetOptions", "ExperimentJob", "ExperimentJobList", "ExperimentRequest",
    "ExperimentResult", "ExperimentRun", "UserArchitecture", "VariantsModel",
]  # fmt: skip
