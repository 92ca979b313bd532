"""The Celery application: broker, result backend and the documented reliability settings.

Embedded (no ``CNNPLAN_REDIS_URL``): broker ``sqla+sqlite:///<data_dir>/broker.sqlite`` and results
``db+sqlite:///<data_dir>/results.sqlite``; distributed: the Redis URL for both. JSON only (nothing
from a request is ever unpickled); late acknowledgement, re-queue on a lost worker process, one
message prefetched per process, soft and hard time limits, and a ``benchmarks`` queue.
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from cnnplan.service.settings import Settings, get_settings

BENCHMARK_TASK = "cnnplan.benchmark"
BENCHMARK_QUEUE = "benchmarks"
EXPERIMENT_TASK = "cnnplan.experiment_run"
EXPERIMENT_QUEUE = "experiments"


def broker_and_backend(settings: Settings) -> tuple[str, str]:
    """(broker URL, result backend URL) for these settings."""
    if settings.redis_url:
        return settings.redis_url, settings.redis_url
    data_dir = Path(settings.data_dir)
    return f"sqla+sqlite:///{data_dir / 'broker.sqlite'}", f"db+sqlite:///{data_dir / 'results.sqlite'}"


def soft_time_limit(settings: Settings) -> int:
    """The hard limit less 10% (at least 5 s): the job records its failure before the hard kill."""
    return max(1, settings.job_time_limit - max(5, settings.job_time_limit // 10))


def make_celery(settings: Settings | None = None) -> Celery:
    """A Celery app for `settings` (the environment's by default)."""
    settings = settings if settings is not None else get_settings()
    if not settings.redis_url:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    broker, backend = broker_and_backend(settings)
    app = Celery(
        "cnnplan",
        broker=broker,
        backend=backend,
        include=[
            "cnnplan.service.worker.tasks",
            "cnnplan.service.worker.recovery",
            "cnnplan.service.worker.experiment_tasks",
        ],  # fmt: skip
    )
    # kombu's SQLAlchemy transport hands its options to create_engine: wait on a locked SQLite file.
    transport_options: dict[str, object] = {"connect_args": {"timeout": 30}}
    if settings.redis_url:
        # Redis re-delivers an unacknowledged message after visibility_timeout: just over the hard
        # time limit (a running job always finishes or dies by then); lost workers are found sooner
        # by the job leases (service.worker.recovery).
        transport_options = {
            "visibility_timeout": settings.job_time_limit + 4 * settings.job_lease_seconds,
            "socket_connect_timeout": 2, "socket_timeout": 10,
        }  # fmt: skip
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.job_time_limit,
        task_soft_time_limit=soft_time_limit(settings),
        task_routes={BENCHMARK_TASK: {"queue": BENCHMARK_QUEUE}, EXPERIMENT_TASK: {"queue": EXPERIMENT_QUEUE}},
        task_default_queue=BENCHMARK_QUEUE,
        broker_transport_options=transport_options,
        result_backend_transport_options=transport_options if settings.redis_url else {},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        result_expires=7 * 24 * 3600,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    app.conf.cnnplan_settings = settings
    return app


def check_broker(app: Celery) -> str:
    """Connect to the broker once (no retries); returns its URL without credentials, raises when down."""
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return connection.as_uri()


app = make_celery()
"""The environment's app, for ``celery -A service.worker.celery_app`` and the worker command."""

__all__ = [
    "BENCHMARK_QUEUE",
    "BENCHMARK_TASK",
    "EXPERIMENT_QUEUE",
    "EXPERIMENT_TASK",
    "app",
    "broker_and_backend",
    "check_broker",
    "make_celery",
]
