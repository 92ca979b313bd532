"""Leases: a running job's heartbeat, and the sweep that re-queues jobs whose worker was lost.

kombu's SQLAlchemy transport marks a delivered message invisible and never re-delivers it if the
worker dies without closing its channel (SIGKILL, power loss), and Redis re-delivers only after
its visibility timeout. So every running job holds a lease that its worker renews every third of
`job_lease_seconds`; each worker, when it starts and then every lease period, moves jobs whose lease
expired back to ``queued`` and sends them again, and sends again any job left ``queued`` and
untouched for longer than a job may run (its message may have died with a worker between delivery
and claim). Claims are compare-and-set, so a duplicate message is harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from celery import signals

from cnnplan.service.worker.store import JobStore

logger = logging.getLogger("cnnplan.worker")


def requeue_lost_jobs(store: JobStore, send: Callable[[str], None], stale_after: float) -> list[str]:
    """Re-send every running job whose lease has expired (re-queued first) and every job queued and
    untouched for `stale_after` seconds (its message may have died with a worker before the claim); their ids."""
    sent = []
    for job_id in store.active_ids():
        if store.requeue_expired(job_id):
            logger.warning("job %s lost its worker; re-queued", job_id)
        elif not store.touch_if_stale(job_id, stale_after):
            continue
        send(job_id)
        sent.append(job_id)
    return sent


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

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finished.set()
        self.join()


class Sweeper(threading.Thread):
    """Runs `requeue_lost_jobs` now and then every `interval` seconds, in the worker's main process."""

    def __init__(
        self, store_factory: Callable[[], JobStore], send: Callable[[str], None], interval: float, stale_after: float
    ) -> None:
        super().__init__(name="cnnplan-lease-sweeper", daemon=True)
        self.store_factory, self.send, self.interval, self.stale_after = store_factory, send, interval, stale_after
        self.finished = threading.Event()

    def run(self) -> None:
        while True:
            try:
                requeue_lost_jobs(self.store_factory(), self.send, self.stale_after)
            except Exception:
                logger.exception("lease sweep failed")
            if self.finished.wait(self.interval):
                return


_sweeper: Sweeper | None = None


@signals.worker_ready.connect
def start_sweeper(sender: object = None, **_: object) -> None:
    """Start the sweep when a worker is ready (a restarted worker recovers what its predecessor lost)."""
    global _sweeper
    from cnnplan.service.worker.tasks import send_job, worker_settings, worker_store

    settings = worker_settings()
    stale_after = (
        settings.job_time_limit + 2 * settings.job_lease_seconds
    )  # no live job stays queued untouched that long
    _sweeper = Sweeper(worker_store, send_job, settings.job_lease_seconds, stale_after)
    _sweeper.start()


@signals.worker_shutdown.connect
def stop_sweeper(sender: object = None, **_: object) -> None:
    if _sweeper is not None:
        _sweeper.finished.set()


__all__ = ["Heartbeat", "Sweeper", "requeue_lost_jobs"]
