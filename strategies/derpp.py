import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from torch.nn import functional as F

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.rehearsal import Budget, Rehearsal, Reservoir


class DerppPlugin(SupervisedPlugin, Rehearsal):
    """DER++ (Buzzega et al. 2020) for dense outputs: a reservoir of (input, target, network output);
    each step adds alpha * MSE(output on memory inputs, stored outputs) + beta * task loss on memory samples.

    Adaptations, and why:
    - Avalanche's DER assumes class targets; this one stores whole output maps;
    - the memory samples go through the network in the same forward pass as the current batch
      (appended to it, then split off the output), so BatchNorm normalises one mixed batch, as
      replay does, rather than memory-only batches whose statistics the network never sees at
      test time and which would also move the running statistics on their own;
    - with no ``[memory]`` budget (dqcl 0.3): two memory minibatches of the batch size every
      step from the start, one per term, as the paper's code draws them;
    - under a budget: one minibatch of ``budget.per_step`` memory samples, both terms on it,
      from the second experience on, and with compute matched the new part of the batch
      shrinks by as much, so DER++ and ER (``er``) hold the same memory and train on the same
      batch make-up: what differs is the logit term (and ER's memory samples are flipped and
      turned with the batch, DER++'s are not: their stored outputs belong to them as stored).
    """

    checkpoint_transient = ("budget",)  # the run's settings, built anew from its config

    def __init__(self, mem_size: int, alpha: float, beta: float, seed: int, budget: Budget | None = None,
                 balanced: bool = False) -> None:
        super().__init__()
        self.alpha, self.beta, self.budget = alpha, beta, budget
        self.memory = Reservoir(budget.size if budget else mem_size, np.random.default_rng(seed), balanced=balanced)
        self._drawn: tuple[np.ndarray, np.ndarray] | None = None  # memory rows in this step's forward
        self._memory_output: torch.Tensor | None = None
        self._in_batch = budget is None

    def memory_held(self) -> int:
        return self.memory.filled

    def old_share(self, experience: int) -> float | None:
        return self.memory.old_share(experience)

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        self.memory.experience = strategy.clock.train_exp_counter
        if self.budget is not None:
            self._in_batch = self.memory.filled > 0
            strategy.train_mb_size = self.budget.new_per_step(self._in_batch)

    def before_forward(self, strategy, **kwargs) -> None:
        if self.memory.filled == 0 or not self._in_batch:
            return
        if self.budget is None:
            k = strategy.train_mb_size
            i, j = self.memory.draw(k), self.memory.draw(k)
        else:
            i = j = self.memory.draw(self.budget.per_step)
        self._drawn = (i, j)
        x = strategy.mbatch[0]
        drawn = [i] if self.budget is not None else [i, j]
        memory = torch.cat([self.memory.x[d] for d in drawn]).to(x.device, x.dtype)
        strategy.mbatch[0] = torch.cat([x, memory])

    def _n_memory(self) -> int:
        i, j = self._drawn
        return len(i) if self.budget is not None else len(i) + len(j)

    def after_forward(self, strategy, **kwargs) -> None:
        if self._drawn is None:
            return
        b = len(strategy.mb_output) - self._n_memory()
        self._memory_output = strategy.mb_output[b:]
        strategy.mb_output = strategy.mb_output[:b]
        strategy.mbatch[0] = strategy.mbatch[0][:b]

    def before_backward(self, strategy, **kwargs) -> None:
        if self._drawn is None:
            return
        i, j = self._drawn
        logits = self._memory_output[: len(i)]
        pred = logits if self.budget is not None else self._memory_output[len(i):]
        strategy.loss = strategy.loss + self.alpha * F.mse_loss(logits, self.memory.out[i].to(strategy.device))
        strategy.loss = strategy.loss + self.beta * strategy._criterion(pred, self.memory.y[j].to(strategy.device))

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self._drawn, self._memory_output = None, None
        self.memory.offer(strategy.mb_x, strategy.mb_y, strategy.mb_output)


@register_strategy(
    "derpp",
    description="DER++: replay stored network outputs (MSE, weight alpha) and stored targets (weight beta) from a reservoir",
    reference="Buzzega et al. 2020, NeurIPS",
    effects=("penalty", "memory"),
    memory="size",
    protocols=("batch",),
    draws="pooled",
    search={"alpha": (1e-2, 10.0), "beta": (1e-2, 10.0)},  # searched by dqcl tune (log scale), beside the learning rate
)
def derpp(base: Base, *, mem_size: int = 32, alpha: float = 0.3, beta: float = 0.5, balanced: bool = False) -> Naive:
    """``mem_size`` holds when the spec has no ``[memory]`` table; with one, its size and replay minibatch win.
    ``balanced``: a domain-balanced reservoir (`dqcl.train.rehearsal.Reservoir`)."""
    return Naive(**base.kwargs(DerppPlugin(mem_size, alpha, beta, base.seed, base.memory, balanced)))


derpp.check = lambda mem_size, alpha, beta, balanced: (
    out_of_range("mem_size", mem_size, 1) or out_of_range("alpha", alpha, 0) or out_of_range("beta", beta, 0)
)
derpp.added_later = {"balanced": False}  # left out of a run's key at its default: the published DER++ runs keep theirs
derpp.stores_outputs = True  # each memory slot holds the network's 3 output maps too (memory counted in bytes)
