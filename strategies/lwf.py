import copy

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from torch.nn import functional as F

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


class FlowDistillation(SupervisedPlugin):
    """Learning without forgetting for Cellpose outputs: match the previous network's flows and cell probability.

    Avalanche's LwF distils class logits; here the penalty is MSE on the two flow maps (halved,
    as in Cellpose's loss) plus the KL divergence of the cell probabilities from the old network's
    (BCE against them, less their entropy), on the current batch.
    """

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha
        self.previous: torch.nn.Module | None = None

    def before_backward(self, strategy, **kwargs) -> None:
        if self.previous is None or self.alpha == 0:
            return
        with torch.no_grad():
            old = self.previous(strategy.mb_x)
        new = strategy.mb_output
        p_old = torch.sigmoid(old[:, 2])
        # BCE against the old probabilities minus their own entropy: a KL term, 0 when nothing changed
        kl = F.binary_cross_entropy_with_logits(new[:, 2], p_old) - F.binary_cross_entropy_with_logits(old[:, 2], p_old)
        strategy.loss = strategy.loss + self.alpha * (F.mse_loss(new[:, :2], old[:, :2]) / 2 + kl)

    def after_training_exp(self, strategy, **kwargs) -> None:
        # kept in training mode: both networks normalise with the batch's statistics, so an
        # unchanged network adds no penalty (CPnet has batch norm and no dropout)
        self.previous = copy.deepcopy(strategy.model).train()
        for p in self.previous.parameters():
            p.requires_grad_(False)


@register_strategy(
    "lwf",
    description="learning without forgetting: distil the previous network's flows and cell probability on new data",
    reference="Li & Hoiem 2017, TPAMI",
)
def lwf(base: Base, *, alpha: float = 1.0) -> Naive:
    return Naive(**base.kwargs(FlowDistillation(alpha)))


lwf.check = lambda alpha: out_of_range("alpha", alpha, 0)
