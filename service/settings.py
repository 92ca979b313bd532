"""Service settings, read from ``CNNPLAN_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/cnnplan``, else ``~/.local/share/cnnplan`` (the XDG base-directory default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cnnplan"


def _rate_limit(value: str) -> str:
    """A rate in the `limits` notation (``30/minute``, ``5/second;100/hour``); nonsense fails at startup."""
    from limits import parse_many

    parse_many(value)
    return value


def _api_keys(value: SecretStr | None) -> SecretStr | None:
    """``owner=key,...`` (see cnnplan.service.api.owners); a malformed list fails at startup; blank is unset."""
    if value is not None and not value.get_secret_value().strip():
        return None
    if value is not None:
        from cnnplan.service.api.owners import parse_api_keys

        parse_api_keys(value.get_secret_value())
    return value


class Settings(BaseSettings):
    """Every knob of the service; ``CNNPLAN_PORT=9000`` sets `port`, and so on."""

    model_config = SettingsConfigDict(env_prefix="CNNPLAN_", extra="ignore")

    host: str = Field("127.0.0.1", description="Interface `cnnplan serve` binds to (loopback by default).")
    port: int = Field(8000, ge=0, le=65535, description="TCP port of `cnnplan serve`.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    log_level: str = Field("info", description="uvicorn log level.")
    keep_alive_timeout: int = Field(
        65,
        ge=1,
        le=3600,
        description="Seconds an idle keep-alive connection stays open. Longer than a client pool's own idle expiry "
        "(httpx: 5 s) and than common load balancers' (60 s), so the server never closes a connection a client "
        "is about to reuse.",
    )
    data_dir: Path = Field(default_factory=default_data_dir, description="Where results and job state are kept.")
    redis_url: str | None = Field(None, description="Celery broker/backend; unset means the embedded defaults.")
    api_key: SecretStr | None = Field(
        None,
        min_length=1,
        description="When set, the job endpoints (/benchmarks) need `Authorization: Bearer <key>` or `X-API-Key` "
        "(and /plan, /validate, /presets too with `protect_planning`).",
    )
    api_keys: Annotated[SecretStr | None, AfterValidator(_api_keys)] = Field(
        None,
        description="Several keys, each naming its owner: `alice=<key>,bob=sha256:<hex digest of a key>`. A job "
        "belongs to the key's owner: only that owner (and the admin key) lists, reads, cancels or deletes it. "
        "Without any key, jobs are shared by every client.",
    )
    admin_key: SecretStr | None = Field(
        None, min_length=16, description="Optional key of the owner `admin`, which sees and may cancel every job."
    )
    job_max_active_per_key: int = Field(
        20,
        ge=1,
        le=100_000,
        description="Most queued plus running jobs one key's owner may have (with keys configured); further "
        "submissions get 429 until one finishes. Counted in the job store, so shared by every API process.",
    )
    protect_planning: bool = Field(False, description="With an api_key, /plan, /validate and /presets need it too.")
    job_rate_limit: Annotated[str, AfterValidator(_rate_limit)] = Field(
        "30/minute",
        description="Job submissions per API key (per client address without a key), e.g. `5/second;100/hour`.",
    )
    max_body_bytes: int = Field(MIB, ge=1, description="Largest accepted request body; larger ones get 413.")
    max_batch: int = Field(1000, ge=1, le=1000, description="Most requests in one /plan/batch or /validate/batch body.")
    max_batch_layers: int = Field(
        100_000,
        ge=1,
        le=10_000_000,
        description="Most layers in all the answers of one /plan/batch or /validate/batch (1000 plans at z = 2^20 "
        "and t = 1/64 would otherwise build ~2 million layers, about 700 MB of JSON); later items get a 422 problem.",
    )
    answer_cache_entries: int = Field(
        4096, ge=0, le=10_000_000, description="Most rendered answers kept in memory for reuse (0: no answer cache)."
    )
    answer_cache_bytes: int = Field(
        64 * MIB, ge=0, description="Most bytes of rendered answers kept in memory (least recently used out first)."
    )
    http_cache_max_age: int = Field(
        3600, ge=0, le=31_536_000, description="Cache-Control max-age (seconds) of GET /plan and GET /presets answers."
    )
    embedded_worker: bool = Field(True, description="`cnnplan serve` also runs an in-process worker.")
    # Benchmark jobs (service/worker; docs/worker.md):
    job_time_limit: int = Field(
        1800, ge=10, le=86400, description="Hard time limit of one job in seconds (soft: 10% / at least 5 s less)."
    )
    job_lease_seconds: float = Field(
        30.0, gt=0, le=3600, description="A running job's lease; a lost worker's job is re-queued after it."
    )
    job_max_attempts: int = Field(
        3, ge=1, le=100, description="Runs of one job before it fails for good (worker lost or killed)."
    )
    max_benchmark_batch_size: int = Field(
        1024, ge=1, le=65536, description="Largest batch size a benchmark job accepts."
    )
    max_benchmark_batch_sizes: int = Field(8, ge=1, le=64, description="Most batch sizes in one benchmark job.")
    max_benchmark_iterations: int = Field(1000, ge=1, le=100000, description="Most timed iterations per batch size.")
    max_benchmark_warmup: int = Field(100, ge=0, le=10000, description="Most warm-up iterations per batch size.")
    # Training experiments (service/experiments; docs/experiments.md):
    max_experiment_runs: int = Field(
        200, ge=1, le=10000, description="Most runs (architectures x seeds) in one experiment."
    )
    max_experiment_image_size: int = Field(128, ge=16, le=256, description="Largest image side of an experiment.")
    max_experiment_epochs: int = Field(200, ge=1, le=1000, description="Most training epochs of an experiment.")
    max_experiment_samples: int = Field(
        100_000, ge=32, le=1_000_000, description="Most train + test samples of an experiment (held in memory)."
    )
    max_experiment_dataset_bytes: int = Field(
        2**30,
        ge=2**16,
        le=2**40,
        description="Most bytes of an experiment's images in memory ((train + test) x z^2 x 4).",
    )
    max_experiment_sample_epochs: int = Field(
        10_000_000, ge=1, le=10**10, description="Most train_samples x epochs (images trained on) per run."
    )
    experiment_data_root: str | None = Field(
        None, description="Folder under which image_folder experiments may read images (unset: none allowed)."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


__all__ = ["Settings", "get_settings", "default_data_dir", "MIB"]
