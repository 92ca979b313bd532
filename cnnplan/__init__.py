"""cnnplan: design very deep CNNs from first principles (receptive-field arithmetic, c-value constraints,
the optimal-depth planner), as a library, a REST service and a command line.

The distribution installs this one import name. Its subpackages live in the repository's top-level
folders (``pyproject.toml`` maps them): `cnnplan.solver` is ``solver/`` (pure Python, the theory),
`cnnplan.service` is ``service/`` (web layer, CLI, client, interop, worker). See docs/architecture.md.

``from cnnplan import PlannerClient`` is the client of a running service; ``from cnnplan import
make_plan, validate`` are the solver's entry points. Names are resolved lazily, so importing
`cnnplan` loads neither httpx nor the solver until one is used.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("cnnplan")
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "PlannerClient": "cnnplan.service.client",
    "AsyncPlannerClient": "cnnplan.service.client",
    "PlannerError": "cnnplan.service.client",
    "RetryPolicy": "cnnplan.service.client",
    "make_plan": "cnnplan.solver",
    "PlanRequest": "cnnplan.solver",
    "validate": "cnnplan.solver",
    "preset": "cnnplan.solver",
    "SolverError": "cnnplan.solver",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import an exported name on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnplan' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
