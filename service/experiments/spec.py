"""An experiment request (stored JSON) turned into what runs: its dataset, recipe and architectures.

Both the API (to reject a bad request with a 422 before anything is queued) and the worker (to train
one architecture x seed) go through `experiment_spec`, so they agree on the list of architectures and
their order; a run names its architecture by index into that list.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from cnnplan.service.experiments import datasets
from cnnplan.service.experiments.schemas import ExperimentRequest, UserArchitecture
from cnnplan.service.experiments.variants import Architecture, VariantOptions, experiment_architectures
from cnnplan.service.problems import ProblemError
from cnnplan.solver import WidthRule
from cnnplan.solver.errors import SolverError

IN_CHANNELS = 1
"""Every dataset is grayscale (the generators draw one channel; image folders are converted)."""

_OPTIONS = {
    "relations": ("noise", "distractors", "glyph_size", "glyph_pixels", "directions"),
    "multiscale": ("noise", "parts", "layouts", "glyph_size", "glyph_pixels"),
    "image_folder": ("folder",),
}


class ExperimentInputError(ValueError):
    """A request that cannot run: `field` names the offending request field; `code` is the problem's
    (``invalid_input``, or the solver error's own)."""

    def __init__(self, field: str, reason: str, code: str = "invalid_input") -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.code = field, reason, code


@dataclass(frozen=True)
class ExperimentSpec:
    request: ExperimentRequest
    num_classes: int
    dataset_options: dict[str, Any]
    architectures: list[Architecture]


def _fraction(value: Any) -> Fraction:
    return value if isinstance(value, Fraction) else Fraction(str(value))


def folder_path(request: ExperimentRequest, root: str | None) -> Path:
    """The image folder of an ``image_folder`` request: `folder` under `root`, never outside it."""
    folder = request.dataset_options.folder
    if not root:
        raise ExperimentInputError("dataset", "image_folder needs CNNPLAN_EXPERIMENT_DATA_ROOT set on the server")
    if folder is None:
        raise ExperimentInputError("dataset_options.folder", "is required for the image_folder dataset")
    base = Path(root).resolve()
    path = (base / folder).resolve()
    if Path(folder).is_absolute() or not path.is_relative_to(base):
        raise ExperimentInputError("dataset_options.folder", "must be a relative path inside the data root")
    if not path.is_dir():
        raise ExperimentInputError("dataset_options.folder", f"{folder!r} is not a folder under the data root")
    return path


def _class_count(request: ExperimentRequest, options: dict[str, Any], root: str | None) -> int:
    if request.dataset == "relations":
        return 2 * int(options.get("directions", 4))
    if request.dataset == "multiscale":
        return int(options.get("parts", 2)) * int(options.get("layouts", 4))
    path = folder_path(request, root)
    classes = [entry for entry in os.scandir(path) if entry.is_dir()]
    if len(classes) < 2:
        raise ExperimentInputError(
            "dataset_options.folder", f"needs at least two class sub-folders, found {len(classes)}"
        )
    return len(classes)


def _dataset_options(request: ExperimentRequest) -> dict[str, Any]:
    given = request.dataset_options.model_dump(exclude_none=True)
    allowed = _OPTIONS[request.dataset]
    for name in given:
        if name not in allowed:
            raise ExperimentInputError(f"dataset_options.{name}", f"is not an option of the {request.dataset} dataset")
    if request.dataset == "image_folder":
        return given
    defaults = inspect.signature(getattr(datasets, request.dataset)).parameters
    return {name: given.get(name, defaults[name].default) for name in allowed}


def _user_layers(index: int, body: UserArchitecture, request: ExperimentRequest, classes: int):
    from cnnplan.service.convert import architecture_of
    from cnnplan.solver.analysis import analyse

    field = f"architectures[{index}]"
    validate_body = body.model_copy(update={"image_size": (request.image_size, request.image_size),
                                            "in_channels": IN_CHANNELS})  # fmt: skip
    try:
        layers, _size, _field = architecture_of(validate_body)
        outputs = analyse(layers, request.image_size, IN_CHANNELS).layers[-1].out_channels
    except SolverError as error:
        raise ExperimentInputError(f"{field}.{error.field}", error.reason, error.code) from None
    except ProblemError as error:
        raise ExperimentInputError(f"{field}.{error.field or 'layers'}", error.reason or error.detail) from None
    if outputs != classes:
        raise ExperimentInputError(field, f"its last layer outputs {outputs} values; the dataset has {classes} classes")
    return body.name, layers


def experiment_spec(request: ExperimentRequest | Mapping[str, Any], data_root: str | None = None) -> ExperimentSpec:
    """The dataset options, class count and architectures of `request`; raises `ExperimentInputError`."""
    if not isinstance(request, ExperimentRequest):
        request = ExperimentRequest.model_validate(dict(request))
    options = _dataset_options(request)
    classes = _class_count(request, options, data_root)
    variants = request.variants
    variant_options = VariantOptions(
        stage_scales=tuple(_fraction(s) for s in variants.stage_scales),
        too_deep=tuple(variants.too_deep),
        too_long=tuple(variants.too_long),
        baseline=variants.baseline,
        t_sweep=tuple(_fraction(t) for t in variants.t_sweep),
    )
    for index, extra in enumerate(variants.too_deep):
        if not 1 <= extra <= 64:
            raise ExperimentInputError(f"variants.too_deep[{index}]", f"must be in [1, 64], got {extra}")
    for index, moved in enumerate(variants.too_long):
        if not 1 <= moved <= 256:
            raise ExperimentInputError(f"variants.too_long[{index}]", f"must be in [1, 256], got {moved}")
    for index, scale in enumerate(variant_options.stage_scales):
        if not Fraction(1, 16) <= scale <= 8:
            raise ExperimentInputError(f"variants.stage_scales[{index}]", f"must be in [1/16, 8], got {scale}")
    user = [_user_layers(i, body, request, classes) for i, body in enumerate(request.architectures)]
    w = request.widths
    try:
        architectures = experiment_architectures(
            request.image_size, classes, IN_CHANNELS, WidthRule(w.base, w.multiplier, w.max_width),
            _fraction(request.min_c_value), variant_options, user,
        )  # fmt: skip
    except SolverError as error:
        raise ExperimentInputError(error.field, error.reason, error.code) from None
    return ExperimentSpec(request, classes, options, architectures)


@functools.lru_cache(maxsize=2)
def _cached_dataset(key: str, data_root: str | None) -> tuple[datasets.Dataset, datasets.Dataset]:
    values = json.loads(key)
    name, size, seed = values["dataset"], values["image_size"], values["data_seed"]
    options = values["options"]
    if name == "image_folder":
        path = folder_path(ExperimentRequest.model_validate(values["request"]), data_root)
        make: Callable[..., datasets.Dataset] = functools.partial(datasets.image_folder, path, size)
        return make(values["train"], seed, datasets.TRAIN), make(values["test"], seed, datasets.TEST)
    generate = getattr(datasets, name)
    train = generate(values["train"], size, seed, datasets.TRAIN, **options)
    test = generate(values["test"], size, seed, datasets.TEST, **options)
    return train, test


def experiment_data(spec: ExperimentSpec, data_root: str | None = None) -> tuple[datasets.Dataset, datasets.Dataset]:
    """(train, test) of the experiment: two independent streams of its seeded dataset (cached per process)."""
    request = spec.request
    key = json.dumps(
        {"dataset": request.dataset, "image_size": request.image_size, "data_seed": request.data_seed,
         "options": spec.dataset_options, "train": request.train_samples, "test": request.test_samples,
         "request": request.model_dump(mode="json", warnings=False) if request.dataset == "image_folder" else None},
        sort_keys=True,
    )  # fmt: skip
    return _cached_dataset(key, data_root)


def run_architecture(
    spec: ExperimentSpec,
    index: int,
    seed: int,
    data_root: str | None = None,
    progress: Callable[[float], None] = lambda _fraction: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Train architecture `index` of `spec` from `seed`: the run's measurements (see `train_run`)."""
    from cnnplan.service.experiments.training import Recipe, train_run

    request = spec.request
    train, test = experiment_data(spec, data_root)
    recipe = Recipe(
        epochs=request.epochs, batch_size=request.batch_size, optimizer=request.optimizer,
        learning_rate=request.learning_rate, weight_decay=request.weight_decay, schedule=request.schedule,
        threads=request.threads, device=request.device,
    )  # fmt: skip
    architecture = spec.architectures[index]
    return train_run(
        architecture.layers, request.image_size, (train.images, train.labels), (test.images, test.labels),
        recipe, seed, progress, cancelled,
    )  # fmt: skip


__all__ = ["IN_CHANNELS", "ExperimentInputError", "ExperimentSpec", "experiment_data", "experiment_spec",
           "folder_path", "run_architecture"]  # fmt: skip
