import torch
from avalanche.training import Naive
from avalanche.training.plugins import GEMPlugin

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.importance import frozen_norm_stats, set_sgd_direction, sgd_direction


class StepGEM(GEMPlugin):
    """GEM (Lopez-Paz & Ranzato 2017): no past domain's memory loss may rise, solved as a
    quadratic program (quadprog, as the authors' code).

    As for A-GEM (see `strategies/agem.py`): the constraints hold for the step SGD with
    momentum and weight decay takes, not only for the gradient, and the memory passes leave
    the BatchNorm running statistics as training left them.
    """

    def before_training_iteration(self, strategy, **kwargs):
        with frozen_norm_stats(strategy.model):
            super().before_training_iteration(strategy, **kwargs)

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
)
def gem(base: Base, *, patterns_per_exp: int = 16, memory_strength: float = 0.5) -> Naive:
    return Naive(**base.kwargs(StepGEM(patterns_per_exp, memory_strength)))


gem.check = lambda patterns_per_exp, memory_strength: (
    out_of_range("patterns_per_exp", patterns_per_exp, 1) or out_of_range("memory_strength", memory_strength, 0)
)
