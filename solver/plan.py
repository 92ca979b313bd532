"""A complete plan: optimal stages, the concrete network, its exact analysis and its counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from .analysis import ImageSize, LayerStats, analyse_chain, normalize_image_size
from .constraints import RfSide, ValidationReport, check_constraints
from .errors import InvalidLayerError
from .layers import Layer
from .network import WidthRule, classifier_layers, feature_layers, feature_side
from .planner import Downsample, Model, RelaxedPlan, StagePlan, check_plan_inputs, optimal_stages, relaxed_stages


@dataclass(frozen=True)
class PlanRequest:
    """Everything a plan depends on; the defaults are THEORY.md's."""

    image_size: ImageSize
    kernel_size: int = 3
    min_c_value: object = None
    model: Model = "exact"
    downsample: Downsample = "maxpool"
    in_channels: int = 3
    num_classes: int = 1000
    dropout: float = 0.5
    widths: WidthRule = field(default_factory=WidthRule)
    batch_norm: bool = True
    rf_side: RfSide = "min"


@dataclass(frozen=True)
class Plan:
    """The answer: stage lengths, the relaxed optimum, the full layer list and its exact report."""

    request: PlanRequest
    image_size: tuple[int, int]
    min_c_value: Fraction
    stages: tuple[int, ...]
    depth: int
    relaxed: RelaxedPlan
    layers: tuple[Layer, ...]
    report: ValidationReport

    @property
    def top_receptive_field(self) -> int:
        """Receptive field of the topmost feature-level conv, by the exact arithmetic (the planner's square
        family has the same value on both axes; `report.top_receptive_field` holds the (h, w) pair)."""
        assert self.report.top_receptive_field is not None
        return max(self.report.top_receptive_field)

    @property
    def layer_stats(self) -> tuple[LayerStats, ...]:
        """Per-layer statistics in network order."""
        return self.report.analysis.layers

    @property
    def params(self) -> int:
        """Learnable parameters (conv weights and biases, BN scale and shift, linear)."""
        return self.report.analysis.params

    @property
    def flops(self) -> int:
        """FLOPs per image: 2 per multiply-add of convolutions and the linear layer."""
        return self.report.analysis.flops


def network_for_stages(request: PlanRequest, stages: tuple[int, ...]) -> tuple[Layer, ...]:
    """Feature layers for `stages` followed by the classifier level sized from the last feature map."""
    features = feature_layers(stages, request.kernel_size, request.downsample, request.widths, request.batch_norm)
    height, width = normalize_image_size(request.image_size)
    last_side = min(
        feature_side(height, len(stages), request.downsample), feature_side(width, len(stages), request.downsample)
    )
    width = request.widths.width(len(stages))
    return tuple(features + classifier_layers(last_side, width, request.num_classes, request.dropout))


def make_plan(request: PlanRequest) -> Plan:
    """Optimise the stages (`plan_stages`), build the network and analyse it exactly."""
    t = check_plan_inputs(request.kernel_size, request.min_c_value, request.model, request.downsample)
    size = normalize_image_size(request.image_size)
    if not isinstance(request.widths, WidthRule):
        raise InvalidLayerError("widths", f"must be a width rule (base, multiplier, max_width), got {request.widths!r}")
    if not isinstance(request.batch_norm, bool):
        raise InvalidLayerError("batch_norm", f"must be a boolean, got {request.batch_norm!r}")
    stage_plan: StagePlan = optimal_stages(
        size, request.kernel_size, t, request.model, request.downsample, request.rf_side
    )
    relaxed = relaxed_stages(size, request.kernel_size, t, request.rf_side)
    layers = network_for_stages(request, stage_plan.stages)
    # The layers are generated here and valid by construction: skip the graph checks of `analyse`.
    analysis = analyse_chain(layers, size, request.in_channels)
    report = check_constraints(analysis, t, include_pointwise=False, rf_side=request.rf_side)
    return Plan(
        request=request,
        image_size=size,
        min_c_value=t,
        stages=stage_plan.stages,
        depth=stage_plan.depth,
        relaxed=relaxed,
        layers=layers,
        report=report,
    )
