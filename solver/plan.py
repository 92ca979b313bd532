"""A complete plan: optimal stages, the concrete network (any block style, optional stem), its exact
analysis, its counts and, under a compute budget, the widest width rule that fits."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from .analysis import Analysis, ImageSize, LayerStats, analyse, analyse_chain, normalize_image_size
from .budget import BudgetChoice, choose_widths, network_counts
from .constraints import RfSide, ValidationReport, check_constraints, depth_headroom, is_constrained
from .errors import InfeasiblePlanError, InvalidLayerError, LimitExceededError
from .layers import Layer
from .limits import MAX_BUDGET, MAX_CHANNELS, MAX_EXPANSION
from .network import (
    DEFAULT_EXPANSION,
    WidthRule,
    block_layers,
    classifier_layers,
    feature_layers,
    feature_side,
    stem_layers,
)
from .planner import (
    SPATIAL_CONVS_PER_BLOCK,
    Block,
    Downsample,
    Model,
    RelaxedPlan,
    StagePlan,
    Stem,
    check_plan_inputs,
    optimal_stages,
    relaxed_stages,
    stem_state,
)


@dataclass(frozen=True)
class PlanRequest:
    """Everything a plan depends on; the defaults are the theory's (docs/theory.md)."""

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
    block: Block = "plain"
    stem: Stem = "none"
    expansion: int | None = None
    max_flops: int | None = None
    max_params: int | None = None


@dataclass(frozen=True)
class StemEffect:
    """What the stem did: the same request without a stem has this depth, these FLOPs and parameters."""

    depth_without_stem: int
    flops_without_stem: int
    params_without_stem: int


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
    widths: WidthRule = field(default_factory=WidthRule)
    stem_effect: StemEffect | None = None
    budget: BudgetChoice | None = None

    @property
    def top_receptive_field(self) -> int:
        """Receptive field of the topmost feature-level conv, by the exact arithmetic (the planner's square
        family has the same value on both axes; `report.top_receptive_field` holds the (h, w) pair)."""
        assert self.report.top_receptive_field is not None
        return max(self.report.top_receptive_field)

    @property
    def depth_headroom(self) -> int:
        """Spatial convolutions that whole blocks could still add to the last stage under both constraints:
        m // b * b, where m counts single k x k convs after the topmost k x k conv (docs/theory.md#constraints)
        and b is the block's spatial convs (2 for basic). The report's own headroom starts from the
        topmost conv of any kernel, which in bottleneck and inverted-residual blocks is a 1x1."""
        report = self.report
        if not report.valid:
            return 0
        spatial = [layer for layer in report.analysis.layers if is_constrained(layer)]
        top = None
        for layer in spatial:
            if top is None or layer.receptive_field >= top.receptive_field:
                top = layer
        if top is None:
            return 0
        per_block = SPATIAL_CONVS_PER_BLOCK[self.request.block]
        return depth_headroom(top, self.min_c_value, report.receptive_field_limit) // per_block * per_block

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


def network_for_stages(
    request: PlanRequest, stages: tuple[int, ...], widths: WidthRule | None = None, stem: str | None = None
) -> tuple[Layer, ...]:
    """Stem, feature layers for `stages` in the request's block style, then the classifier level sized
    from the last feature map (`widths` and `stem` default to the request's)."""
    widths = request.widths if widths is None else widths
    stem = request.stem if stem is None else stem
    size = normalize_image_size(request.image_size)
    start = stem_state(stem, request.kernel_size, size)
    front = stem_layers(stem, request.kernel_size, widths.width(1), request.batch_norm)
    if request.block == "plain":
        features = feature_layers(stages, request.kernel_size, request.downsample, widths, request.batch_norm)
        last_width = widths.width(len(stages))
    else:
        source = front[-1].name if front else "input"
        assert source is not None
        channels = widths.width(1) if front else request.in_channels
        features, last_width = block_layers(
            stages, request.kernel_size, request.downsample, widths, request.batch_norm, request.block, channels,
            request.expansion, source,
        )  # fmt: skip
    last_side = min(feature_side(side, len(stages), request.downsample) for side in start.size)
    classifier = classifier_layers(last_side, last_width, request.num_classes, request.dropout)
    if request.block != "plain":  # graph nodes: the classifier is fed by the last block
        first = classifier[0]
        classifier[0] = Layer(**{**first.__dict__, "inputs": (features[-1].name,)})
    return tuple(front + features + classifier)


def analyse_network(request: PlanRequest, layers: tuple[Layer, ...], size: tuple[int, int]) -> Analysis:
    """The exact analysis of a generated network: the chain fast path for plain styles, the graph walk
    (merges by the union of docs/theory.md#layer-arithmetic) for residual ones."""
    if request.block == "plain":
        # The layers are generated here and valid by construction: skip the graph checks of `analyse`.
        return analyse_chain(layers, size, request.in_channels)
    return analyse(layers, size, request.in_channels)


def _check_request(request: PlanRequest) -> None:
    if not isinstance(request.widths, WidthRule):
        raise InvalidLayerError("widths", f"must be a width rule (base, multiplier, max_width), got {request.widths!r}")
    if not isinstance(request.batch_norm, bool):
        raise InvalidLayerError("batch_norm", f"must be a boolean, got {request.batch_norm!r}")
    if request.expansion is not None:
        if request.block not in DEFAULT_EXPANSION:
            raise InvalidLayerError(
                "expansion", f"only bottleneck and inverted_residual blocks take an expansion, not {request.block!r}"
            )
        value = request.expansion
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXPANSION:
            raise InvalidLayerError("expansion", f"must be an integer in [1, {MAX_EXPANSION}], got {value!r}")
    factor = DEFAULT_EXPANSION.get(request.block, 1) if request.expansion is None else request.expansion
    widest = max(request.widths.max_width, request.in_channels if request.block == "inverted_residual" else 1)
    if widest * factor > MAX_CHANNELS:
        raise LimitExceededError(
            "expansion", f"{request.block} blocks would have {widest} x {factor} channels, more than {MAX_CHANNELS}"
        )
    for name in ("max_flops", "max_params"):
        value = getattr(request, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BUDGET
        ):
            raise InvalidLayerError(name, f"must be an integer in [1, 2^63], got {value!r}")


def make_plan(request: PlanRequest) -> Plan:
    """Optimise the stages (`plan_stages`), fit the widths to the budgets, build the network and analyse it exactly."""
    t = check_plan_inputs(
        request.kernel_size, request.min_c_value, request.model, request.downsample, request.block, request.stem
    )
    size = normalize_image_size(request.image_size)
    _check_request(request)
    stage_plan: StagePlan = optimal_stages(
        size, request.kernel_size, t, request.model, request.downsample, request.rf_side, request.block, request.stem
    )
    relaxed = relaxed_stages(size, request.kernel_size, t, request.rf_side)
    budget = None
    widths = request.widths
    if request.max_flops is not None or request.max_params is not None:

        def counts(rule: WidthRule) -> tuple[int, int]:
            return network_counts(network_for_stages(request, stage_plan.stages, rule), size, request.in_channels)

        budget = choose_widths(
            request.widths, {"max_flops": request.max_flops, "max_params": request.max_params}, counts
        )
        widths = budget.widths
    layers = network_for_stages(request, stage_plan.stages, widths)
    analysis = analyse_network(request, layers, size)
    report = check_constraints(analysis, t, include_pointwise=False, rf_side=request.rf_side)
    stem_convs = stem_state(request.stem, request.kernel_size, size).convs
    return Plan(
        request=request,
        image_size=size,
        min_c_value=t,
        stages=stage_plan.stages,
        depth=stage_plan.depth + stem_convs,
        relaxed=relaxed,
        layers=layers,
        report=report,
        widths=widths,
        stem_effect=None if request.stem == "none" else _stem_effect(request, size, t, widths),
        budget=budget,
    )


def _stem_effect(request: PlanRequest, size: tuple[int, int], t: Fraction, widths: WidthRule) -> StemEffect | None:
    """Depth, FLOPs and parameters of the same request (same widths) without the stem; None when that plan is infeasible."""
    try:
        stages = optimal_stages(
            size, request.kernel_size, t, request.model, request.downsample, request.rf_side, request.block, "none"
        ).stages
    except InfeasiblePlanError:
        return None
    analysis = analyse_network(request, network_for_stages(request, stages, widths, "none"), size)
    return StemEffect(sum(stages), analysis.flops, analysis.params)
