import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from torch.nn import functional as F

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


class DerppPlugin(SupervisedPlugin):
    """DER++ (Buzzega et al. 2020) for dense outputs: a reservoir of (input, target, network output);
    each step adds alpha * MSE(output on memory inputs, stored outputs) + beta * task loss on other
    memory samples.

    Adaptations, and why:
    - Avalanche's DER assumes class targets; this one stores whole output maps;
    - the memory samples go through the network in the same forward pass as the current batch
      (appended to it, then split off the output), so BatchNorm normalises one mixed batch, as
      replay does, rather than memory-only batches whose statistics the network never sees at
      test time and which would also move the running statistics on their own.
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
        self._drawn: tuple[np.ndarray, np.ndarray] | None = None  # memory rows in this step's forward
        self._memory_output: torch.Tensor | None = None

    def _sample(self, k: int) -> np.ndarray:
        return self.rng.choice(self.filled, size=min(k, self.filled), replace=False)

    def before_forward(self, strategy, **kwargs) -> None:
        if self.filled == 0:
            return
        k = strategy.train_mb_size
        i, j = self._sample(k), self._sample(k)
        self._drawn = (i, j)
        x = strategy.mbatch[0]
        memory = torch.cat([self.x[i], self.x[j]]).to(x.device, x.dtype)
        strategy.mbatch[0] = torch.cat([x, memory])

    def after_forward(self, strategy, **kwargs) -> None:
        if self._drawn is None:
            return
        n_memory = len(self._drawn[0]) + len(self._drawn[1])
        b = len(strategy.mb_output) - n_memory
        self._memory_output = strategy.mb_output[b:]
        strategy.mb_output = strategy.mb_output[:b]
        strategy.mbatch[0] = strategy.mbatch[0][:b]

    def before_backward(self, strategy, **kwargs) -> None:
        if self._drawn is None:
            return
        i, j = self._drawn
        logits, pred = self._memory_output[: len(i)], self._memory_output[len(i):]
        strategy.loss = strategy.loss + self.alpha * F.mse_loss(logits, self.out[i].to(strategy.device))
        strategy.loss = strategy.loss + self.beta * strategy._criterion(pred, self.y[j].to(strategy.device))

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self._drawn, self._memory_output = None, None
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
    effects=("penalty", "memory"),
)
def derpp(base: Base, *, mem_size: int = 32, alpha: float = 0.3, beta: float = 0.5) -> Naive:
    return Naive(**base.kwargs(DerppPlugin(mem_size, alpha, beta, base.seed)))


derpp.check = lambda mem_size, alpha, beta: (
    out_of_range("mem_size", mem_size, 1) or out_of_range("alpha", alpha, 0) or out_of_range("beta", beta, 0)
)
