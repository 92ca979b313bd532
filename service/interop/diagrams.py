"""Plan diagrams: receptive field per convolution against the image size, and c-value per convolution
against the minimum t, with stages shaded (matplotlib, rendered to SVG or PNG without pyplot)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from cnnplan.solver import ValidationReport, format_fraction
from cnnplan.solver.analysis import is_feature_conv
from cnnplan.solver.constraints import binding_axis

_OK, _BAD, _EXEMPT, _LIMIT = "#1f77b4", "#d62728", "#9e9e9e", "#2ca02c"
_STAGE_SHADES = ("#f2f2f2", "#ffffff")


def _compared_c(layer, include_pointwise: bool) -> float:
    """The c-value constraint 1 compares (its binding axis); the smaller axis for an exempt 1x1 conv."""
    axis = binding_axis(layer, include_pointwise)
    return float(layer.c_value[axis] if axis is not None else min(layer.c_value))


def report_figure(report: ValidationReport, title: str, spatial_only: bool = False) -> Figure:
    """Two stacked panels over the feature-level convolutions (x = depth 1..D): receptive field vs the
    image-side limit, and c-value vs t; each panel's violations in red, stages (by input jump) shaded.
    `spatial_only` leaves out the 1x1 convolutions (residual blocks' reduce, expand and projections)."""
    convs = [
        layer
        for layer in report.analysis.layers
        if is_feature_conv(layer) and (not spatial_only or max(layer.kernel_size) > 1)
    ]
    rf_violating = {v.layer for v in report.violations if v.constraint == "receptive_field"}
    violating = {v.layer for v in report.violations if v.constraint == "c_value"}
    depth = range(1, len(convs) + 1)
    figure = Figure(figsize=(9, 6.2), layout="constrained")
    rf_axes, c_axes = figure.subplots(2, 1, sharex=True, height_ratios=(1, 1))
    figure.suptitle(title, fontsize=12)
    stages = _stage_spans(convs)
    for axes in (rf_axes, c_axes):
        for number, (first, last, _count) in enumerate(stages, start=1):
            axes.axvspan(first - 0.5, last + 0.5, color=_STAGE_SHADES[number % 2], zorder=0)
            if number > 1:
                axes.axvline(first - 0.5, color="#777777", linewidth=0.8, linestyle=":", zorder=1)
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
    axis = 1 if report.top_axis == "width" else 0  # the axis that binds constraint 2
    limit = report.receptive_field_limit[axis]
    rf_values = [layer.receptive_field[axis] for layer in convs]
    rf_axes.plot(depth, rf_values, color="#555555", linewidth=1, zorder=2)
    rf_axes.scatter(
        depth, rf_values, c=[_BAD if layer.name in rf_violating else _OK for layer in convs], s=22, zorder=3
    )
    rf_axes.axhline(limit, color=_LIMIT, linewidth=1.6, linestyle="--", label=f"image side z = {limit}")
    top = max([limit, *rf_values])
    if top > 256 * min(rf_values, default=top):  # early layers would hug zero on a linear axis: use log
        rf_axes.set_yscale("log", base=2)
        rf_axes.set_ylim(1, top * 4)
        rf_axes.set_ylabel("receptive field (px, log scale)")
    else:
        rf_axes.set_ylim(0, top * 1.18)
        rf_axes.set_ylabel("receptive field (px)")
    label_y = rf_axes.get_ylim()[1] * (0.85 if rf_axes.get_yscale() == "log" else 0.97)
    for number, (first, last, count) in enumerate(stages, start=1):
        rf_axes.text(
            (first + last) / 2,
            label_y,
            f"stage {number}\n{count} conv",
            ha="center",
            va="top",
            fontsize=8,
            color="#444444",
        )
    rf_axes.legend(loc="center left", fontsize=8, frameon=False)
    t = report.min_c_value
    c_values = [_compared_c(layer, report.include_pointwise) for layer in convs]
    colours = [
        _BAD if layer.name in violating else (_OK if report.is_constrained(layer) else _EXEMPT) for layer in convs
    ]
    c_axes.plot(depth, c_values, color="#555555", linewidth=1, zorder=2)
    c_axes.scatter(depth, c_values, c=colours, s=22, zorder=3)
    c_axes.axhline(float(t), color=_LIMIT, linewidth=1.6, linestyle="--", label=f"minimum t = {format_fraction(t)}")
    c_axes.set_ylabel("c-value = real filter / r")
    c_axes.set_ylim(0, max([float(t), *c_values]) * 1.1)
    c_axes.set_xlabel("feature-level " + ("k x k " if spatial_only else "") + "convolution (depth)")
    if violating or rf_violating:
        c_axes.scatter([], [], c=_BAD, s=22, label="violates a constraint")
    if any(colour == _EXEMPT for colour in colours):
        c_axes.scatter([], [], c=_EXEMPT, s=22, label="1x1: exempt from c >= t")
    c_axes.legend(loc="upper right", fontsize=8, frameon=False)
    if len(convs) <= 40:
        c_axes.set_xticks(list(depth))
        c_axes.tick_params(axis="x", labelsize=7)
    verdict = "valid" if report.valid else f"{len(report.violations)} violation(s), shown in red"
    shown = f"{len(convs)} k x k convolutions of {report.depth}" if spatial_only else str(report.depth)
    rf_axes.set_title(f"depth {shown}, {verdict}, depth headroom {report.depth_headroom}", fontsize=9)
    return figure


def _stage_spans(convs: list) -> list[tuple[int, int, int]]:
    """(first depth, last depth, count) of each run of convolutions that share an input jump."""
    spans: list[tuple[int, int, int]] = []
    previous = None
    for position, layer in enumerate(convs, start=1):
        if layer.jump_in != previous:
            spans.append((position, position, 1))
            previous = layer.jump_in
        else:
            first, _, count = spans[-1]
            spans[-1] = (first, position, count + 1)
    return spans


def report_image(report: ValidationReport, title: str, image_format: str = "svg", spatial_only: bool = False) -> bytes:
    """The figure of `report_figure` as SVG (deterministic: fixed hash salt, no date) or PNG bytes."""
    if image_format not in ("svg", "png"):
        raise ValueError("image_format must be 'svg' or 'png'")
    figure = report_figure(report, title, spatial_only)
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "cnnplan", "svg.fonttype": "path"}):
        metadata = {"Date": None} if image_format == "svg" else {"Software": None}
        figure.savefig(buffer, format=image_format, metadata=metadata, dpi=110)
    return buffer.getvalue()


def write_report_image(report: ValidationReport, title: str, path: str, spatial_only: bool = False) -> None:
    """Write the diagram to `path`: PNG when it ends in .png, else SVG."""
    image_format = "png" if str(path).lower().endswith(".png") else "svg"
    with open(path, "wb") as handle:
        handle.write(report_image(report, title, image_format, spatial_only))


def plan_title(plan) -> str:
    """A one-line title for a plan's diagram: numbers and choices only."""
    height, width = plan.image_size
    request = plan.request
    style = "" if request.block == "plain" else f", {request.block} blocks"
    stem = "" if request.stem == "none" else f", stem {request.stem}"
    return (
        f"Plan for {height}x{width}: stages {tuple(plan.stages)}, k={request.kernel_size}, "
        f"{request.downsample} downsampling{style}{stem}"
    )


__all__ = ["plan_title", "report_figure", "report_image", "write_report_image"]
