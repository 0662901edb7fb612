"""What a redundancy study's subsets keep: labelled objects and foreground per kept patch, by
selector and rate, against every training patch (the issue of a selector that keeps emptier
patches than random at the same size, which would bias "DQ vs random" comparisons).

    python benchmarks/subset_content.py [--spec benchmarks/redundancy.toml] [--store leaderboard/runs.sqlite]

Reads the kept patch indices each stored run recorded (``result["subset"]["indices"]``) and
rebuilds the domain's patches from the spec for each run's own data draw (its data seed: under
``data_seed = "per_seed"`` every seed draws its own images, and its indices point into them); trains nothing.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _indices(run: dict, store: str) -> np.ndarray:
    """The kept patch indices a redundancy run stored, checked: a non-empty list of non-negative integers."""
    from dqcl.errors import StoreError

    subset = run["result"].get("subset")
    kept = subset.get("indices") if isinstance(subset, dict) else None
    if not isinstance(kept, list) or not kept or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in kept):
        raise StoreError(f"{store}: run {run['key']} holds no list of kept patch indices (result.subset.indices)")
    return np.asarray(kept, dtype=np.int64)


def _main(argv: list[str] | None) -> None:
    from dqcl.config.expand import expand
    from dqcl.config.parse import load_spec
    from dqcl.core.scripts import ArgumentParser
    from dqcl.errors import StoreError
    from dqcl.results.stats import fmt, summarise
    from dqcl.results.store import Store
    from dqcl.train.run import prepare_domain

    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "benchmarks" / "redundancy.toml"))
    ap.add_argument("--store", default=str(ROOT / "leaderboard" / "runs.sqlite"))
    args = ap.parse_args(argv)

    # every input is read and checked before the domain's patches are built (which fills the data cache)
    spec = load_spec(Path(args.spec))
    cfgs = {c.key: c for c in expand(spec) if c.subset is not None}
    with Store(args.store, readonly=True) as store:
        kept = {run["key"]: _indices(run, args.store) for run in store.runs(spec.name) if run["key"] in cfgs}
    found = [k for k in cfgs if k in kept]
    if not found:
        raise StoreError(f"{args.store}: no run of {args.spec} is stored yet")
    # each run's indices point into its own data draw (data_seed = "per_seed": every seed draws its own
    # images), so each draw's patches are built and every run is read against the draw it trained on
    draws: dict[int, tuple] = {}
    for k in found:
        c = cfgs[k]
        if c.data_seed not in draws:
            train, _ = prepare_domain(c.domains[0], c)
            labels = train.targets[:, 0]
            draws[c.data_seed] = (len(train), np.array([len(np.unique(m[m > 0])) for m in labels], dtype=float),
                                  (labels > 0).reshape(len(labels), -1).mean(axis=1))
        n = draws[c.data_seed][0]
        if kept[k].max() >= n:
            raise StoreError(f"{args.store}: run {k} keeps patch {kept[k].max()}, but its data draw (data seed {c.data_seed}) has {n}")
    name = cfgs[found[0]].domains[0].name
    for ds, (n, cells, fg) in sorted(draws.items()):
        print(f"{name}, data seed {ds}: {n} training patches, {cells.mean():.2f} labelled objects and {fg.mean():.1%} "
              "foreground per patch")
    print()
    rows: dict[tuple[str, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for k in found:
        c, idx = cfgs[k], kept[k]
        _, cells, fg = draws[c.data_seed]
        rows[(c.subset.selector, c.subset.rate)]["cells"].append(cells[idx].mean() / cells.mean())
        rows[(c.subset.selector, c.subset.rate)]["fg"].append(fg[idx].mean() / fg.mean())
    print("| selector | rate | n | objects per kept patch / all patches | foreground per kept patch / all patches |")
    print("| --- | --- | --- | --- | --- |")
    for (sel, rate), v in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"| {sel} | {rate:.0%} | {len(v['cells'])} | {fmt(summarise(v['cells']))} | {fmt(summarise(v['fg']))} |")


def main(argv: list[str] | None = None) -> int:
    """The exit code: 0, or 2 with one line for a bad argument, spec or store (nothing written then)."""
    from dqcl.core.scripts import run_script

    return run_script(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
