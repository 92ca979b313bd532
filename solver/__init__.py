"""cnnplan's engine: exact receptive-field arithmetic, constraint validation and the optimal-depth
planner of "A practical theory for designing very deep convolutional neural networks".

Layout: `arithmetic` (one formula per function), `layers` (config objects, graph checks),
`analysis` (per-layer statistics), `constraints` (the two constraints, diagnostics, headroom),
`planner` (the exact optimiser and the simplified model), `network` and `plan` (the concrete
planned network, any block style and stem), `budget` (the widest width rule under max_flops /
max_params), `presets` (well-known architectures). Pure Python: no web or torch imports.
"""

from .analysis import Analysis, LayerStats, analyse, analyse_chain, depth, normalize_image_size
from .constraints import ValidationReport, Violation, check_constraints, validate
from .errors import (
    GraphStructureError,
    InfeasiblePlanError,
    InvalidLayerError,
    LimitExceededError,
    MisalignedMergeError,
    SolverError,
    UnknownPresetError,
    VanishingFeatureMapError,
)
from .layers import Layer, as_graph
from .network import WidthRule
from .plan import Plan, PlanRequest, make_plan
from .planner import RelaxedPlan, StagePlan, plan_stages, relaxed_optimum
from .presets import preset, preset_info, preset_names
from .rational import DEFAULT_MIN_C_VALUE, format_fraction, parse_min_c_value

__all__ = [
    "DEFAULT_MIN_C_VALUE",
    "Analysis",
    "GraphStructureError",
    "InfeasiblePlanError",
    "InvalidLayerError",
    "Layer",
    "LayerStats",
    "LimitExceededError",
    "MisalignedMergeError",
    "Plan",
    "PlanRequest",
    "RelaxedPlan",
    "SolverError",
    "StagePlan",
    "UnknownPresetError",
    "ValidationReport",
    "VanishingFeatureMapError",
    "Violation",
    "WidthRule",
    "analyse",
    "analyse_chain",
    "as_graph",
    "check_constraints",
    "depth",
    "format_fraction",
    "make_plan",
    "normalize_image_size",
    "parse_min_c_value",
    "plan_stages",
    "preset",
    "preset_info",
    "preset_names",
    "relaxed_optimum",
    "validate",
]
