"""A picture of dataset samples: a few images of every class of ``relations`` and ``multiscale``,
with the default options (the docs' picture; ``cnnplan experiment samples``)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnnplan.service.experiments import datasets


def _by_class(data: datasets.Dataset, count: int) -> list[list[int]]:
    return [list(np.flatnonzero(data.labels == label)[:count]) for label in range(data.num_classes)]


def samples_figure(image_size: int = 32, count: int = 4, seed: int = 0) -> Figure:
    """Two blocks of `count` rows: relations (A and B marked) and multiscale, one column per class."""
    relations = datasets.relations(40 * count, image_size, seed)
    multiscale = datasets.multiscale(40 * count, image_size, seed)
    blocks = [("relations", relations), ("multiscale", multiscale)]
    columns = max(data.num_classes for _, data in blocks)
    figure = Figure(figsize=(1.3 * columns, 1.35 * 2 * count + 0.8), layout="constrained")
    grid = figure.subplots(2 * count, columns, squeeze=False)
    for block, (name, data) in enumerate(blocks):
        for label, indices in enumerate(_by_class(data, count)):
            for row, index in enumerate(indices):
                axes = grid[block * count + row][label]
                axes.imshow(data.images[index, 0], cmap="gray", interpolation="nearest")
                if data.positions is not None:
                    for glyph, colour in zip(data.positions[index], ("#2ca02c", "#d62728")):
                        axes.add_patch(Rectangle(
                            (glyph[1] - 0.5, glyph[0] - 0.5), 5, 5, fill=False, edgecolor=colour, linewidth=0.8))  # fmt: skip
                if row == 0:
                    axes.set_title(f"{name}\n{data.class_names[label]}" if label == 0 else data.class_names[label],
                                   fontsize=7)  # fmt: skip
        for label in range(data.num_classes, columns):
            for row in range(count):
                grid[block * count + row][label].set_visible(False)
    for axes in grid.flat:
        axes.set_xticks([])
        axes.set_yticks([])
    figure.suptitle(f"Dataset samples (z = {image_size}, seed {seed}); relations: A boxed green, B red", fontsize=9)
    return figure


def samples_image(image_size: int = 32, count: int = 4, seed: int = 0, image_format: str = "png") -> bytes:
    """`samples_figure` rendered as PNG or SVG bytes."""
    buffer = io.BytesIO()
    samples_figure(image_size, count, seed).savefig(buffer, format=image_format, dpi=110)
    return buffer.getvalue()


__all__ = ["samples_figure", "samples_image"]
