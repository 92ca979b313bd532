"""Seeded image-classification datasets made in-process (no downloads), and a user's image folder.

Every generator is a pure function of its arguments: the same ``(size, seed, ...)`` gives the same
arrays, bit for bit (numpy's PCG64 stream seeded with ``[seed, split]``), so the train and test sets of
an experiment are two independent streams of one task and never share a sample. Images are float32
``[n, 1, z, z]`` (zero-mean noise background, patterns added with amplitude 1); labels int64 ``[n]``.

``relations`` is the seed's figure 2 as a task: two patterns A and B, the class is the spatial relation
of B to A (direction x distance band), among distractor patterns that look alike. ``multiscale``
composes parts at two scales: the class is (coarse layout of three clusters) x (the part they are
built of). ``image_folder`` reads a class-per-sub-folder tree with torchvision's ``ImageFolder``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TRAIN, TEST = 0, 1
"""The split index mixed into the seed: the test stream is independent of the training stream."""

_GLYPH_SEED = 20_171_104
"""The glyph shapes are part of the task's definition, not of a sample: fixed, whatever the seed."""


@dataclass(frozen=True)
class Dataset:
    """Images ``[n, channels, z, z]`` (float32), labels ``[n]`` (int64) and per-sample facts for checks.

    ``positions`` (relations only): the top-left corners ``[n, 2, 2]`` of A and B as (row, column)."""

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    positions: np.ndarray | None = field(default=None, repr=False)


def _rng(seed: int, split: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(split)])


def glyphs(count: int, size: int, pixels: int, min_distance: int = 4) -> np.ndarray:
    """`count` distinct binary `size` x `size` patterns with exactly `pixels` on, pairwise Hamming
    distance >= `min_distance` (same ink, different arrangement: telling them apart takes the whole
    pattern); deterministic. Raises ValueError when the constraints cannot be met."""
    if not 1 <= pixels < size * size:
        raise ValueError(f"pixels must be in [1, {size * size - 1}], got {pixels}")
    rng = np.random.default_rng([_GLYPH_SEED, size, pixels])
    chosen: list[np.ndarray] = []
    for _ in range(20_000):
        if len(chosen) == count:
            break
        candidate = np.zeros(size * size, dtype=np.float32)
        candidate[rng.choice(size * size, pixels, replace=False)] = 1
        if all(np.abs(candidate - other).sum() >= min_distance for other in chosen):
            chosen.append(candidate)
    if len(chosen) < count:
        raise ValueError(f"cannot make {count} glyphs of {size}x{size} with {pixels} pixels {min_distance} apart")
    return np.stack(chosen).reshape(count, size, size)


def relation_class(dy: int, dx: int, directions: int, near: float, far: float) -> int | None:
    """The class of a displacement (rows `dy` down, columns `dx` right) of B's centre from A's:
    ``direction * 2 + band``; direction = the sector of ``atan2(dy, dx)`` (sector 0 centred on "right",
    sector 1 on "down" with 4 sectors: rows grow downwards), band 0 = near (distance <= `near`), 1 = far
    (distance >= `far`); None in the gap between the bands or within 7.5 degrees of a sector edge."""
    distance = math.hypot(dy, dx)
    if near < distance < far:
        return None
    band = 0 if distance <= near else 1
    width = 2 * math.pi / directions
    angle = (math.atan2(dy, dx) + width / 2) % (2 * math.pi)
    sector = int(angle // width) % directions
    offset = angle - sector * width
    margin = math.radians(7.5)
    if offset < margin or offset > width - margin:
        return None
    return sector * 2 + band


def _direction_names(directions: int) -> tuple[str, ...]:
    if directions == 4:
        return ("right", "down", "left", "up")
    return tuple(f"{round(360 * i / directions)}deg" for i in range(directions))


def _free(occupied: list[tuple[int, int]], row: int, col: int, size: int) -> bool:
    """No overlap (with a one-pixel gap) with the glyphs whose corners are `occupied`."""
    return all(abs(row - r) > size or abs(col - c) > size for r, c in occupied)


def relations(
    samples: int,
    image_size: int = 32,
    seed: int = 0,
    split: int = TRAIN,
    noise: float = 0.3,
    glyph_size: int = 5,
    glyph_pixels: int = 11,
    distractors: int = 2,
    directions: int = 4,
) -> Dataset:
    """The relation of two patterns, A and B, among `distractors` look-alike patterns on Gaussian noise
    (std `noise`, patterns of amplitude 1). Class (uniform) = direction of B from A (`directions`
    sectors) x distance band (near: centre distance <= z/4; far: >= z/2); A, B and the distractors are
    distinct glyphs with the same ink (`glyph_pixels` of `glyph_size`^2). Positions are drawn by
    rejection: A uniform, B at a uniform angle in the class's sector and a uniform distance in its
    band (far up to the image's diagonal), kept when inside and clear of the sector edges.
    Raises ValueError on sizes that leave no room."""
    if glyph_size * 3 > image_size:
        raise ValueError(f"image_size must be at least 3 x glyph_size = {3 * glyph_size}, got {image_size}")
    rng = _rng(seed, split)
    shapes = glyphs(2 + max(distractors, 1), glyph_size, glyph_pixels)
    classes = 2 * directions
    near, far = max(image_size / 4, glyph_size + 1.5), image_size / 2
    span = image_size - glyph_size
    images = (noise * rng.standard_normal((samples, 1, image_size, image_size))).astype(np.float32)
    labels = rng.integers(0, classes, samples)
    positions = np.zeros((samples, 2, 2), dtype=np.int64)
    for index in range(samples):
        label = int(labels[index])
        sector, band = divmod(label, 2)
        width = 2 * math.pi / directions
        low, high = (glyph_size + 1.0, near) if band == 0 else (far, math.hypot(span, span))
        while True:
            a = rng.integers(0, span + 1, 2)
            angle = (sector + rng.uniform(-0.5, 0.5)) * width
            distance = rng.uniform(low, high)
            b = np.rint(a + distance * np.array([math.sin(angle), math.cos(angle)])).astype(np.int64)
            if b.min() < 0 or b.max() > span or not _free([(int(a[0]), int(a[1]))], int(b[0]), int(b[1]), glyph_size):
                continue
            if relation_class(int(b[0] - a[0]), int(b[1] - a[1]), directions, near, far) == label:
                break
        positions[index] = (a, b)
        occupied = [(int(a[0]), int(a[1])), (int(b[0]), int(b[1]))]
        for _ in range(distractors):
            for _attempt in range(50):
                row, col = (int(v) for v in rng.integers(0, span + 1, 2))
                if _free(occupied, row, col, glyph_size):
                    occupied.append((row, col))
                    break
        for slot, (row, col) in enumerate(occupied):
            shape = shapes[slot] if slot < 2 else shapes[2 + int(rng.integers(0, len(shapes) - 2))]
            images[index, 0, row : row + glyph_size, col : col + glyph_size] += shape
    names = tuple(f"{d}-{b}" for d in _direction_names(directions) for b in ("near", "far"))
    return Dataset(images, labels.astype(np.int64), classes, names, positions)


_LAYOUTS = (
    ((0.0, -1.0), (0.0, 0.0), (0.0, 1.0)),  # horizontal line
    ((-1.0, 0.0), (0.0, 0.0), (1.0, 0.0)),  # vertical line
    ((-1.0, -1.0), (0.0, 0.0), (1.0, 1.0)),  # diagonal
    ((-1.0, 0.0), (1.0, -1.0), (1.0, 1.0)),  # triangle (apex up)
)
"""Coarse layouts: three cluster centres in units of the layout's radius (row, column)."""


def multiscale(
    samples: int,
    image_size: int = 32,
    seed: int = 0,
    split: int = TRAIN,
    noise: float = 0.3,
    parts: int = 2,
    layouts: int = 4,
    glyph_size: int = 3,
    glyph_pixels: int = 5,
) -> Dataset:
    """Parts composed at two scales. Fine scale: each of three clusters is two copies of one part glyph
    (`parts` kinds of `glyph_size`^2, same ink) side by side; coarse scale: the clusters sit on one of
    `layouts` arrangements (line across, line down, diagonal, triangle) of random radius, centre and
    mirror. Class = layout x part (``layout * parts + part``, uniform); one glyph of a further part is
    added, clear of the clusters, as a distractor. Raises ValueError on sizes that leave no room."""
    if not 1 <= layouts <= len(_LAYOUTS):
        raise ValueError(f"layouts must be in [1, {len(_LAYOUTS)}], got {layouts}")
    if image_size < 8 * glyph_size:
        raise ValueError(f"image_size must be at least 8 x glyph_size = {8 * glyph_size}, got {image_size}")
    rng = _rng(seed, split)
    shapes = glyphs(parts + 1, glyph_size, glyph_pixels, min_distance=3)
    classes = layouts * parts
    cluster = (glyph_size, 2 * glyph_size + 1)  # (rows, columns) of two glyphs with a one-pixel gap
    images = (noise * rng.standard_normal((samples, 1, image_size, image_size))).astype(np.float32)
    labels = rng.integers(0, classes, samples)
    for index in range(samples):
        layout, part = divmod(int(labels[index]), parts)
        half = (image_size - cluster[1]) / 2
        while True:
            radius = rng.uniform(cluster[1] + 1, half)
            centre = rng.uniform(cluster[1] / 2 + radius, image_size - cluster[1] / 2 - radius, 2)
            mirror = rng.choice((-1.0, 1.0))
            corners = [
                (int(round(centre[0] + radius * r - cluster[0] / 2)), int(round(centre[1] + mirror * radius * c - cluster[1] / 2)))
                for r, c in _LAYOUTS[layout]
            ]  # fmt: skip
            inside = all(0 <= r <= image_size - cluster[0] and 0 <= c <= image_size - cluster[1] for r, c in corners)
            if inside:
                break
        for row, col in corners:
            for copy in range(2):
                left = col + copy * (glyph_size + 1)
                images[index, 0, row : row + glyph_size, left : left + glyph_size] += shapes[part]
        for _attempt in range(50):  # the distractor part (never a class's part), clear of the clusters
            row, col = (int(v) for v in rng.integers(0, image_size - glyph_size + 1, 2))
            if all(row > r + cluster[0] or row + glyph_size < r or col > c + cluster[1] or col + glyph_size < c
                   for r, c in corners):  # fmt: skip
                break
        other = parts
        images[index, 0, row : row + glyph_size, col : col + glyph_size] += shapes[other]
    names = tuple(
        f"{name}-part{p}" for name in ("row", "column", "diagonal", "triangle")[:layouts] for p in range(parts)
    )
    return Dataset(images, labels.astype(np.int64), classes, names)


def image_folder(root: Path, image_size: int, samples: int, seed: int = 0, split: int = TRAIN) -> Dataset:
    """A class-per-sub-folder image tree read with torchvision's ``ImageFolder`` (Pillow decoding),
    converted to grayscale, resized (shorter side) and centre-cropped to `image_size`, standardised per
    image. Files are split 80/20 into train/test by a permutation of `seed` (stratified: per class),
    so the two splits never share a file; up to `samples` of the chosen split, in a seeded order.
    Raises ValueError when the folder has fewer than two classes or a class has no test file."""
    from cnnplan.service.interop.torch_compat import import_torchvision

    torchvision = import_torchvision()
    transforms = torchvision.transforms
    transform = transforms.Compose(
        [
            transforms.Grayscale(),
            transforms.Resize(image_size),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
        ]
    )
    folder = torchvision.datasets.ImageFolder(str(root), transform=transform)
    if len(folder.classes) < 2:
        raise ValueError(f"{root} must hold at least two class sub-folders, found {len(folder.classes)}")
    rng = np.random.default_rng([int(seed), 7])
    targets = np.asarray(folder.targets)
    chosen: list[int] = []
    for label in range(len(folder.classes)):
        members = rng.permutation(np.flatnonzero(targets == label))
        test_count = max(1, len(members) // 5)
        if len(members) < 2:
            raise ValueError(f"class {folder.classes[label]!r} needs at least 2 images, has {len(members)}")
        chosen += list(members[:test_count] if split == TEST else members[test_count:])
    order = np.random.default_rng([int(seed), 11, split]).permutation(np.asarray(chosen))[:samples]
    images = np.stack([folder[int(i)][0].numpy() for i in order]).astype(np.float32)
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    std = images.std(axis=(1, 2, 3), keepdims=True) + 1e-6
    return Dataset((images - mean) / std, targets[order].astype(np.int64), len(folder.classes), tuple(folder.classes))


__all__ = ["TEST", "TRAIN", "Dataset", "glyphs", "image_folder", "multiscale", "relation_class", "relations"]
