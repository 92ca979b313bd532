"""Real processes for the worker tests: a private redis-server, Celery workers, `cnnplan serve`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from live_processes import free_port

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120.0, every: float = 0.1) -> object:
    """Poll `condition` until it returns something truthy (a liveness guard, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


SHARED_REDIS_DB = 13
"""Without a redis-server binary, the tests use this db of the machine's Redis at 127.0.0.1:6379."""


class RedisServer:
    """A private `redis-server` on a free loopback port, without persistence; can be stopped and restarted.

    Where only the machine's shared Redis at 127.0.0.1:6379 exists (no binary), `shared()` gives a
    flushed db of it instead; tests that stop the server cannot use that one.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.db = 0
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self.is_shared = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"

    def _client(self):
        import redis

        return redis.Redis(port=self.port, db=self.db, socket_connect_timeout=1)

    def _answers(self) -> bool:
        import redis

        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def shared(self) -> None:
        self.port, self.db, self.is_shared = 6379, SHARED_REDIS_DB, True
        if not self._answers():
            pytest.fail("neither redis-server nor a Redis at 127.0.0.1:6379 (.ci/run installs and starts one)")
        self._client().flushdb()

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            self.shared()
            return
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._answers, "redis-server to answer", timeout=30)

    def stop(self) -> None:
        if self.is_shared:
            self._client().flushdb()
            return
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


def worker_env(data_dir: Path, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CNNPLAN_")}
    env.update(
        CNNPLAN_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), CNNPLAN_JOB_LEASE_SECONDS="3",
        OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", CNNPLAN_JOB_RATE_LIMIT="100000/minute",
    )  # fmt: skip
    if redis_url:
        env["CNNPLAN_REDIS_URL"] = redis_url
    env.update(extra)
    return env


class Processes:
    """Start processes in their own session; stop (SIGTERM) or kill (SIGKILL) the whole group."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen:
        log = open(self.logdir / f"{name}-{len(self.started)}.log", "wb")
        process = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(process)
        return process

    def worker(self, env: dict[str, str], name: str = "worker") -> subprocess.Popen:
        """A `cnnplan worker` process (killed, not shut down, at the end of the test: nothing to keep)."""
        return self.start([sys.executable, "-m", "cnnplan.service.cli.jobs", "worker", "--concurrency", "1"], env, name)

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the process and every child it started (its whole process group)."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    @staticmethod
    def stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def close(self) -> None:
        for process in self.started:
            try:
                if process.args[-3:-1] == ["worker", "--concurrency"]:
                    if process.poll() is None:
                        self.kill(process)
                else:
                    self.stop(process)  # `cnnplan serve` stops its embedded worker itself
            except ProcessLookupError:
                pass
