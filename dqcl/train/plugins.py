"""The Avalanche plugins dqcl adds to every strategy: augmentation, warm-up, an image count."""

from __future__ import annotations

import math

import torch
from avalanche.core import SupervisedPlugin

from ..cpnet.model import dihedral

__all__ = ["Augment", "Warmup", "ImageCount", "StepBudget", "OptimizerReset"]


class Augment(SupervisedPlugin):
    """Random flips and 90-degree rotations of each training minibatch (flows turned to match)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def before_forward(self, strategy, **kwargs) -> None:
        x, y = dihedral(strategy.mbatch[0], strategy.mbatch[1], self.generator)
        strategy.mbatch[0], strategy.mbatch[1] = x, y


class Warmup(SupervisedPlugin):
    """Ramp the learning rate linearly from 0 over the first steps of every experience.

    Cellpose warms up over its first 10 epochs; without it, a network trained on one domain
    and then hit by the large gradients of a very different one can collapse to predicting
    nothing at all.
    """

    def __init__(self, epochs: float, steps: int = 0) -> None:
        super().__init__()
        self.epochs = epochs
        self.steps = steps  # > 0: the warm-up lasts this many steps, whatever the experience's data
        self.step = 0
        self.base: list[float] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.step = 0
        self.base = [g["lr"] for g in strategy.optimizer.param_groups]
        self.total = self.steps if self.steps > 0 else max(1, int(round(self.epochs * len(strategy.dataloader))))

    def before_training_iteration(self, strategy, **kwargs) -> None:
        scale = min(1.0, (self.step + 1) / self.total) if self.epochs > 0 or self.steps > 0 else 1.0
        for g, lr in zip(strategy.optimizer.param_groups, self.base):
            g["lr"] = lr * scale
        self.step += 1

    def after_training_exp(self, strategy, **kwargs) -> None:
        for g, lr in zip(strategy.optimizer.param_groups, self.base):
            g["lr"] = lr


class ImageCount(SupervisedPlugin):
    """Counts the images of the training batches (replay memories mixed into the data count; the extra
    memory passes of DER++, A-GEM and GEM do not)."""

    def __init__(self) -> None:
        super().__init__()
        self.images = 0

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.images += len(strategy.mb_x)


class StepBudget(SupervisedPlugin):
    """Train every experience for exactly ``steps`` optimiser steps, however large its data.

    The epochs Avalanche runs are set from the experience's data loader (replay makes it
    longer, so fewer epochs), and training stops at the step budget. ``steps_done`` keeps the
    steps each experience took.
    """

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.done = 0
        self.steps_done: list[int] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.done = 0
        strategy._stop_training = False  # a budget that ended exactly at an epoch's end leaves the flag set
        strategy.train_epochs = max(1, math.ceil(self.steps / max(1, len(strategy.dataloader))))

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.done += 1
        if self.done >= self.steps:
            strategy.stop_training()

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.steps_done.append(self.done)


class OptimizerReset(SupervisedPlugin):
    """Start every experience with fresh optimiser state: no momentum carried from the last domain.

    Cellpose's own training builds a new optimiser for every call; every strategy gets the same.
    """

    def before_training_exp(self, strategy, **kwargs) -> None:
        strategy.optimizer.state.clear()
