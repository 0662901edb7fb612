"""The Avalanche plugins dqcl adds to every strategy: augmentation, warm-up, an image count."""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from avalanche.core import SupervisedPlugin

from ..cpnet.model import dihedral

__all__ = ["Augment", "Warmup", "ImageCount", "StepBudget", "OptimizerReset", "ComputeCount"]


class Augment(SupervisedPlugin):
    """Random flips and 90-degree rotations of each training minibatch (flows turned to match)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def before_forward(self, strategy, **kwargs) -> None:
        x, y = dihedral(strategy.mbatch[0], strategy.mbatch[1], self.generator)
        strategy.mbatch[0], strategy.mbatch[1] = x, y


SCHEDULES = ("constant", "cosine", "step")


def schedule_factor(schedule: str, t: int, warm: int, total: int) -> float:
    """The learning rate's factor at step ``t`` (0-based) of an experience of ``total`` steps whose first
    ``warm`` steps ramp it up linearly from 0: then 1 ("constant"), a cosine from 1 to 0 over the steps after
    the warm-up ("cosine"), or 1, 0.1 from half the experience and 0.01 from three quarters ("step")."""
    if warm > 0 and t < warm:
        return (t + 1) / warm
    if schedule == "cosine":
        rest = max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (t - warm) / rest)))
    if schedule == "step":
        return 0.1 ** ((t >= total / 2) + (t >= 3 * total / 4))
    return 1.0


class Warmup(SupervisedPlugin):
    """The learning rate of every experience: a linear ramp from 0 over its first steps, then as
    ``schedule`` says (`schedule_factor`: constant, cosine or step decay over the experience's steps).

    Cellpose warms up over its first 10 epochs; without it, a network trained on one domain
    and then hit by the large gradients of a very different one can collapse to predicting
    nothing at all. The schedule restarts with every experience, so a run resumed from the
    checkpoint after an experience follows the same rates as one that never stopped. ``budget``:
    the run's step budget (`StepBudget`), whose steps are an experience's length; without one, an
    experience lasts its epochs times its batches.
    """

    def __init__(self, epochs: float, steps: int = 0, schedule: str = "constant", budget: "StepBudget | None" = None) -> None:
        super().__init__()
        self.epochs = epochs
        self.steps = steps  # > 0: the warm-up lasts this many steps, whatever the experience's data
        self.schedule = schedule
        self.budget = budget
        self.step = 0
        self.base: list[float] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.step = 0
        self.base = [g["lr"] for g in strategy.optimizer.param_groups]
        self.total = self.steps if self.steps > 0 else max(1, int(round(self.epochs * len(strategy.dataloader))))

    def before_training_iteration(self, strategy, **kwargs) -> None:
        warm = self.total if self.epochs > 0 or self.steps > 0 else 0
        if self.schedule == "constant":
            scale = min(1.0, (self.step + 1) / warm) if warm else 1.0
        else:  # the experience's length, known once the step budget has set its epochs
            length = self.budget.steps if self.budget is not None else strategy.train_epochs * len(strategy.dataloader)
            scale = schedule_factor(self.schedule, self.step, warm, length)
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


class SkipFirst(SupervisedPlugin):
    """The first experience trains no step (``train.skip_first``: the network already knows that domain, as a
    user's Cellpose model knows its old images); everything else a strategy does at an experience's end still
    happens on it: a memory is filled from it, importances are taken on it. Added after every plugin that sets
    the epochs (the step budget), so that its zero wins."""

    def __init__(self) -> None:
        super().__init__()
        self._epochs: int | None = None

    def before_training_exp(self, strategy, **kwargs) -> None:
        if strategy.clock.train_exp_counter == 0:
            self._epochs, strategy.train_epochs = strategy.train_epochs, 0

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self._epochs is not None:
            strategy.train_epochs, self._epochs = self._epochs, None


class OptimizerReset(SupervisedPlugin):
    """Start every experience with fresh optimiser state: no momentum carried from the last domain.

    Cellpose's own training builds a new optimiser for every call; every strategy gets the same.
    """

    def before_training_exp(self, strategy, **kwargs) -> None:
        strategy.optimizer.state.clear()


_REFERENCE = [0]  # reference passes under way (`reference_pass`)


@contextmanager
def reference_pass():
    """A pass on memory samples that is no part of the step's batch (A-GEM's reference gradient at the
    paper's 256 samples, GEM's constraints on its whole memory): `ComputeCount` counts its samples as
    forwarded and backpropagated (and as ``reference_backward``), not among the step's samples."""
    _REFERENCE[0] += 1
    try:
        yield
    finally:
        _REFERENCE[0] -= 1


class ComputeCount(SupervisedPlugin):
    """Counts what training costs: samples forwarded, samples backpropagated, optimiser steps.

    A forward pre-hook on the network counts every batch it is given while the strategy
    trains (scoring is not counted); a batch forwarded with gradients on counts as
    backpropagated. Samples inside a step (from the loader's batch to the optimiser step:
    replayed memory, DER++'s memory outputs, A-GEM's and GEM's reference passes) are told
    apart from passes between steps (EWC's Fisher, MAS's and SI's importances, DQ's and
    herding's selection); a network copied from this one keeps the hooks and is counted too.
    A pass through the encoder alone (``net.downsample``, not entered through the network: LwF's
    teacher features) counts its samples as forwarded; inside a whole pass the encoder is not
    counted twice. ``per_step`` gives the fewest and most samples backpropagated in one step. A pass
    inside `reference_pass` counts as forwarded and backpropagated and as ``reference_backward``, never
    among a step's samples.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tally = {"steps": 0, "forward": 0, "backward": 0, "step_forward": 0, "step_backward": 0,
                      "per_step": [0, 0]}
        self._active = False
        self._in_step = False
        self._step_backward = 0
        self._hooked: set[int] = set()
        self._whole = 0  # whole-network passes under way: an encoder pass inside one is not counted again

    checkpoint_transient = ("_hooked",)

    def hook(self, model: torch.nn.Module) -> None:
        """Count ``model``'s forward passes (once per model: a resumed run hooks its network again)."""
        if id(model) in self._hooked:
            return
        self._hooked.add(id(model))
        counter = self

        def seen(module, args) -> None:  # a plain function: a deep copy of the network shares it
            if not counter._active or not args or not torch.is_tensor(args[0]):
                return
            n, grad = int(args[0].shape[0]), torch.is_grad_enabled()
            counter.tally["forward"] += n
            counter.tally["backward"] += n if grad else 0
            if _REFERENCE[0]:
                counter.tally["reference_backward"] = counter.tally.get("reference_backward", 0) + (n if grad else 0)
            elif counter._in_step:
                counter.tally["step_forward"] += n
                counter._step_backward += n if grad else 0

        def enter(module, args) -> None:
            counter._whole += 1
            seen(module, args)

        def leave(module, args, output) -> None:
            counter._whole -= 1

        def encoder(module, args) -> None:
            if counter._whole == 0:
                seen(module, args)

        model.register_forward_pre_hook(enter)
        model.register_forward_hook(leave, always_call=True)
        part = getattr(getattr(model, "net", None), "downsample", None)
        if isinstance(part, torch.nn.Module):
            part.register_forward_pre_hook(encoder)

    def before_training(self, strategy, **kwargs) -> None:
        self.hook(strategy.model)
        self._active = True

    def after_training(self, strategy, **kwargs) -> None:
        self._active = False

    def before_training_iteration(self, strategy, **kwargs) -> None:
        self._in_step, self._step_backward = True, 0

    def after_training_iteration(self, strategy, **kwargs) -> None:
        t = self.tally
        t["steps"] += 1
        t["step_backward"] += self._step_backward
        lo, hi = t["per_step"]
        t["per_step"] = [self._step_backward if t["steps"] == 1 else min(lo, self._step_backward), max(hi, self._step_backward)]
        self._in_step = False

    def result(self) -> dict[str, float | int | list[int]]:
        t = dict(self.tally)
        t["samples_per_step"] = round(t["step_backward"] / t["steps"], 3) if t["steps"] else 0.0
        return t
