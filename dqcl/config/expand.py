"""A spec expanded into runs: one `RunConfig` per ordering x strategy x seed (or, for a
redundancy study, per selector x rate x seed), each keyed by a hash of everything that
decides its result, the data manifests of its domains included."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..core.provenance import content_hash, domain_manifest
from .schema import MemorySpec, RunConfig, Spec, StrategySpec, Subset

__all__ = ["expand", "run_key", "budgets_of"]


def run_key(d: dict[str, Any]) -> str:
    """The key of a run config (its `RunConfig.to_dict`): 24 hex digits of its SHA-256."""
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=list).encode()).hexdigest()[:24]


def _run(spec: Spec, strategy: StrategySpec, order: tuple[str, ...], seed: int, subset: Subset | None = None,
         memory: MemorySpec = MemorySpec()) -> RunConfig:
    cfg = RunConfig(
        study=spec.name,
        strategy=strategy,
        ordering=order,
        seed=seed,
        domains=tuple(spec.domains[d] for d in order),
        data=spec.data,
        model=spec.model,
        train=spec.train,
        eval=spec.eval,
        data_seed=spec.run_data_seed(seed),
        device=spec.device,
        subset=subset,
        data_manifests=tuple((d, domain_manifest(spec.domains[d].kind, spec.domains[d].params)) for d in order)
        + ((("model.init", "file:" + content_hash(Path(spec.model.init))[:24]),) if spec.model.init else ()),
        output=spec.output,
        log=spec.log,
        memory=memory,
    )
    return RunConfig(**{**cfg.__dict__, "key": run_key(cfg.to_dict())})


def budgets_of(spec: Spec, strategy: StrategySpec) -> tuple[MemorySpec, ...]:
    """The memory budgets a strategy runs at: each of the spec's for a strategy that keeps a bounded
    memory; for the others one run, whose result no budget changes (only matched compute, which
    trains on full batches only, is kept in their config)."""
    from .strategies import strategy_entry

    if getattr(strategy_entry(strategy.name).factory, "memory", None) in (None, "all"):
        return (MemorySpec(compute=spec.memory[0].compute),)
    return spec.memory


def expand(spec: Spec) -> list[RunConfig]:
    """One run per ordering x strategy x seed (or per selector x rate x seed for a redundancy study)."""
    r = spec.redundancy
    if r is None:
        runs = [_run(spec, strat, order, seed, memory=memory) for order in spec.orderings for strat in spec.strategies.values()
                for memory in budgets_of(spec, strat) for seed in spec.seeds]
        # two settings that mean the same run (a budget written two ways) are one run, trained once
        return list({cfg.key: cfg for cfg in runs}.values())  # the first of each key, in expansion order
    runs = []
    for rate in r.rates:
        # at rate 1 every selector keeps everything: one run, labelled 'all'
        for sel in ("all",) if rate >= 1.0 else r.selectors:
            subset = Subset(sel, float(rate), r.bins, r.embedder, r.embedder_weights, r.steps)
            runs += [_run(spec, StrategySpec(sel, "naive", {}), (r.domain,), seed, subset) for seed in spec.seeds]
    return runs
