"""The Python API for notebooks: load stored results as a DataFrame, run a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["load_results", "run"]


def load_results(store: str | Path = "results/dqcl.sqlite", study: str | None = None):
    """One row per stored run x metric: strategy, ordering, seed, metric, ACC/BWT/forgetting/FWT/plasticity, R (nested list)."""
    import pandas as pd

    from .leaderboard import entries
    from .store import Store

    with Store(store, readonly=True) as s:
        return pd.DataFrame(entries(s, study))


def run(
    spec: str | Path | dict[str, Any] | None = None,
    store: str | Path = "results/dqcl.sqlite",
    progress: bool = True,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
):
    """Run a spec (a TOML path, a dict in the TOML's shape, or None for the quick default); returns the summary.

    ``executor``, ``workers`` and ``address`` are those of ``dqcl run benchmark``."""
    from .executors import ExecutorOptions

    from .runner import run_study
    from .spec import load_spec, parse_spec
    from .store import Store

    opts = ExecutorOptions(executor, workers, address)
    opts.check()
    parsed = parse_spec(spec, "<dict>") if isinstance(spec, dict) else load_spec(spec)
    with Store(store) as s:
        return run_study(parsed, s, progress=progress, executor=opts)
