"""Does the published protocol under-train? Reads `steps_check` (naive and joint at 500 steps per
experience) against the same runs of `budget_baselines` at 250, paired by strategy, ordering and seed
(each pair of one protocol but the steps: the script refuses a pair whose data, data draw, images,
Cellpose, memory budget or compute differ), and
prints, per strategy and ordering, plasticity, ACC and forgetting (AP@0.5; joint, one experience, has ACC only) at 250 and at 500 steps
with the paired change and its 95 % t-interval over the seeds.

    dqcl run benchmark benchmarks/steps_check.toml --store leaderboard/steps_check.sqlite --executor process --workers 2
    python benchmarks/steps_check.py [--published leaderboard/runs.sqlite] [--check leaderboard/steps_check.sqlite]

Issue 27's convergence check (benchmarks/steps_converge.toml: naive and joint at 250, 500 and 1,000
cosine-decayed steps, studies steps_converge_250/_500/_1000) pairs each step count with its double the
same way and applies the rule fixed in that spec before its runs: the published step count is the
smallest whose doubling moves naive's and joint's mean ACC by less than 0.01 on both orderings.

    python benchmarks/steps_check.py --converge leaderboard/steps_converge.sqlite [--steps-only]
(with the extension's study steps_converge_2000 in the store, 1,000 against 2,000 steps is judged too)
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


def paired(published, check, metric: str = "ap50", names: tuple[str, str] = ("budget_baselines", "steps_check"),
           steps: tuple[int, int] = (250, 500)):
    """One row per (strategy, ordering, measure): mean at ``steps[0]`` and ``steps[1]`` steps (studies ``names``),
    the paired change and its interval, the number of seeds. A pair must share its protocol but for the steps (`SAME`)."""
    a = published[published.metric == metric]
    b = check[check.metric == metric]
    for frame, study in ((a, names[0]), (b, names[1])):
        twice = frame[frame.duplicated(KEYS)]
        if len(twice):
            key = "/".join(map(str, twice.iloc[0][KEYS]))
            raise DqclError(f"steps_check: {study} holds two runs of {key} (two protocols under one label); give a store of one")
    a, b = a.set_index(KEYS), b.set_index(KEYS)
    both = a.index.intersection(b.index)
    if len(both) == 0:
        raise DqclError(f"steps_check: no run of {names[1]} has a {names[0]} run of the same strategy, ordering and seed")
    for key in both:
        for column, what in SAME.items():
            if column in a.columns and column in b.columns:
                x, y = _value(a.loc[key, column]), _value(b.loc[key, column])
                if x is not None and y is not None and x != y:
                    raise DqclError(f"steps_check: {'/'.join(map(str, key))} trained on {what} than {names[0]} "
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
                         f"{steps[0]} steps": x.mean(), f"{steps[1]} steps": y.mean(), "change": change.mean, "lo": change.lo,
                         "hi": change.hi})
    return rows


CONVERGE_STEPS = (250, 500, 1000)  # benchmarks/steps_converge.toml's step counts (studies steps_converge_N)
CONVERGE_EXTENSION = 2000  # its extension, fixed before its runs: read where the store holds it (steps_converge_2000)
CONVERGE_MARGIN = 0.01  # its rule: doubling the steps moves the mean ACC by less than this
CONVERGE_STRATEGIES = ("naive", "joint")
CONVERGE_ORDERINGS = 2


def converged(pairs: dict[int, list[dict]]) -> tuple[int | None, list[str]]:
    """The rule of benchmarks/steps_converge.toml on ``pairs`` (step count S -> `paired` rows of S against 2S):
    the smallest S whose doubling moves naive's and joint's mean ACC by less than `CONVERGE_MARGIN` on both
    orderings, and one line per step count saying why it is or is not. A step count with a strategy or an
    ordering missing cannot pass."""
    why = []
    for s in sorted(pairs):
        acc = [r for r in pairs[s] if r["measure"] == "acc" and r["strategy"] in CONVERGE_STRATEGIES]
        cells = {(r["strategy"], r["ordering"]) for r in acc}
        if len(cells) < len(CONVERGE_STRATEGIES) * CONVERGE_ORDERINGS:
            why.append(f"{s} steps: undecided, {len(cells)} of {len(CONVERGE_STRATEGIES) * CONVERGE_ORDERINGS} strategy-ordering "
                       f"cells have runs at both {s} and {2 * s} steps")
            continue
        worst = max(acc, key=lambda r: abs(r["change"]))
        moved = abs(worst["change"]) >= CONVERGE_MARGIN
        why.append(f"{s} steps: doubling moves mean ACC by at most {worst['change']:+.3f} ({worst['strategy']}, {worst['ordering']}), "
                   f"{'not ' if moved else ''}below {CONVERGE_MARGIN}")
        if not moved:
            return s, why
    return None, why


def _table(rows: list[dict], steps: tuple[int, int]) -> list[str]:
    a, b = (f"{n} steps" for n in steps)
    out = [f"| strategy | ordering | measure | seeds | {a} | {b} | change [95 % interval] |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {markdown_text(r['strategy'])} | {markdown_text(r['ordering'])} | {r['measure']} | {r['seeds']} | {r[a]:.3f} | "
                   f"{r[b]:.3f} | {r['change']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] |")
    return out


def _load(path: str, study: str):
    frame = dqcl.load_results(path, study=study)
    if frame.empty:
        raise DqclError(f"{path}: holds no run of study {study}")
    check_columns(frame, path)
    return frame


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--published", default="leaderboard/runs.sqlite")
    p.add_argument("--check", default="leaderboard/steps_check.sqlite")
    p.add_argument("--converge", metavar="STORE", help="issue 27's convergence check: the studies steps_converge_N of STORE")
    p.add_argument("--steps-only", action="store_true", help="with --converge: print the published step count alone")
    try:  # every input (arguments, both stores, the pairing) is checked before a line is printed; nothing is written
        args = p.parse_args(argv)
        if args.converge:
            frames = {n: _load(args.converge, f"steps_converge_{n}") for n in CONVERGE_STEPS}
            extension = dqcl.load_results(args.converge, study=f"steps_converge_{CONVERGE_EXTENSION}")
            undecided = []
            if not extension.empty:  # 1,000 against 2,000 steps, once the extension holds every run of its rule
                check_columns(extension, args.converge)
                runs = {(r.strategy, r.ordering, r.seed) for r in extension.itertuples()}
                wanted = {(r.strategy, r.ordering, r.seed) for r in frames[CONVERGE_STEPS[-1]].itertuples()}
                if wanted <= runs:
                    frames[CONVERGE_EXTENSION] = extension
                else:
                    undecided.append(f"{CONVERGE_STEPS[-1]} steps: undecided, {len(wanted & runs)} of the {len(wanted)} runs "
                                     f"at {CONVERGE_EXTENSION} steps are stored")
            pairs = {n: paired(frames[n], frames[2 * n], names=(f"steps_converge_{n}", f"steps_converge_{2 * n}"), steps=(n, 2 * n))
                     for n in CONVERGE_STEPS if 2 * n in frames}
            chosen, why = converged(pairs)
            why += undecided
            if args.steps_only:
                if chosen is None:
                    raise DqclError(f"{args.converge}: no step count is shown converged ({'; '.join(why)})")
                print(chosen)
                return 0
        else:
            rows = paired(_load(args.published, "budget_baselines"), _load(args.check, "steps_check"))
    except DqclError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    if not args.converge:
        print("\n".join(_table(rows, (250, 500))))
        return 0
    for n, rows in pairs.items():
        print("\n".join([f"### {n} against {2 * n} steps", "", *_table(rows, (n, 2 * n)), ""]))
    print("\n".join(f"- {line}" for line in why))
    print(f"\nPublished step count: {chosen}" if chosen is not None else f"\nNo step count of {tuple(pairs)} is shown converged.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
