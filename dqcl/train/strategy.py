"""What every strategy is built from (`Base`), and building a registered strategy by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..config.strategies import strategy_entry
from .rehearsal import Budget

__all__ = ["Base", "build_strategy"]


@dataclass
class Base:
    """The parts every Avalanche template takes: model, optimiser, loss, sizes, device, plugins; and the
    run's memory budget (`dqcl.train.rehearsal.Budget`, None when the spec sets none), which a
    strategy that keeps samples of earlier domains must obey (the contract suite checks it)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    criterion: Callable
    train_mb_size: int
    train_epochs: int
    eval_mb_size: int
    device: torch.device
    evaluator: Any
    seed: int = 0
    plugins: list = field(default_factory=list)
    memory: Budget | None = None  # the spec's [memory] budget; every strategy with a memory obeys it

    def kwargs(self, *extra_plugins: Any) -> dict[str, Any]:
        return dict(
            model=self.model,
            optimizer=self.optimizer,
            criterion=self.criterion,
            train_mb_size=self.train_mb_size,
            train_epochs=self.train_epochs,
            eval_mb_size=self.eval_mb_size,
            device=self.device,
            plugins=[*self.plugins, *extra_plugins],
            evaluator=self.evaluator,
        )


def build_strategy(name: str, base: Base, params: dict[str, Any]):
    """The Avalanche template strategy ``name`` makes from ``base`` and its resolved ``params`` (less ``lr``, which
    sets the optimiser's rate before the strategy is built)."""
    from ..config.strategies import SHARED_PARAMS

    return strategy_entry(name).factory(base, **{k: v for k, v in params.items() if k not in SHARED_PARAMS})
