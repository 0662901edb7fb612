import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from torch.nn import functional as F

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


class DerppPlugin(SupervisedPlugin):
    """DER++ for dense outputs: a reservoir of (input, target, network output); each step adds
    alpha * MSE(output on memory inputs, stored outputs) + beta * task loss on other memory samples.

    Avalanche's DER assumes class targets; this one stores whole output maps.
    """

    def __init__(self, mem_size: int, alpha: float, beta: float, seed: int) -> None:
        super().__init__()
        self.mem_size, self.alpha, self.beta = mem_size, alpha, beta
        self.rng = np.random.default_rng(seed)
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.out: torch.Tensor | None = None
        self.filled = 0
        self.seen = 0

    def _sample(self, k: int) -> np.ndarray:
        return self.rng.choice(self.filled, size=min(k, self.filled), replace=False)

    def before_backward(self, strategy, **kwargs) -> None:
        if self.filled == 0:
            return
        k = strategy.train_mb_size
        i = self._sample(k)
        logits = strategy.model(self.x[i].to(strategy.device))
        strategy.loss = strategy.loss + self.alpha * F.mse_loss(logits, self.out[i].to(strategy.device))
        j = self._sample(k)
        pred = strategy.model(self.x[j].to(strategy.device))
        strategy.loss = strategy.loss + self.beta * strategy._criterion(pred, self.y[j].to(strategy.device))

    def after_training_iteration(self, strategy, **kwargs) -> None:
        x, y, out = strategy.mb_x.detach().cpu(), strategy.mb_y.detach().cpu(), strategy.mb_output.detach().cpu()
        if self.x is None:
            self.x = torch.empty((self.mem_size, *x.shape[1:]), dtype=x.dtype)
            self.y = torch.empty((self.mem_size, *y.shape[1:]), dtype=y.dtype)
            self.out = torch.empty((self.mem_size, *out.shape[1:]), dtype=out.dtype)
        for b in range(len(x)):  # reservoir sampling over every sample seen
            if self.filled < self.mem_size:
                slot = self.filled
                self.filled += 1
            else:
                slot = int(self.rng.integers(0, self.seen + 1))
            if slot < self.mem_size:
                self.x[slot], self.y[slot], self.out[slot] = x[b], y[b], out[b]
            self.seen += 1


@register_strategy(
    "derpp",
    description="DER++: replay stored network outputs (MSE, weight alpha) and stored targets (weight beta) from a reservoir",
    reference="Buzzega et al. 2020, NeurIPS",
)
def derpp(base: Base, *, mem_size: int = 32, alpha: float = 0.3, beta: float = 0.5) -> Naive:
    return Naive(**base.kwargs(DerppPlugin(mem_size, alpha, beta, base.seed)))


derpp.check = lambda mem_size, alpha, beta: (
    out_of_range("mem_size", mem_size, 1) or out_of_range("alpha", alpha, 0) or out_of_range("beta", beta, 0)
)
