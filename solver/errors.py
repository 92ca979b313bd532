"""Typed errors of the solver: each names the offending field (a JSON-path-like location) and the reason."""

from __future__ import annotations


class SolverError(ValueError):
    """Base class: `field` locates the bad input (e.g. ``layers[3].kernel_size``), `reason` says what is wrong."""

    code = "invalid_input"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class InvalidLayerError(SolverError):
    """A layer has an unknown kind or an out-of-range parameter."""

    code = "invalid_layer"


class GraphStructureError(SolverError):
    """The graph has a cycle, a dangling input, a duplicate name or a wrong number of inputs."""

    code = "invalid_graph"


class MisalignedMergeError(SolverError):
    """A merge joins inputs whose jumps, sizes or channels differ."""

    code = "misaligned_merge"


class VanishingFeatureMapError(SolverError):
    """A layer would produce a feature map smaller than 1x1."""

    code = "vanishing_feature_map"


class LimitExceededError(SolverError):
    """An input exceeds a documented limit (image side, layer count, fan-in, ...)."""

    code = "limit_exceeded"


class InfeasiblePlanError(SolverError):
    """No network of the planning family satisfies the constraints for these inputs."""

    code = "infeasible"


class UnknownPresetError(SolverError):
    """The requested preset name does not exist."""

    code = "unknown_preset"
