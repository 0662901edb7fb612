"""The strategy registry and what every strategy is built from.

A strategy is one file in the top-level ``strategies/`` package holding one factory::

    @register_strategy("ewc", description="...", reference="Kirkpatrick et al. 2017")
    def ewc(base: Base, *, ewc_lambda: float = 100.0) -> SupervisedTemplate:
        return EWC(ewc_lambda=ewc_lambda, **base.kwargs())

Its hyperparameters are keyword-only arguments with defaults; `resolve_params` checks a
spec's values against them and records every one, so what ran is exactly what is stored.
The factory returns an Avalanche template; the runner calls ``train(experience)`` on it
once per experience (or once on the whole stream for `JointTraining`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from avalanche.core import SupervisedPlugin

from .errors import SpecError
from .model import dihedral
from .registry import Registry

__all__ = ["Base", "Augment", "Warmup", "load_plugin", "STRATEGIES", "register_strategy", "list_strategies", "resolve_params", "build_strategy"]


STRATEGIES: Registry[Callable[..., Any]] = Registry("strategy")
register_strategy = STRATEGIES.register


def list_strategies(pattern: str = "*") -> list[str]:
    _load_builtin()
    return STRATEGIES.names(pattern)


_loaded = False


def _load_builtin() -> None:
    """Register the built-in strategies and those of installed packages (entry-point group `dqcl.strategies`)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import strategies  # noqa: F401  (importing the package registers every file in it)
    from importlib.metadata import entry_points

    for ep in entry_points(group="dqcl.strategies"):
        try:
            ep.load()
        except Exception as exc:
            raise SpecError(f"entry point '{ep.name}' ({ep.value}) of group dqcl.strategies does not import: {type(exc).__name__}: {exc}") from None


_PLUGINS: list[str] = []


def load_plugin(module: str) -> None:
    """Import a module that registers strategies (``dqcl --plugin my_lab.strategies``)."""
    import importlib

    _load_builtin()
    try:
        importlib.import_module(module)
    except Exception as exc:
        raise SpecError(f"plugin '{module}' does not import: {type(exc).__name__}: {exc}") from None
    if module not in _PLUGINS:
        _PLUGINS.append(module)


def forget_plugins() -> None:
    """Start a new command's plugin list (workers import this command's plugins only)."""
    _PLUGINS.clear()


def loaded_plugins() -> tuple[str, ...]:
    """Modules given with --plugin so far (workers import them too)."""
    return tuple(_PLUGINS)


@dataclass
class Base:
    """The parts every Avalanche template takes: model, optimiser, loss, sizes, device, plugins."""

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


class Augment(SupervisedPlugin):
    """Avalanche plugin: random flips and 90-degree rotations of each training minibatch."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def before_forward(self, strategy, **kwargs) -> None:
        x, y = dihedral(strategy.mbatch[0], strategy.mbatch[1], self.generator)
        strategy.mbatch[0], strategy.mbatch[1] = x, y


class Warmup(SupervisedPlugin):
    """Avalanche plugin: ramp the learning rate linearly from 0 over the first steps of every experience.

    Cellpose warms up over its first 10 epochs; without it, a network trained on one domain
    and then hit by the large gradients of a very different one can collapse to predicting
    nothing at all.
    """

    def __init__(self, epochs: float) -> None:
        super().__init__()
        self.epochs = epochs
        self.step = 0
        self.base: list[float] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.step = 0
        self.base = [g["lr"] for g in strategy.optimizer.param_groups]
        self.total = max(1, int(round(self.epochs * len(strategy.dataloader))))

    def before_training_iteration(self, strategy, **kwargs) -> None:
        scale = min(1.0, (self.step + 1) / self.total) if self.epochs > 0 else 1.0
        for g, lr in zip(strategy.optimizer.param_groups, self.base):
            g["lr"] = lr * scale
        self.step += 1

    def after_training_exp(self, strategy, **kwargs) -> None:
        for g, lr in zip(strategy.optimizer.param_groups, self.base):
            g["lr"] = lr


def _params_of(factory: Callable) -> dict[str, inspect.Parameter]:
    return {
        n: p for n, p in inspect.signature(factory).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def resolve_params(name: str, given: dict[str, Any], where: str = "strategy") -> dict[str, Any]:
    """Every hyperparameter of strategy ``name``: the given values checked, the rest defaulted."""
    from .spec import type_ok, unknown_key

    _load_builtin()
    entry = STRATEGIES.get(name)
    params = _params_of(entry.factory)
    resolved = {}
    for key, value in given.items():
        if key not in params:
            raise unknown_key(f"{where}: strategy '{name}'", key, list(params))
        default = params[key].default
        if not type_ok(value, default):
            raise SpecError(f"{where}: '{key}' of strategy '{name}' must be {type(default).__name__}, got {value!r}")
        resolved[key] = float(value) if isinstance(default, float) else value
    for key, p in params.items():
        resolved.setdefault(key, p.default)
    check = getattr(entry.factory, "check", None)
    if check is not None:
        problem = check(**resolved)
        if problem:
            raise SpecError(f"{where}: strategy '{name}': {problem}")
    return dict(sorted(resolved.items()))


def build_strategy(name: str, base: Base, params: dict[str, Any]):
    _load_builtin()
    return STRATEGIES.get(name).factory(base, **params)
