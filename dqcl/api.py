"""The Python API for notebooks: load stored results as a DataFrame, run a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .results.store import DEFAULT_STORE

__all__ = ["load_results", "run"]


def load_results(store: str | Path = DEFAULT_STORE, study: str | None = None):
    """One row per stored run x metric: strategy, ordering, seed, metric, ACC/BWT/forgetting/FWT/plasticity, R (nested list)."""
    import pandas as pd

    from .results.leaderboard import entries
    from .results.store import Store

    with Store(store, readonly=True) as s:
        return pd.DataFrame(entries(s, study))


def run(
    spec: str | Path | dict[str, Any] | None = None,
    store: str | Path = DEFAULT_STORE,
    progress: bool = True,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    num_gpus: float | None = None,
    skip_bad: bool = False,
):
    """Run a spec (a TOML path, a dict in the TOML's shape, or None for the quick default); returns the summary.

    The options are those of ``dqcl run benchmark``, and the checks are the same: a redundancy
    spec (one with a ``[redundancy]`` table) runs as ``dqcl run redundancy`` does.
    """
    from .study.executors import ExecutorOptions
    from .study.run import run_spec

    return run_spec(
        spec, store=store, redundancy=None, skip_bad=skip_bad, progress=progress,
        executor=ExecutorOptions(name=executor, workers=workers, address=address, num_gpus=num_gpus),
        say=print,
    )
