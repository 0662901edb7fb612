"""The Python API for notebooks: load stored results as a DataFrame, run a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .results.store import DEFAULT_STORE

__all__ = ["load_results", "load_curves", "run"]


def _rows(source: str | Path, study: str | None) -> list[dict[str, Any]]:
    """Leaderboard entries from a results store, or from a published ``leaderboard.json``; either
    is checked for shape as it is read (`dqcl.results.shape`), so whatever a file holds, what
    goes wrong is a `StoreError`."""
    from .results.leaderboard import entries
    from .results.shape import load_entries
    from .results.store import Store

    path = Path(source)
    if path.suffix == ".json":
        return [r for r in load_entries(path) if study is None or r["study"] == study]
    with Store(path, readonly=True) as s:
        return entries(s, study)


def load_results(source: str | Path = DEFAULT_STORE, study: str | None = None):
    """One row per stored run x metric: study, strategy, ordering ("cyto>histo"), seed, metric,
    ACC/BWT/forgetting/FWT/plasticity, R and baseline (nested lists), params (text), cost and provenance.

    ``source`` is a results store or a published ``leaderboard.json``. The columns to group and
    filter by hold hashable values, so ``df.groupby(["strategy", "ordering"])`` works as is.
    Anything a file can hold that is not a dqcl store or leaderboard (missing, a folder, another
    format, another application's database, JSON of the wrong shape) raises `dqcl.errors.StoreError`.
    """
    import json

    import pandas as pd

    rows = _rows(source, study)
    for r in rows:
        r["ordering"] = ">".join(r["ordering"]) if isinstance(r["ordering"], list) else r["ordering"]
        r["params"] = json.dumps(r.get("params", {}), sort_keys=True) if not isinstance(r.get("params"), str) else r["params"]
        r["data_manifests"] = json.dumps(r.get("data_manifests", {}), sort_keys=True)
    return pd.DataFrame(rows)


def load_curves(store: str | Path = DEFAULT_STORE, study: str | None = None):
    """The training curves: one row per (run, experience, epoch) with the mean loss, learning rate,
    images and steps so far, beside the run's study, strategy, ordering ("cyto>histo") and seed.

    ``store`` is a results store (a leaderboard.json holds no curves); what cannot be read as one
    raises `dqcl.errors.StoreError`."""
    import pandas as pd

    from .errors import StoreError
    from .results.store import Store

    if Path(store).suffix == ".json":
        raise StoreError(f"{store}: a leaderboard.json holds no training curves; give load_curves the results store it was built from")
    out = []
    with Store(store, readonly=True) as s:
        for run in s.runs(study):
            cfg = run["config"]
            ident = {"study": cfg["study"], "strategy": cfg["strategy"]["label"], "ordering": ">".join(cfg["ordering"]),
                     "seed": cfg["seed"], "run": run["key"]}
            out += [{**ident, **row} for row in run["result"].get("curve") or []]
    return pd.DataFrame(out)


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
