import contextlib

import torch
from avalanche.training import Naive
from avalanche.training.plugins import GEMPlugin

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.importance import frozen_norm_stats, set_sgd_direction, sgd_direction
from dqcl.train.plugins import reference_pass
from dqcl.train.rehearsal import Budget, EpisodicMemory, Rehearsal


class StepGEM(GEMPlugin, Rehearsal):
    """GEM (Lopez-Paz & Ranzato 2017): no past domain's memory loss may rise, solved as a
    quadratic program (quadprog, as the authors' code).

    As for A-GEM (see `strategies/agem.py`): the constraints hold for the step SGD with
    momentum and weight decay takes, not only for the gradient, and the memory passes leave
    the BatchNorm running statistics as training left them. Under a ``[memory]`` budget the
    memory is the budget's, and each step's constraints are taken on ``budget.per_step`` memory
    samples shared among the earlier domains (GEM's paper uses all of its memory every step;
    drawing keeps the step's compute within the budget's, as A-GEM's sample does).
    """

    def __init__(self, patterns_per_exp: int, memory_strength: float, budget: Budget | None = None, seed: int = 0,
                 whole_memory: bool = False) -> None:
        super().__init__(patterns_per_exp, memory_strength)
        self.episodic = EpisodicMemory(budget, seed, whole=whole_memory) if budget else None

    def memory_held(self) -> int:
        return self.episodic.memory_held() if self.episodic else sum(len(x) for x in self.memory_x.values())

    def after_train_dataset_adaptation(self, strategy, **kwargs):
        if self.episodic:
            self.episodic.set_batch(strategy)

    def before_training_iteration(self, strategy, **kwargs):
        if self.episodic and strategy.clock.train_exp_counter > 0:
            for t, (x, y) in enumerate(self.episodic.draw()):  # this step's sample of each earlier domain
                self.memory_x[t], self.memory_y[t] = x, y
                self.memory_tid[t] = torch.zeros(len(x), dtype=torch.long)
        apart = reference_pass() if self.episodic and self.episodic.apart else contextlib.nullcontext()
        with frozen_norm_stats(strategy.model), apart:
            super().before_training_iteration(strategy, **kwargs)

    def after_training_exp(self, strategy, **kwargs):
        if not self.episodic:
            return super().after_training_exp(strategy, **kwargs)
        self.episodic.add(strategy)

    @torch.no_grad()
    def after_backward(self, strategy, **kwargs):
        if strategy.clock.train_exp_counter == 0:
            return
        params = list(strategy.model.parameters())
        d = sgd_direction(strategy.optimizer, params)
        if (torch.mv(self.G, d) < 0).any():
            set_sgd_direction(strategy.optimizer, params, self.solve_quadprog(d).to(d.device))


@register_strategy(
    "gem",
    description="gradient episodic memory: project the step (quadratic program) so no past domain's memory loss rises",
    reference="Lopez-Paz & Ranzato 2017, NeurIPS",
    effects=("memory",),
    draws="per_domain",
    search={"memory_strength": (1e-2, 10.0)},  # searched by dqcl tune (log scale), beside the learning rate
)
def gem(base: Base, *, patterns_per_exp: int = 16, memory_strength: float = 0.5, whole_memory: bool = False) -> Naive:
    """``whole_memory`` (under a ``[memory]`` budget): each step's constraints are taken on every memory sample of
    every earlier domain, as the paper does, as a pass apart from the batch (counted as compute, not among the
    step's samples); false: on ``replay_batch`` samples that take part of the batch."""
    return Naive(**base.kwargs(StepGEM(patterns_per_exp, memory_strength, base.memory, base.seed, whole_memory)))


gem.check = lambda patterns_per_exp, memory_strength, whole_memory: (
    out_of_range("patterns_per_exp", patterns_per_exp, 1) or out_of_range("memory_strength", memory_strength, 0)
)
gem.added_later = {"whole_memory": False}  # left out of a run's key at its default: the published GEM runs keep theirs
gem.apart_when = "whole_memory"  # true: its memory samples are a reference pass, not part of the batch
