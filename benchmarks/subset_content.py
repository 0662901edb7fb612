"""What a redundancy study's subsets keep: labelled objects and foreground per kept patch, by
selector and rate, against every training patch (the issue of a selector that keeps emptier
patches than random at the same size, which would bias "DQ vs random" comparisons).

    python benchmarks/subset_content.py [--spec benchmarks/redundancy.toml] [--store leaderboard/runs.sqlite]

Reads the kept patch indices each stored run recorded (``result["subset"]["indices"]``) and
rebuilds the domain's patches from the spec (the same data, by its data manifest); trains nothing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from dqcl.config.expand import expand
    from dqcl.config.parse import load_spec
    from dqcl.results.stats import fmt, summarise
    from dqcl.train.run import prepare_domain

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "benchmarks" / "redundancy.toml"))
    ap.add_argument("--store", default=str(ROOT / "leaderboard" / "runs.sqlite"))
    args = ap.parse_args()

    cfgs = {c.key: c for c in expand(load_spec(Path(args.spec))) if c.subset is not None}
    with sqlite3.connect(f"file:{args.store}?mode=ro", uri=True) as con:
        stored = {k: json.loads(r) for k, r in con.execute("SELECT key, result FROM runs")}
    found = [k for k in cfgs if k in stored]
    if not found:
        raise SystemExit(f"{args.store}: no run of {args.spec} is stored yet")
    first = cfgs[found[0]]
    train, _ = prepare_domain(first.domains[0], first)
    labels = train.targets[:, 0]
    cells = np.array([len(np.unique(m[m > 0])) for m in labels], dtype=float)
    fg = (labels > 0).reshape(len(labels), -1).mean(axis=1)
    print(f"{first.domains[0].name}: {len(train)} training patches, {cells.mean():.2f} labelled objects "
          f"and {fg.mean():.1%} foreground per patch\n")
    rows: dict[tuple[str, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for k in found:
        c, idx = cfgs[k], np.asarray(stored[k]["subset"]["indices"])
        rows[(c.subset.selector, c.subset.rate)]["cells"].append(cells[idx].mean() / cells.mean())
        rows[(c.subset.selector, c.subset.rate)]["fg"].append(fg[idx].mean() / fg.mean())
    print("| selector | rate | n | objects per kept patch / all patches | foreground per kept patch / all patches |")
    print("| --- | --- | --- | --- | --- |")
    for (sel, rate), v in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"| {sel} | {rate:.0%} | {len(v['cells'])} | {fmt(summarise(v['cells']))} | {fmt(summarise(v['fg']))} |")


if __name__ == "__main__":
    main()
