"""Does the published protocol under-train? Reads `steps_check` (naive and joint at 500 steps per
experience) against the same runs of `budget_baselines` at 250, paired by strategy, ordering and seed
(each pair of one protocol but the steps: the script refuses a pair whose data, data draw, images,
Cellpose, memory budget or compute differ), and
prints, per strategy and ordering, plasticity, ACC and forgetting (AP@0.5; joint, one experience, has ACC only) at 250 and at 500 steps
with the paired change and its 95 % t-interval over the seeds.

    dqcl run benchmark benchmarks/steps_check.toml --store leaderboard/steps_check.sqlite --executor process --workers 2
    python benchmarks/steps_check.py [--published leaderboard/runs.sqlite] [--check leaderboard/steps_check.sqlite]
"""

from __future__ import annotations

import sys

import dqcl
from dqcl.core.scripts import ArgumentParser, error_line
from dqcl.core.text import markdown_text
from dqcl.errors import DqclError
from dqcl.results.stats import summarise

MEASURES = ("plasticity", "acc", "forgetting")


KEYS = ["strategy", "ordering", "seed"]
# what a pair must share beside its strategy, ordering and seed (where both sources have it): everything
# of its protocol but the steps (dqcl.config.protocol), so 250 and 500 steps are the only difference
SAME = {"data_manifests": "other data", "train_hashes": "other images (another data draw)", "data_draw": "another data draw",
        "cellpose": "another Cellpose (other flow targets)", "memory_budget": "another memory budget", "compute": "another compute"}


def _value(v):
    """A cell as compared: dicts and lists as sorted JSON, a missing value as None."""
    import json
    import math

    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return None if v is None or isinstance(v, float) and math.isnan(v) else v


def check_columns(frame, path: str) -> None:
    """Refuse a source without the columns the pairing reads (a leaderboard.json of another shape)."""
    missing = [c for c in (*KEYS, "metric", *MEASURES) if c not in frame.columns]
    if missing:
        raise DqclError(f"{path}: its rows have no {', '.join(missing)}; give a dqcl results store or a leaderboard.json of its runs")


def paired(published, check, metric: str = "ap50"):
    """One row per (strategy, ordering, measure): mean at 250 and 500 steps, the paired change and
    its interval, the number of seeds. A pair must share its protocol but for the steps (`SAME`)."""
    a = published[published.metric == metric]
    b = check[check.metric == metric]
    for frame, study in ((a, "budget_baselines"), (b, "steps_check")):
        twice = frame[frame.duplicated(KEYS)]
        if len(twice):
            key = "/".join(map(str, twice.iloc[0][KEYS]))
            raise DqclError(f"steps_check: {study} holds two runs of {key} (two protocols under one label); give a store of one")
    a, b = a.set_index(KEYS), b.set_index(KEYS)
    both = a.index.intersection(b.index)
    if len(both) == 0:
        raise DqclError("steps_check: no run of the check has a budget_baselines run of the same strategy, ordering and seed")
    for key in both:
        for column, what in SAME.items():
            if column in a.columns and column in b.columns:
                x, y = _value(a.loc[key, column]), _value(b.loc[key, column])
                if x is not None and y is not None and x != y:
                    raise DqclError(f"steps_check: {'/'.join(map(str, key))} trained on {what} than budget_baselines "
                                    f"({column} differs); the pair is not comparable")
    rows = []
    for (strategy, ordering), idx in both.to_frame(index=False).groupby(["strategy", "ordering"]):
        sel = list(map(tuple, idx[KEYS].to_numpy()))
        for m in MEASURES:
            x, y = a.loc[sel, m].to_numpy(float), b.loc[sel, m].to_numpy(float)
            change = summarise(y - x)  # the project's paired t-interval over seeds
            if change is None:
                continue  # a measure the strategy does not have (joint: one experience, no forgetting)
            rows.append({"strategy": strategy, "ordering": ordering, "measure": m, "seeds": change.n,
                         "250 steps": x.mean(), "500 steps": y.mean(), "change": change.mean, "lo": change.lo, "hi": change.hi})
    return rows


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--published", default="leaderboard/runs.sqlite")
    p.add_argument("--check", default="leaderboard/steps_check.sqlite")
    try:  # every input (arguments, both stores, the pairing) is checked before a line is printed; nothing is written
        args = p.parse_args(argv)
        frames = {}
        for path, study in ((args.published, "budget_baselines"), (args.check, "steps_check")):
            frames[study] = dqcl.load_results(path, study=study)
            if frames[study].empty:
                raise DqclError(f"{path}: holds no run of study {study}")
            check_columns(frames[study], path)
        rows = paired(frames["budget_baselines"], frames["steps_check"])
    except DqclError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    print("| strategy | ordering | measure | seeds | 250 steps | 500 steps | change [95 % interval] |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {markdown_text(r['strategy'])} | {markdown_text(r['ordering'])} | {r['measure']} | {r['seeds']} | {r['250 steps']:.3f} | {r['500 steps']:.3f} | "
              f"{r['change']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
