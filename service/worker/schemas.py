"""The job resources' JSON shapes: a benchmark request, its result and the job record (pydantic v2).

Shared by the API (request validation, OpenAPI) and the client (answer parsing).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cnnplan.service.schemas import (
    PlanRequestModel,
    StrictRequest,
    ValidateRequestModel,
    check_exactly_one_of,
    exactly_one_of_schema,
)

NETWORK_FIELDS = ("plan", "architecture")
"""A benchmark body gives exactly one of these."""


class BenchmarkRequest(StrictRequest):
    """A network (exactly one of ``plan`` or ``architecture``) and how to measure it."""

    model_config = ConfigDict(json_schema_extra={"allOf": [exactly_one_of_schema(NETWORK_FIELDS)]})

    plan: PlanRequestModel | None = Field(None, description="A POST /plan body: benchmark the planned network.")
    architecture: ValidateRequestModel | None = Field(
        None, description="A POST /validate body: benchmark that network."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = CUDA when the worker has it, else CPU.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Half precisions run under autocast."
    )
    channels_last: bool = False
    compile: bool = Field(False, description="torch.compile the module first (compilation is not timed).")
    mode: Literal["inference", "training"] = Field("inference", description="Forward only, or a full SGD step.")
    batch_sizes: list[Annotated[int, Field(ge=1)]] = Field(
        [1],
        min_length=1,
        max_length=64,
        description="Distinct batch sizes, each >= 1. The server's limits (CNNPLAN_MAX_BENCHMARK_BATCH_SIZE, "
        "_BATCH_SIZES) are a 422 limit_exceeded.",
        json_schema_extra={"uniqueItems": True},
    )
    warmup: int = Field(2, ge=0, description="Untimed steps per batch size (at most CNNPLAN_MAX_BENCHMARK_WARMUP).")
    iterations: int = Field(
        10, ge=1, description="Timed steps per batch size (at most CNNPLAN_MAX_BENCHMARK_ITERATIONS)."
    )

    @model_validator(mode="after")
    def _one_network(self) -> BenchmarkRequest:
        check_exactly_one_of(self, NETWORK_FIELDS)
        return self


class BatchResult(BaseModel):
    batch_size: int
    latency_ms_p50: float
    latency_ms_p90: float
    images_per_second: float
    tflops_per_second: float = Field(description="Achieved: forward FLOPs (x3 when training) x batch / mean latency.")
    peak_memory_bytes: int = Field(description="CUDA allocator peak on GPU; process peak RSS on CPU.")
    memory_estimate_bytes: int


class BenchmarkEnvironment(BaseModel):
    model_config = ConfigDict(extra="allow")

    device: str
    device_name: str
    torch: str
    cuda: str | None
    cudnn: int | None
    driver: str | None
    cpu_threads: int
    python: str


class BenchmarkResult(BaseModel):
    params: int
    flops: int = Field(description="Forward FLOPs of one image (the solver's count; equals torch's FlopCounterMode).")
    image_size: list[int]
    in_channels: int
    options: dict[str, Any]
    environment: BenchmarkEnvironment
    results: list[BatchResult]


class JobError(BaseModel):
    """Why a job ended without a result: failed (``does_not_fit``, ``benchmark_error``, ``time_limit``,
    ``invalid_request``, ``gave_up``, ``internal_error``) or ``cancelled`` (by whom or what)."""

    type: str
    message: str
    field: str | None = None


class BenchmarkEstimate(BaseModel):
    """The job's expected duration, made before it runs (`cnnplan.service.worker.estimate`)."""

    seconds: float = Field(description="FLOPs / device_flops_per_second + a fixed overhead.")
    flops: int = Field(description="sum over batch sizes b of b x (warmup + iterations) x forward FLOPs (x3 training).")
    device: str
    device_flops_per_second: int = Field(description="Achieved FLOP/s of a calibration convolution on the device.")
    basis: Literal["measured", "nominal"] = Field(description="nominal: torch was not importable to measure.")


class BenchmarkJob(BaseModel):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int
    worker: str | None = Field(description="host:pid of the process running (or that last ran) the job.")
    request: dict[str, Any]
    result: BenchmarkResult | None
    error: JobError | None = Field(
        description="Why it failed; null while it runs or succeeded (a cancel's why is `reason`)."
    )
    owner: str | None = Field(None, description="The owner of the API key that submitted it (None without keys).")
    reason: str | None = Field(None, description="Why it ended, when it was cancelled (or deleted).")
    cancelled_by: str | None = Field(None, description="The owner whose key cancelled it (`anonymous` without keys).")
    estimate: BenchmarkEstimate | None = Field(None, description="Expected duration, estimated at submission.")


class CancelRequest(BaseModel):
    """The optional body of a cancel: why (kept in the job's record as `reason`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str | None = Field(None, min_length=1, max_length=500, description="Why it is cancelled.")


class BenchmarkJobList(BaseModel):
    items: list[BenchmarkJob]
    total: int
    limit: int
    offset: int
