import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


class SynapticIntelligence(SupervisedPlugin):
    """Synaptic intelligence (Zenke et al. 2017) for a dense-output network.

    Each parameter's importance is its path integral over an experience, the part of the
    loss decrease it accounts for, ``w = -sum_t g_t * (theta_{t+1} - theta_t)``, divided by
    its squared total move plus the damping ``eps``; importances add up over experiences.
    The penalty is ``si_lambda / 2 * sum_k Omega_k * (theta_k - theta*_k)^2``.

    Adaptations, and why:
    - snapshots are copies (``clone``): Avalanche's plugin saves ``param.detach().cpu()``,
      which on a CPU is the parameter itself, so its path integral is always 0 there and
      ``si`` trains exactly as ``naive`` (on a GPU it copies, so CPU and GPU disagreed);
    - ``g`` is the gradient of the task loss alone, as in the authors' code (``unreg_grads``):
      the penalty's own gradient, ``si_lambda * Omega * (theta - theta*)``, is taken off;
    - a parameter whose path integral is negative (the loss rose along its path: momentum
      overshoot) gets importance 0, not a negative one that would reward moving it;
    - Omega is divided by its 99th percentile over all parameters and capped at 1, so the ranking
      of 99 % of the parameters is kept while the penalty's stiffest anchor is ``si_lambda``
      whatever the loss scale: with importances left raw (heavy-tailed: ``w / (move^2 + eps)``
      is huge where a parameter hardly moved) SGD at lr 0.05 diverges on the penalty's
      curvature within a hundred steps. The default ``si_lambda = 1`` keeps that curvature
      times the learning rate far inside SGD's stable range and lets the next domain be
      learned (at 10, cyto -> histo on the CPU protocol learned nothing of histo). Avalanche instead clips
      every importance at 0.001, which flattens almost all of them to one value;
    - BatchNorm weights count like any other parameter (Avalanche leaves them out).
    """

    def __init__(self, si_lambda: float, eps: float) -> None:
        super().__init__()
        self.si_lambda, self.eps = si_lambda, eps
        self.raw: dict[str, torch.Tensor] = {}  # importance summed over experiences
        self.omega: dict[str, torch.Tensor] = {}  # the same over its 99th percentile, capped at 1
        self.anchor: dict[str, torch.Tensor] = {}  # parameters at the end of the last experience
        self.path: dict[str, torch.Tensor] = {}  # this experience's path integral so far
        self.start: dict[str, torch.Tensor] = {}
        self.before: dict[str, torch.Tensor] = {}

    @staticmethod
    def _params(strategy):
        return [(n, p) for n, p in strategy.model.named_parameters() if p.requires_grad]

    def penalty(self, strategy) -> torch.Tensor | None:
        if not self.omega:
            return None
        return self.si_lambda / 2 * sum(
            (self.omega[n] * (p - self.anchor[n]) ** 2).sum() for n, p in self._params(strategy)
        )

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.start = {n: p.detach().clone() for n, p in self._params(strategy)}
        self.path = {n: torch.zeros_like(p) for n, p in self._params(strategy)}

    def before_training_iteration(self, strategy, **kwargs) -> None:
        self.before = {n: p.detach().clone() for n, p in self._params(strategy)}

    def before_backward(self, strategy, **kwargs) -> None:
        extra = self.penalty(strategy)
        if extra is not None:
            strategy.loss = strategy.loss + extra

    @torch.no_grad()
    def after_training_iteration(self, strategy, **kwargs) -> None:
        for n, p in self._params(strategy):
            if p.grad is None:
                continue
            g = p.grad
            if self.omega:
                g = g - self.si_lambda * self.omega[n] * (self.before[n] - self.anchor[n])
            self.path[n] -= g * (p.detach() - self.before[n])

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs) -> None:
        new = {}
        for n, p in self._params(strategy):
            moved = (p.detach() - self.start[n]) ** 2
            new[n] = self.path[n].clamp(min=0) / (moved + self.eps)
            self.anchor[n] = p.detach().clone()
        self.raw = {n: self.raw.get(n, 0) + w for n, w in new.items()}
        every = torch.cat([w.flatten() for w in self.raw.values()]).cpu().numpy()
        scale = float(np.quantile(every, 0.99)) or float(every.max())
        self.omega = {n: (w / scale).clamp(max=1.0) if scale > 0 else w for n, w in self.raw.items()}


@register_strategy(
    "si",
    description="synaptic intelligence: a penalty on weights by their path-integral contribution to past losses",
    reference="Zenke et al. 2017, ICML",
    effects=("penalty",),
    search={"si_lambda": (1e-3, 1e2)},  # searched by dqcl tune (log scale), beside the learning rate
)
def si(base: Base, *, si_lambda: float = 1.0, eps: float = 1e-3) -> Naive:
    return Naive(**base.kwargs(SynapticIntelligence(si_lambda, eps)))


si.check = lambda si_lambda, eps: out_of_range("si_lambda", si_lambda, 0) or out_of_range("eps", eps, 0, lo_open=True)
