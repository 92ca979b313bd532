"""Train one architecture on one seed and measure it on held-out data (one run of an experiment).

The recipe is the usual small-data one: mini-batch training with AdamW (or SGD with Nesterov
momentum) for `epochs` passes over the shuffled training set, a per-step learning-rate schedule
(cosine to zero, one-cycle, or constant), cross-entropy loss. The seed fixes the weights' initialisation
and the batch order (``torch.manual_seed``); the data are the seeded datasets of
`cnnplan.service.experiments.datasets`. Accuracy is measured in eval mode on the test split, which the
model never trains on; train accuracy and loss are measured the same way on the training split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnplan.service.worker.builder import build_model
from cnnplan.solver import Layer


class RunCancelled(Exception):
    """Raised between steps when the run's job was cancelled or taken over."""


@dataclass(frozen=True)
class Recipe:
    """How to train: the API checks the ranges (`cnnplan.service.worker.experiment_jobs`)."""

    epochs: int = 6
    batch_size: int = 64
    optimizer: str = "adamw"
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    threads: int = 1
    device: str = "auto"


def _device(name: str) -> torch.device:
    """``auto`` -> CUDA when the worker has it, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps: int):
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    if recipe.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.learning_rate, total_steps=max(steps, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=recipe.learning_rate, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay
        )
    return torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)


@torch.no_grad()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of `model` in eval mode over the whole set."""
    model.eval()
    correct, loss = 0, 0.0
    for start in range(0, len(labels), batch_size):
        logits = model(images[start : start + batch_size])
        target = labels[start : start + batch_size]
        loss += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(1) == target).sum())
    return correct / max(len(labels), 1), loss / max(len(labels), 1)


def train_run(
    layers: Sequence[Layer],
    image_size: int,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    recipe: Recipe,
    seed: int,
    progress: Callable[[float], None] = lambda _fraction: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict[str, float | int | str]:
    """Train `layers` (a classifier for ``train``'s classes, in_channels from the images) from seed
    `seed`; test/train accuracy and loss, parameters, FLOPs and wall seconds. Calls `progress` with
    the fraction of steps done; raises `RunCancelled` when `cancelled()` turns true between steps."""
    started = time.perf_counter()
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(seed)
    device = _device(recipe.device)
    train_x, train_y = torch.from_numpy(train[0]).to(device), torch.from_numpy(train[1]).to(device)
    test_x, test_y = torch.from_numpy(test[0]).to(device), torch.from_numpy(test[1]).to(device)
    model, analysis = build_model(layers, image_size, int(train_x.shape[1]))
    model = model.to(device)
    optimizer = _optimizer(model, recipe)
    steps_per_epoch = -(-len(train_y) // recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    scheduler = _scheduler(optimizer, recipe, total)
    generator = torch.Generator().manual_seed(seed)
    step = 0
    for _epoch in range(recipe.epochs):
        model.train()
        order = torch.randperm(len(train_y), generator=generator).to(device)
        for start in range(0, len(order), recipe.batch_size):
            if cancelled():
                raise RunCancelled
            batch = order[start : start + recipe.batch_size]
            loss = nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            progress(step / total)
    test_accuracy, test_loss = evaluate(model, test_x, test_y)
    train_accuracy, train_loss = evaluate(model, train_x, train_y)
    return {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "train_accuracy": train_accuracy,
        "train_loss": train_loss,
        "params": analysis.params,
        "flops": analysis.flops,
        "wall_seconds": time.perf_counter() - started,
        "device": str(device),
    }


__all__ = ["Recipe", "RunCancelled", "evaluate", "train_run"]
