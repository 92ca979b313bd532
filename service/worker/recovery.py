"""Leases: a running job's heartbeat, and the sweep that re-queues jobs whose worker was lost.

kombu's SQLAlchemy transport marks a delivered message invisible and never re-delivers it if the
worker dies without closing its channel (SIGKILL, power loss), and Redis re-delivers only after
its visibility timeout. So every running job holds a lease that its worker renews every third of
`job_lease_seconds`; each worker, when it starts and then every lease period, moves jobs whose lease
expired back to ``queued`` and sends them again. Claims are compare-and-set, so a duplicate
message is harmless.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from celery import signals

from .store import JobStore

logger = logging.getLogger("cnnplan.worker")


def requeue_lost_jobs(store: JobStore, send: Callable[[str], None]) -> list[str]:
    """Re-queue and re-send every running job whose lease has expired; their ids."""
    requeued = []
    for job_id in store.active_ids():
        if store.requeue_expired(job_id):
            send(job_id)
            requeued.append(job_id)
            logger.warning("job %s lost its worker; re-queued", job_id)
    return requeued


class Heartbeat(threading.Thread):
    """Renews the lease of one running attempt; sets `stopped` when the job was cancelled or taken over."""

    def __init__(self, store: JobStore, job_id: str, attempt: int, lease_seconds: float) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.store, self.job_id, self.attempt, self.lease_seconds = store, job_id, attempt, lease_seconds
        self.stopped = threading.Event()
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(self.lease_seconds / 3):
            try:
                if not self.store.heartbeat(self.job_id, self.attempt, self.lease_seconds):
                    self.stopped.set()
                    return
            except Exception:  # the store is briefly unreachable: keep trying until the lease lapses
                logger.exception("heartbeat of job %s failed", self.job_id)

    def __enter__(self) -> "Heartbeat":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finished.set()
        self.join()


class Sweeper(threading.Thread):
    """Runs `requeue_lost_jobs` now and then every `interval` seconds, in the worker's main process."""

    def __init__(self, store_factory: Callable[[], JobStore], send: Callable[[str], None], interval: float) -> None:
        super().__init__(name="cnnplan-lease-sweeper", daemon=True)
        self.store_factory, self.send, self.interval = store_factory, send, interval
        self.finished = threading.Event()

    def run(self) -> None:
        while True:
            try:
                requeue_lost_jobs(self.store_factory(), self.send)
            except Exception:
                logger.exception("lease sweep failed")
            if self.finished.wait(self.interval):
                return


_sweeper: Sweeper | None = None


@signals.worker_ready.connect
def start_sweeper(sender: object = None, **_: object) -> None:
    """Start the sweep when a worker is ready (a restarted worker recovers what its predecessor lost)."""
    global _sweeper
    from .tasks import send_job, worker_settings, worker_store

    _sweeper = Sweeper(worker_store, send_job, worker_settings().job_lease_seconds)
    _sweeper.start()


@signals.worker_shutdown.connect
def stop_sweeper(sender: object = None, **_: object) -> None:
    if _sweeper is not None:
        _sweeper.finished.set()


__all__ = ["Heartbeat", "Sweeper", "requeue_lost_jobs"]
