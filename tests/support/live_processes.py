"""Real server processes for the tests: a free loopback port and an HTTP server run as a subprocess."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Self

import httpx

STARTUP_DEADLINE_S = 60


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """Run `command` (an HTTP server on 127.0.0.1:`port`) until `probe` answers 200; stop it on exit
    (SIGINT, then SIGKILL after 20 s). Output goes to `log` (a binary file) or is kept in a pipe."""

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        env: Mapping[str, str],
        cwd: Path,
        probe: str = "/healthz",
        log: IO[bytes] | None = None,
    ) -> None:
        self.command = list(command)
        self.url = f"http://127.0.0.1:{port}"
        self.env = dict(env)
        self.cwd = cwd
        self.probe = probe
        self.log = log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        output = self.log if self.log is not None else subprocess.PIPE
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, stdout=output, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:  # a liveness guard, not a timed assertion
            if self.process.poll() is not None:
                captured = self.process.stdout.read().decode(errors="replace") if self.log is None else ""
                raise RuntimeError(f"{self.command} exited with {self.process.returncode}: {captured[-2000:]}")
            try:
                if httpx.get(self.url + self.probe, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"{self.command} did not answer {self.probe} within {STARTUP_DEADLINE_S} s")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
