"""Run every example of the documentation against a real server and write its real output into the page.

    python scripts/docs_examples.py           # rewrite the outputs in README.md and docs/*.md
    python scripts/docs_examples.py --check   # change nothing; exit 1 with a diff when a page is stale

An example is a ``console`` block right after a ``<!-- example -->`` line. Its command lines start with
``$ `` (a line ending in `` \\`` continues the command); everything up to the next command line is that
command's output, and is what this script rewrites. An input file is a fenced block right after a
``<!-- example-file: NAME -->`` line: its text is written to NAME before the next example runs, so
every input an example uses is shown on its page.

The examples run in the order of `PAGES`, one after the other, in one scratch directory (the pages'
working directory; ``examples/`` and ``benchmarks/`` of this checkout are linked into it, and
``docs/img/`` is a fresh folder whose pictures are copied back when rewriting) with the
environment's ``bin`` folder first on PATH, against one ``cnnplan serve`` (embedded worker off, data
directory in the scratch directory) on a free loopback port. The pages say port 8000; the commands run
against the free port. Only two values are normalised in the outputs, because they change from run to
run: the scratch directory's path (shown as ``/tmp/cnnplan-docs``) and the port (shown as 8000).
The caller's ``CNNPLAN_*`` variables are dropped, so the server runs on its documented defaults.
Needs curl and jq on PATH (the examples use them).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/index.md", "docs/service.md", "docs/integrations.md")
"""The pages with examples, in the order they run (a later page may use a file an earlier one made)."""
SHOWN_PORT = 8000
SHOWN_SCRATCH = "/tmp/cnnplan-docs"
COMMAND_TIMEOUT_S = 300
EXAMPLE = "<!-- example -->"
EXAMPLE_FILE = re.compile(r"^<!-- example-file: ([\w.\-/]+) -->$")
FENCE = re.compile(r"^(```+|~~~+)")


@dataclass
class Scratch:
    """Where the examples run: the directory, the server's port, and the environment of every command."""

    path: Path
    port: int
    env: dict[str, str]
    timings: list[tuple[float, str]] = field(default_factory=list)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(url: str, server: subprocess.Popen, deadline_s: float = 60) -> None:
    """Return once ``url`` answers 200; raise RuntimeError when the server exits or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"cnnplan serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"cnnplan serve did not answer {url} within {deadline_s} s")


def _command_blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """The (command, shown command lines) of a console block's lines, outputs dropped."""
    commands: list[tuple[str, list[str]]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("$ "):
            shown = [line]
            while shown[-1].endswith("\\") and index + 1 < len(lines):
                index += 1
                shown.append(lines[index])
            commands.append(("\n".join(shown)[2:], shown))
        index += 1
    return commands


def _real_port(text: str, scratch: Scratch) -> str:
    """``text`` with the pages' port 8000 replaced by the server's real port."""
    return text.replace(f"localhost:{SHOWN_PORT}", f"localhost:{scratch.port}").replace(
        f"127.0.0.1:{SHOWN_PORT}", f"127.0.0.1:{scratch.port}"
    )


def _run(command: str, scratch: Scratch) -> str:
    """The combined stdout and stderr of one shown command, run with bash in the scratch directory.

    Raises RuntimeError when the command exits non-zero: an example that shows a failure says so
    itself (``...; echo "exit code: $?"``), so a non-zero exit is a broken example.
    """
    real = _real_port(command, scratch)
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", "-c", real],
        cwd=scratch.path,
        env=scratch.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    scratch.timings.append((time.perf_counter() - started, command))
    output = done.stdout.rstrip("\n")
    if done.returncode != 0:
        raise RuntimeError(f"example {command!r} exited with {done.returncode}:\n{output[-3000:]}")
    output = output.replace(str(scratch.path), SHOWN_SCRATCH)
    return re.sub(rf"\b(localhost|127\.0\.0\.1):{scratch.port}\b", rf"\1:{SHOWN_PORT}", output)


def render_page(text: str, scratch: Scratch) -> str:
    """The page with every example's output replaced by a fresh run's; example files written on the way."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        file_marker = EXAMPLE_FILE.match(line)
        if line != EXAMPLE and file_marker is None:
            continue
        fence = FENCE.match(lines[index])
        if fence is None:
            raise ValueError(f"an example marker must be followed by a fenced block: {lines[index]!r}")
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith(fence.group(1)))
        body = lines[index + 1 : end]
        if file_marker is not None:
            target = scratch.path / file_marker.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_real_port("\n".join(body) + "\n", scratch))
            out.extend(lines[index : end + 1])
        else:
            out.append(lines[index])
            for command, shown in _command_blocks(body):
                out.extend(shown)
                output = _run(command, scratch)
                if output:
                    out.extend(output.split("\n"))
            out.append(lines[end])
        index = end + 1
    return "\n".join(out)


@dataclass
class Rendered:
    """A fresh run: {page: (current text, rendered text)} and the pictures it drew {docs/img/NAME: bytes}."""

    pages: dict[str, tuple[str, str]]
    images: dict[str, bytes]
    timings: list[tuple[float, str]]


def render_all(root: Path = ROOT, pages: tuple[str, ...] = PAGES) -> Rendered:
    """Every page rendered from one real server, with the pictures its examples drew."""
    with tempfile.TemporaryDirectory(prefix="cnnplan-docs-") as name:
        path = Path(name).resolve()
        for folder in ("examples", "benchmarks"):
            (path / folder).symlink_to(root / folder)
        (path / "docs" / "img").mkdir(parents=True)
        port = _free_port()
        env = {name: value for name, value in os.environ.items() if not name.startswith("CNNPLAN_")}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            CNNPLAN_URL=f"http://127.0.0.1:{port}",
            CNNPLAN_PORT=str(port),
            CNNPLAN_EMBEDDED_WORKER="false",
            CNNPLAN_DATA_DIR=str(path / "data"),
            CNNPLAN_LOG_LEVEL="warning",
            PYTHONHASHSEED="0",
            COLUMNS="120",
        )
        scratch = Scratch(path, port, env)
        with open(path / "server.log", "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "cnnplan.service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_until_healthy(f"http://127.0.0.1:{port}/healthz", server)
                rendered = {}
                for page in pages:
                    current = (root / page).read_text()
                    rendered[page] = (current, render_page(current, scratch))
            finally:
                server.terminate()
                server.wait(timeout=30)
        images = {f"docs/img/{image.name}": image.read_bytes() for image in sorted((path / "docs" / "img").iterdir())}
    return Rendered(rendered, images, scratch.timings)


def stale_pages(rendered: Rendered) -> str:
    """A unified diff of every page whose examples no longer give the outputs it shows ('' when none)."""
    return "".join(
        "".join(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True), page, f"{page} (fresh run)"))
        for page, (current, fresh) in rendered.pages.items()
        if current != fresh
    )


def main(argv: list[str] | None = None) -> int:
    """Rewrite the pages (and their pictures), or with --check report stale pages and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a page is stale")
    parser.add_argument("--timings", action="store_true", help="print each command's wall time to stderr")
    args = parser.parse_args(argv)
    for tool in ("curl", "jq"):
        if shutil.which(tool) is None:
            parser.error(f"the examples need {tool} on PATH")
    rendered = render_all()
    diff = stale_pages(rendered)
    if args.timings:
        for seconds, command in sorted(rendered.timings, reverse=True):
            print(f"{seconds:6.2f} s  {command[:100]}", file=sys.stderr)
    if args.check:
        sys.stdout.write(diff)
        return 1 if diff else 0
    for page, (current, fresh) in rendered.pages.items():
        if current != fresh:
            (ROOT / page).write_text(fresh)
            print(f"rewrote {page}")
    for name, data in rendered.images.items():
        (ROOT / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
