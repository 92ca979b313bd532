"""The experiment datasets and architectures: deterministic per seed, labels that are the relation
(not a position), held-out test data, the variants' verdicts against the exact planner."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import numpy as np
import pytest

from cnnplan.service.experiments import datasets
from cnnplan.service.experiments.datasets import TEST, TRAIN, relation_class, relations
from cnnplan.service.experiments.spec import ExperimentInputError, experiment_data, experiment_spec
from cnnplan.service.experiments.variants import (
    VariantOptions,
    experiment_architectures,
    scaled_stages,
    too_long_stages,
)
from cnnplan.solver import WidthRule, make_plan
from cnnplan.solver.plan import PlanRequest


def _hashes(images: np.ndarray) -> set[str]:
    return {hashlib.sha256(image.tobytes()).hexdigest() for image in images}


@pytest.mark.parametrize("generate", [datasets.relations, datasets.multiscale])
def test_generators_are_deterministic_per_seed_and_split(generate) -> None:
    first, again = generate(64, 32, seed=5), generate(64, 32, seed=5)
    assert np.array_equal(first.images, again.images) and np.array_equal(first.labels, again.labels)
    other_seed, test_split = generate(64, 32, seed=6), generate(64, 32, seed=5, split=TEST)
    assert not np.array_equal(first.images, other_seed.images)
    assert not _hashes(first.images) & _hashes(test_split.images)
    assert first.images.shape == (64, 1, 32, 32) and first.images.dtype == np.float32
    assert set(np.unique(first.labels)) <= set(range(first.num_classes))


def test_relations_label_is_the_relation_of_b_to_a() -> None:
    data = relations(400, 32, seed=1, noise=0.0, distractors=3)
    shapes = datasets.glyphs(2 + 3, 5, 11)
    for image, label, (a, b) in zip(data.images, data.labels, data.positions):
        # the label is the direction x band of B's centre seen from A's (a function of the displacement only)
        assert relation_class(int(b[0] - a[0]), int(b[1] - a[1]), 4, 8.0, 16.0) == label
        # A and B are drawn where the positions say (noise 0: the glyphs are the image there)
        assert np.array_equal(image[0, a[0] : a[0] + 5, a[1] : a[1] + 5], shapes[0])
        assert np.array_equal(image[0, b[0] : b[0] + 5, b[1] : b[1] + 5], shapes[1])
    # every class occurs, about uniformly (8 classes of 400)
    assert np.bincount(data.labels, minlength=8).min() >= 30


def test_swapping_a_and_b_reverses_the_direction() -> None:
    for dy, dx in [(0, 9), (12, 3), (-20, 1), (5, -17), (4, 4 + 1)]:
        label = relation_class(dy, dx, 4, 8.0, 16.0)
        if label is None:
            continue
        direction, band = divmod(label, 2)
        assert relation_class(-dy, -dx, 4, 8.0, 16.0) == ((direction + 2) % 4) * 2 + band


def test_one_patterns_position_alone_is_near_chance() -> None:
    """Fit the best table from one glyph's position (4-pixel cells; which of the two glyphs it is unknown,
    as a model that has not composed the pair sees it) on training data; on test data it stays near chance,
    while the pair's displacement gives the label exactly (previous test)."""
    train, test = relations(4000, 32, seed=0, split=TRAIN), relations(2000, 32, seed=0, split=TEST)
    roles = np.random.default_rng(0)

    def cells(data: datasets.Dataset) -> list[tuple[int, int]]:
        picked = data.positions[np.arange(len(data.labels)), roles.integers(0, 2, len(data.labels))]
        return [tuple(int(v) for v in position // 4) for position in picked]

    table: dict[tuple[int, int], np.ndarray] = {}
    for cell, label in zip(cells(train), train.labels):
        table.setdefault(cell, np.zeros(8))[label] += 1
    predicted = np.array([np.argmax(table.get(cell, np.ones(8))) for cell in cells(test)])
    accuracy = float(np.mean(predicted == test.labels))
    assert accuracy < 1 / 8 + 0.12, accuracy  # chance is 0.125; the pair's relation gives 1.0


def test_multiscale_classes_are_layout_by_part() -> None:
    data = datasets.multiscale(200, 32, seed=2, noise=0.0, parts=2, layouts=4)
    shapes = datasets.glyphs(3, 3, 5, min_distance=3)
    assert data.num_classes == 8 and np.bincount(data.labels, minlength=8).min() > 10
    for image, label in zip(data.images[:40], data.labels[:40]):
        part = label % 2
        # six copies of the class's part (three clusters of two) and one distractor part: count exact matches
        windows = np.lib.stride_tricks.sliding_window_view(image[0], (3, 3))
        matches = [int((windows == shape).all(axis=(2, 3)).sum()) for shape in shapes]
        assert matches[part] >= 6 and matches[1 - part] == 0


def test_image_folder_reads_classes_resizes_and_splits(tmp_path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, level in (("cats", 40), ("dogs", 200)):
        (tmp_path / name).mkdir()
        for index in range(10):
            pixels = np.clip(level + rng.normal(0, 20, (48, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{index}.png")
    train = datasets.image_folder(tmp_path, 16, 100, seed=0, split=TRAIN)
    test = datasets.image_folder(tmp_path, 16, 100, seed=0, split=TEST)
    assert train.images.shape == (16, 1, 16, 16) and test.images.shape == (4, 1, 16, 16)
    assert train.class_names == ("cats", "dogs") and sorted(np.bincount(test.labels)) == [2, 2]
    assert not _hashes(train.images) & _hashes(test.images)
    again = datasets.image_folder(tmp_path, 16, 100, seed=0, split=TRAIN)
    assert np.array_equal(train.images, again.images)


def test_experiment_data_holds_out_the_test_set() -> None:
    spec = experiment_spec({"train_samples": 300, "test_samples": 200})
    train, test = experiment_data(spec)
    assert len(train.labels) == 300 and len(test.labels) == 200
    assert not _hashes(train.images) & _hashes(test.images)  # the model never trains on a test image
    expected = relations(200, 32, 0, TEST, **spec.dataset_options)
    assert np.array_equal(test.images, expected.images)


def test_variants_around_the_plan_have_the_expected_verdicts() -> None:
    widths = WidthRule(16, 2, 32)
    architectures = experiment_architectures(32, 8, 1, widths, Fraction(1, 6), VariantOptions())
    by_name = {a.name: a.summary() for a in architectures}
    plan = by_name["plan (7,4)"]  # the exact planner's optimum for z = 32 (docs/theory.md#exact-model)
    assert plan["valid"] and plan["depth"] == 11 and plan["top_receptive_field"] == (32, 32)
    assert by_name["(1,1)"]["groups"] == ["baseline"] and by_name["(1,1)"]["valid"]
    for name, summary in by_name.items():
        if any(group.startswith("too_deep") for group in summary["groups"]):
            assert summary["breaks"] == ["receptive_field"] and summary["depth"] > 11, name
        if any(group.startswith("too_long") for group in summary["groups"]):
            assert summary["breaks"] == ["c_value"] and summary["depth"] == 11, name
    swept = [a for a in architectures if a.t_values]
    for architecture in swept:
        for t in architecture.t_values:
            assert architecture.stages == make_plan(PlanRequest(image_size=32, min_c_value=t)).stages
    assert sorted(t for a in swept for t in a.t_values) == sorted(Fraction(1, n) for n in (4, 5, 6, 7, 8))
    assert len({a.layers for a in architectures}) == len(architectures)  # t = 1/6 is the plan, trained once
    assert too_long_stages((7, 4), 3) == (10, 1) and too_long_stages((7, 4), 4) == (11,)
    assert too_long_stages((4, 3, 1), 2) == (6, 2)
    assert scaled_stages((7, 4), Fraction(1, 4)) == (2, 1) and scaled_stages((7, 4), Fraction(3, 2)) == (11, 6)


def test_bad_experiment_inputs_name_the_field() -> None:
    with pytest.raises(ExperimentInputError) as error:
        experiment_spec({"dataset": "multiscale", "dataset_options": {"distractors": 3}})
    assert error.value.field == "dataset_options.distractors"
    with pytest.raises(ExperimentInputError) as error:
        experiment_spec({"architectures": [{"name": "vgg", "preset": "vgg16"}]})
    assert error.value.field == "architectures[0]"  # 1000 class scores for an 8-class dataset
    with pytest.raises(ExperimentInputError) as error:
        experiment_spec({"dataset": "image_folder", "dataset_options": {"folder": "../etc"}}, data_root="/tmp")
    assert error.value.field == "dataset_options.folder"


def test_aggregate_takes_mean_and_sample_std_over_succeeded_seeds() -> None:
    from cnnplan.service.experiments.figure import experiment_image
    from cnnplan.service.experiments.results import aggregate, format_table, run_record

    spec = experiment_spec({"variants": {"stage_scales": [], "too_deep": [], "too_long": [], "t_sweep": []}})
    runs = [run_record(spec, index, seed) for seed in (0, 1, 2) for index in range(len(spec.architectures))]
    for run, accuracy in zip(runs, (0.5, 0.2, 0.7, 0.3, 0.9, 0.4)):
        run.update(status="succeeded", test_accuracy=accuracy, train_accuracy=accuracy, test_loss=1.0,
                   train_loss=1.0, wall_seconds=2.0)  # fmt: skip
    runs[-1].update(status="failed", test_accuracy=None)  # a failed run is left out of the statistics
    result = aggregate(spec, runs, {"cpus": 2})
    plan, baseline = result["architectures"]
    assert plan["test_accuracy"]["n"] == 3 and plan["test_accuracy"]["mean"] == pytest.approx(0.7)
    assert plan["test_accuracy"]["std"] == pytest.approx(0.2)  # sample std of 0.5, 0.7, 0.9
    assert baseline["test_accuracy"]["n"] == 2 and baseline["test_accuracy"]["std"] == pytest.approx(0.0707107)
    assert result["plan"]["depth"] == 11 and result["chance_accuracy"] == 1 / 8
    assert "| plan (7,4) | planned | 11 | valid | 32 | 3/16 |" in format_table(result)
    svg = experiment_image(result).decode()
    assert "planner's depth D = 11" in svg and "(1,1) baseline" in svg


def test_merge_keeps_first_of_each_architecture_and_refuses_other_tasks() -> None:
    from cnnplan.service.experiments.results import aggregate, merge_results, run_record

    base = {"variants": {"stage_scales": [], "too_deep": [], "too_long": [], "t_sweep": []}}
    first = experiment_spec(base)
    sweep = experiment_spec({**base, "variants": {**base["variants"], "baseline": False, "t_sweep": ["1/5"]}})

    def finished(spec, accuracy):
        runs = [run_record(spec, index, 0) for index in range(len(spec.architectures))]
        for run in runs:
            run.update(status="succeeded", test_accuracy=accuracy, train_accuracy=accuracy, test_loss=1.0,
                       train_loss=1.0, wall_seconds=1.0)  # fmt: skip
        return aggregate(spec, runs, {})

    merged = merge_results([finished(first, 0.5), finished(sweep, 0.9)])
    assert [a["name"] for a in merged["architectures"]] == ["plan (7,4)", "(1,1)", "(6,4)"]
    assert [r["test_accuracy"] for r in merged["runs"]] == [0.5, 0.5, 0.9]  # the plan's first result is kept
    other = finished(experiment_spec({**base, "image_size": 64}), 0.5)
    with pytest.raises(ValueError, match="image_size"):
        merge_results([finished(first, 0.5), other])
