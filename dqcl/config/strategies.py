"""The strategy registry: which strategies exist, and what a spec may set for each.

A strategy is one file in the top-level ``strategies/`` folder (installed as the package
``dqcl.strategies``) holding one factory::

    from dqcl.train import Base, register_strategy

    @register_strategy("ewc", description="...", reference="Kirkpatrick et al. 2017")
    def ewc(base: Base, *, ewc_lambda: float = 100.0) -> SupervisedTemplate:
        return EWC(ewc_lambda=ewc_lambda, **base.kwargs())

Its hyperparameters are keyword-only arguments with defaults; `resolve_params` checks a
spec's values against them and records every one, so what ran is exactly what is stored.
An optional ``factory.check(**params) -> str | None`` names a value out of range.

The registry sits below the training code that strategies are built from, so it never
imports them: `load_strategies` imports the package ``dqcl.strategies`` by name (importing
it registers each of its files), then the modules of other installed packages that declare
the entry-point group ``dqcl.strategies``; ``dqcl --plugin MODULE`` imports one more module.
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Any, Callable

from ..core.registry import Registry
from ..core.text import quoted
from ..core.validation import out_of_range, type_ok, unknown_key
from ..errors import SpecError

__all__ = [
    "STRATEGIES", "EFFECTS", "MEMORY_KINDS", "DRAWS", "LR_SEARCH", "SHARED_PARAMS", "draws_of", "register_strategy", "list_strategies", "strategy_entry", "resolve_params",
    "load_strategies", "load_plugin", "forget_plugins", "loaded_plugins",
]

STRATEGIES: Registry[Callable[..., Any]] = Registry("strategy")
FLOAT32_MAX = 3.4028234663852886e38  # the largest float a run's tensors hold

EFFECTS = {
    "penalty": "adds a term to the training loss once a domain has been learned (regularisers, distillation)",
    "memory": "trains on, or takes gradients from, samples of earlier domains (replay, GEM)",
}


# how a strategy with the memory effect takes the spec's [memory] budget
MEMORY_KINDS = {
    "budget": "keeps at most [memory] size patches in all, or [memory] rate of each earlier domain",
    "size": "keeps a fixed number of patches ([memory] size; a rate is refused: a reservoir has no domains to take a fraction of)",
    "all": "keeps every patch of every earlier domain (full replay): outside any budget, shown as 'all'",
}


# how a strategy with the memory effect takes memory samples in a step (`dqcl.config.quotas.supply_problem`)
DRAWS = {
    "protocol": "as the budget's protocol says: replay_batch samples from all of memory every step under 'batch', none under 'mix'",
    "pooled": "replay_batch samples from all of memory every step, whatever the protocol (DER++'s memory pass)",
    "per_domain": "replay_batch samples every step, shared among the earlier domains, at least one of each (A-GEM, GEM)",
}


def register_strategy(
    name: str, *, description: str, reference: str = "", effects: tuple[str, ...] = (),
    memory: str = "budget", protocols: tuple[str, ...] | str = ("mix", "batch"), draws: str = "protocol",
    search: dict[str, tuple[float, float]] | None = None,
) -> Callable[[Callable], Callable]:
    """Register a strategy factory under ``name``.

    ``effects`` says how the strategy changes training from the second domain on (a subset of
    `EFFECTS`); the contract suite (`dqcl.checks`) checks that each declared effect happens.
    A strategy with the ``memory`` effect reads the run's budget from ``base.memory`` and obeys
    it as ``memory`` says (`MEMORY_KINDS`; checked by the contract suite), under the replay
    protocols it lists (a spec asking for another is refused where it is read), and takes its
    memory samples in a step as ``draws`` says (`DRAWS`): a budget that cannot supply them is
    refused before a run trains. A single effect or protocol may be given as a string:
    ``protocols="batch"`` is ``("batch",)``, never its letters. ``search``: the strategy's own
    hyperparameters `dqcl tune` searches, each a (low, high) range searched on a log scale (the
    learning rate, `LR_SEARCH`, is searched for every strategy).
    """
    from .schema import PROTOCOLS

    effects, protocols = _names(effects), _names(protocols)
    if draws not in DRAWS:
        raise SpecError(f"strategy '{name}': unknown draws '{draws}'; known: {', '.join(DRAWS)}")
    unknown = set(effects) - set(EFFECTS)
    if unknown:
        raise SpecError(f"strategy '{name}': unknown effect(s) {sorted(unknown)}; known: {', '.join(EFFECTS)}")
    if memory not in MEMORY_KINDS:
        raise SpecError(f"strategy '{name}': unknown memory kind '{memory}'; known: {', '.join(MEMORY_KINDS)}")
    if not protocols or set(protocols) - set(PROTOCOLS):
        raise SpecError(f"strategy '{name}': protocols must name one or more of {', '.join(PROTOCOLS)}, got {list(protocols)}")

    def decorate(factory: Callable) -> Callable:
        factory.effects = tuple(effects)
        factory.memory = memory if "memory" in effects else None
        factory.protocols = tuple(protocols)
        factory.draws = draws
        factory.search = dict(search or {})
        params = _params_of(factory)
        for key, (low, high) in factory.search.items():
            if key not in params or not isinstance(params[key].default, float) or not 0 < low < high:
                raise SpecError(f"strategy '{name}': search range for {key!r} must name one of its float parameters "
                                f"with 0 < low < high, got {key}=({low}, {high})")
        return STRATEGIES.register(name, description=description, reference=reference)(factory)

    return decorate

def _names(value: tuple[str, ...] | str) -> tuple[str, ...]:
    """Names from a tuple or list of them, or from one name given alone (a bare string is one name)."""
    return (value,) if isinstance(value, str) else tuple(value)


BUILTIN_PACKAGE = "dqcl.strategies"
ENTRY_POINT_GROUP = "dqcl.strategies"


class _Loaded:
    """What this process has imported into the registry: the built-ins once, and --plugin modules."""

    builtin = False
    plugins: list[str] = []


def load_strategies() -> None:
    """Register the built-in strategies and those of installed packages (once per process)."""
    if _Loaded.builtin:
        return
    _Loaded.builtin = True
    importlib.import_module(BUILTIN_PACKAGE)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value == BUILTIN_PACKAGE:
            continue
        try:
            ep.load()
        except Exception as exc:
            raise SpecError(f"entry point '{ep.name}' ({ep.value}) of group {ENTRY_POINT_GROUP} does not import: "
                            f"{type(exc).__name__}: {exc}") from None


def load_plugin(module: str) -> None:
    """Import a module that registers strategies (``dqcl --plugin my_lab.strategies``)."""
    load_strategies()
    try:
        importlib.import_module(module)
    except Exception as exc:
        raise SpecError(f"plugin '{module}' does not import: {type(exc).__name__}: {exc}") from None
    if module not in _Loaded.plugins:
        _Loaded.plugins.append(module)


def forget_plugins() -> None:
    """Start a new command's plugin list (workers import this command's plugins only)."""
    _Loaded.plugins.clear()


def loaded_plugins() -> tuple[str, ...]:
    """Modules given with --plugin so far (workers import them too)."""
    return tuple(_Loaded.plugins)


def list_strategies(pattern: str = "*") -> list[str]:
    load_strategies()
    return STRATEGIES.names(pattern)


def strategy_entry(name: str):
    """The registry entry of strategy ``name`` (factory, description, reference)."""
    load_strategies()
    return STRATEGIES.get(name)


def _params_of(factory: Callable) -> dict[str, inspect.Parameter]:
    return {
        n: p for n, p in inspect.signature(factory).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


LR_SEARCH = (0.005, 0.2)  # the learning rate every strategy's tuning searches (log scale); the published runs use 0.05

# a setting every strategy takes beside its own: its learning rate (tuned per strategy, issue 27); left out
# where not given, so the run keys of specs without it stay as they were
SHARED_PARAMS = ("lr",)


def resolve_params(name: str, given: dict[str, Any], where: str = "strategy") -> dict[str, Any]:
    """Every hyperparameter of strategy ``name``: the given values checked, the rest defaulted. ``lr``, where
    given, is the strategy's own learning rate (instead of train.lr): a finite number above 0."""
    entry = strategy_entry(name)
    params = _params_of(entry.factory)
    resolved = {}
    given = dict(given)
    if "lr" in given:
        lr = given.pop("lr")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < float(lr) < 1e3):
            raise SpecError(f"{where}: 'lr' of strategy '{name}' must be a learning rate above 0 (and below 1000), got {quoted(repr(lr))}")
        resolved["lr"] = float(lr)
    for key, value in given.items():
        if key not in params:
            raise unknown_key(f"{where}: strategy '{name}'", key, [*params, *SHARED_PARAMS])
        default = params[key].default
        if not type_ok(value, default):
            raise SpecError(f"{where}: '{key}' of strategy '{name}' must be {type(default).__name__}, got {quoted(repr(value))}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # checked as the number given (an integer beyond float or int64 range is refused, never converted)
            # a float meets float32 tensors in a run (torch): past float32's range it overflows there
            int_range = (-(2**63), 2**63 - 1) if isinstance(default, int) and not isinstance(default, bool) else (-FLOAT32_MAX, FLOAT32_MAX)
            problem = out_of_range(f"'{key}' of strategy '{name}'", value, *int_range)
            if problem:
                float32 = " (a run computes in float32)" if isinstance(value, float) and math.isfinite(value) else ""
                raise SpecError(f"{where}: {problem}{float32}")
        resolved[key] = float(value) if isinstance(default, float) else value
    for key, p in params.items():
        resolved.setdefault(key, p.default)
    check = getattr(entry.factory, "check", None)
    if check is not None:
        problem = check(**{k: v for k, v in resolved.items() if k not in SHARED_PARAMS})
        if problem:
            raise SpecError(f"{where}: strategy '{name}': {problem}")
    # a parameter added after runs were published, at its default, stays out: those runs keep their keys
    for key, default in getattr(entry.factory, "added_later", {}).items():
        if key in resolved and resolved[key] == default and type(resolved[key]) is type(default):
            del resolved[key]
    return dict(sorted(resolved.items()))


def draws_of(name: str, params: dict[str, Any]) -> str | None:
    """How strategy ``name`` with ``params`` takes memory samples in its batches (`DRAWS`), or None: it takes
    none there (no memory, or its memory samples are a reference pass apart from the batch, as A-GEM's at the
    paper's size: the strategy's ``apart_when`` parameter set)."""
    factory = strategy_entry(name).factory
    if getattr(factory, "memory", None) in (None, "all"):
        return None
    apart = getattr(factory, "apart_when", None)
    if apart and params.get(apart):
        return None
    return getattr(factory, "draws", "protocol")
