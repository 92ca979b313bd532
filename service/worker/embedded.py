"""The worker `cnnplan serve` runs beside the API: a child process, stopped when the server stops."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from cnnplan.service.settings import Settings

SHUTDOWN_GRACE_SECONDS = 30
"""The worker's warm shutdown gets this long (an idle one needs about 10 s); then it is killed, and a job
it was running is re-run after its lease (service.worker.recovery)."""


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM it when the server dies, even by SIGKILL or by the
    signal uvicorn re-raises after its own shutdown, which skips our `finally`."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def worker_command(concurrency: int = 1) -> list[str]:
    return [sys.executable, "-m", "cnnplan.service.cli.jobs", "worker", "--concurrency", str(concurrency)]


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives the child the same settings as the server (secrets left out)."""
    env = dict(os.environ)
    for secret in ("CNNPLAN_API_KEY", "CNNPLAN_API_KEYS", "CNNPLAN_ADMIN_KEY"):
        env.pop(secret, None)
    for name, value in settings.model_dump(mode="json", exclude={"api_key", "api_keys", "admin_key"}).items():
        if value is not None:
            env[f"CNNPLAN_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


@contextmanager
def embedded_worker(settings: Settings) -> Iterator[subprocess.Popen | None]:
    """Run a worker process for the duration of the block when ``settings.embedded_worker`` is on."""
    if not settings.embedded_worker:
        yield None
        return
    if importlib.util.find_spec("torch") is None:
        print("cnnplan: torch is not installed (pip install 'cnnplan[worker]'): no embedded worker; "
              "jobs stay queued until a worker joins", file=sys.stderr)  # fmt: skip
        yield None
        return
    process = subprocess.Popen(
        worker_command(), env=settings_environment(settings), start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=SHUTDOWN_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


__all__ = ["embedded_worker", "settings_environment", "worker_command"]
