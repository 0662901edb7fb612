"""The paper's three claims (Zhao & Chen 2025, arXiv 2511.04803), tested on stored runs.

(a) Redundancy: a small DQ-selected share of a domain trains almost as well as all of it.
    From a redundancy study: the final score of training from scratch on each selector's
    subset at each rate; the smallest rate whose mean reaches 95 % of the full-data mean.
    Verdict on DQ at 10 %: supported if its mean reaches 95 % of the full-data mean.
(b) Asymmetry: fine-tuning the generalist (cyto) on a specialist forgets the source much
    more than the reverse. From naive runs in both directions: forgetting of the first
    domain, R[0][0] - R[1][0], generalist-first minus specialist-first, paired by seed.
(c) Replay: while adapting the generalist, replaying 5-10 % of the source chosen by DQ
    restores the source, and replaying all of it hurts the target. From replay runs at
    0 (naive), 1, 5, 10, 50, 100 % (each strategy's own rate, or a shared [memory] rate mixed
    into the training set): source score R[1][0] and target score R[1][1].
(d) Rate, count or share (a question the paper leaves open, issue 18): random replay budgets of
    three kinds over sources of three sizes (`_rate_or_count`); the verdict names the quantity
    whose arm keeps its gain on the source as the source grows.
(e) The same question, factorial (`_replay_threshold`): replay by minibatch at two source sizes, two
    memory sizes and two shares of each batch; each hypothesis predicts a sign per contrast, and the
    verdict names the one whose signs all three contrasts fit.
(f) Generalist first (issue 28, `_generalist_first`): over streams of 3+ domains, naive fine-tuning's
    average forgetting when the generalist comes first minus when it comes last, paired by seed.

Each claim is decided by a rule file of its own (`benchmarks/claims/*.toml`, read by
`dqcl.results.rules`): the deciding contrast's 95 % t interval over seeds (paired by seed; a ratio
seed by seed) is "supported" where it clears the rule's threshold on the claim's side,
"contradicted" where it lies on the other side or wholly within the rule's equivalence margin, and
"undecided" otherwise or below the rule's fewest seeds. Each row shows its rule (file, SHA-256, and
whether the file was committed before the first run it reads, else "post hoc") and an exact
sign-flip check. Claim (d) is supporting data: the rule of claim (e) gives the question to it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..core.text import NAME_LIMIT, markdown_text, shorten
from .entries import naive_label
from .compare import sign_flip_p
from .rules import Rule, decide, fixed_before, pattern_outcome, rule_of
from .stats import Summary, fmt, paired, summarise

__all__ = ["Claim", "claims", "claims_markdown", "GENERALIST"]

GENERALIST = "cyto"  # the built-in generalist domain; the others are specialists
RESTORED = 0.9  # a source is restored when its final score reaches this share of its score before adaptation
SATURATED = 0.95  # a subset "trains almost as well" when it reaches this share of the full-data score

Name = Callable[[Any], str]  # how a writer shows a name from a spec or store: study, domain, selector


def _plain(name: Any) -> str:
    """A name as a claim shows it before its format's escaping: at most NAME_LIMIT characters."""
    return shorten(str(name), NAME_LIMIT)


def _md(name: Any) -> str:
    return markdown_text(_plain(name))


@dataclass(frozen=True)
class Claim:
    claim: str  # "redundancy", "asymmetry", "replay: restores source", "replay: full replay hurts target"
    study: str  # as shown by the writer's name function (see `claims`)
    pair: str  # e.g. "cyto -> histo"
    evidence: str
    verdict: str
    rule: str = ""  # the rule that decided it (`dqcl.results.rules`): its file, digest, reading, and "post hoc" or not


def _rule_text(rule: Rule | None, rows: list[dict[str, Any]]) -> str:
    """The rule of a claim row in words, with whether it was fixed before the first of ``rows``' runs."""
    if rule is None:
        return "no rule file: the verdict is not decided"
    first = min((e["created"] for e in rows if e.get("created") is not None), default=None)
    return f"{rule.describe()}; {fixed_before(rule, first)}"


def _decided(values: dict[int, float], rule: Rule | None) -> str:
    return decide(values, rule).text() if rule is not None else "undecided (no rule)"


def _verdict(diff: Summary | None, expect_positive: bool) -> str:
    if diff is None or diff.n < 2:
        return "not enough seeds"
    if diff.excludes_zero():
        return "supported" if (diff.lo > 0) == expect_positive else "contradicted"
    return "not supported"


def _by_seed(es: list[dict[str, Any]], value) -> dict[int, float]:
    return {e["seed"]: float(value(e)) for e in es}


def _redundancy(rows: list[dict[str, Any]], metric: str, name: Name) -> list[Claim]:
    out = []
    for study in sorted({e["study"] for e in rows if e.get("selector") is not None}):
        mine = [e for e in rows if e["study"] == study and e["metric"] == metric and e.get("selector") is not None]
        cells: dict[tuple[str, float], list[dict]] = defaultdict(list)
        for e in mine:
            cells[(e["selector"], e["rate"])].append(e)
        full = summarise([e["R"][-1][0] for e in cells.get(("all", 1.0), [])])
        if full is None:
            continue
        parts = []
        for sel in sorted({s for s, _ in cells if s != "all"}):
            rates = sorted(r for s, r in cells if s == sel)
            means = {r: summarise([e["R"][-1][0] for e in cells[(sel, r)]]) for r in rates}
            hit = next((r for r in rates if means[r].mean >= SATURATED * full.mean), None)
            parts.append(f"{name(sel)} reaches {SATURATED:.0%} of full data at "
                         f"{'—' if hit is None else f'{hit:.0%}'}; at 10 %: {fmt(means.get(0.1))}")
        rule = rule_of("almost_as_well")
        selector, rate = (rule.extra.get("selector", "mmv"), float(rule.extra.get("rate", 0.1))) if rule else ("mmv", 0.1)
        dq = _by_seed(cells.get((selector, rate), []), lambda e: e["R"][-1][0])
        whole = _by_seed(cells.get(("all", 1.0), []), lambda e: e["R"][-1][0])
        # per seed: the subset's score over all the data's, on the same data draw
        ratio = {seed: dq[seed] / whole[seed] for seed in dq if seed in whole and whole[seed] > 0}
        rnd = paired(dq, _by_seed(cells.get(("random", rate), []), lambda e: e["R"][-1][0]))
        evidence = (f"{metric}, full data {fmt(full)}; " + "; ".join(parts)
                    + f"; {name(selector)} at {rate:.0%} over all data, seed by seed: {fmt(summarise(ratio.values()))}"
                    f"; DQ ({name(selector)}) − random at {rate:.0%}: {fmt(rnd, signed=True)}")
        verdict = "not run" if not dq else _decided(ratio, rule)
        domain = mine[0]["ordering"][0]
        out.append(Claim("redundancy: 10 % DQ trains almost as well as all data", name(study), name(domain), evidence, verdict,
                         _rule_text(rule, mine)))
    return out


def _asymmetry(rows: list[dict[str, Any]], metric: str, name: Name) -> list[Claim]:
    out = []
    groups: dict[tuple[str, tuple[str, ...]], list[dict]] = defaultdict(list)
    labels = _labels(rows)
    for e in rows:
        # naive at compute appended where a study ran it at both computes: one run per seed
        if (e["metric"] == metric and e["strategy"] == naive_label(labels[e["study"]], "appended")
                and e.get("selector") is None and len(e["ordering"]) == 2):
            groups[(e["study"], tuple(e["ordering"]))].append(e)
    for (study, order), es in sorted(groups.items()):
        if order[0] != GENERALIST or (study, order[::-1]) not in groups:
            continue
        forget = lambda e: e["R"][0][0] - e["R"][1][0]  # noqa: E731
        g2s, s2g = _by_seed(es, forget), _by_seed(groups[(study, order[::-1])], forget)
        diff = paired(g2s, s2g)
        first, second = name(order[0]), name(order[1])
        evidence = (f"{metric} forgetting of the first domain: {first} → {second} {fmt(summarise(g2s.values()))}, "
                    f"{second} → {first} {fmt(summarise(s2g.values()))}; difference {fmt(diff, signed=True)}")
        rule = rule_of("asymmetry")
        per_seed = {seed: g2s[seed] - s2g[seed] for seed in g2s if seed in s2g}
        out.append(Claim("asymmetry: generalist → specialist forgets more", name(study), f"{first} ↔ {second}",
                         evidence, _decided(per_seed, rule), _rule_text(rule, es + groups[(study, order[::-1])])))
    return out


def _generalist_first(rows: list[dict[str, Any]], metric: str, name: Name) -> list[Claim]:
    """In a study of streams of 3+ domains whose orders put the generalist first in some and last in others:
    naive fine-tuning's average forgetting over the stream, generalist first minus generalist last (each side
    the mean over its orders of one seed), paired by seed (`benchmarks/claims/generalist_first.toml`)."""
    rule = rule_of("generalist_first")
    generalist = str(rule.extra.get("generalist", GENERALIST)) if rule else GENERALIST
    labels = _labels(rows)
    by_study: dict[str, list[dict]] = defaultdict(list)
    for e in rows:
        if (e["metric"] == metric and e["strategy"] == naive_label(labels[e["study"]], "appended") and e.get("selector") is None
                and len(e["ordering"]) >= 3 and generalist in e["ordering"] and e.get("forgetting") is not None):
            by_study[e["study"]].append(e)
    out = []
    for study, es in sorted(by_study.items()):
        first = [e for e in es if e["ordering"][0] == generalist]
        last = [e for e in es if e["ordering"][-1] == generalist]
        if not first or not last:
            continue

        def per_seed(side: list[dict]) -> dict[int, float]:
            seeds: dict[int, list[float]] = defaultdict(list)
            for e in side:
                seeds[e["seed"]].append(float(e["forgetting"]))
            return {s: float(np.mean(v)) for s, v in seeds.items()}

        f, l = per_seed(first), per_seed(last)
        diff = {s: f[s] - l[s] for s in f if s in l}
        orders = lambda side: len({tuple(e["ordering"]) for e in side})  # noqa: E731
        evidence = (f"{metric} average forgetting of naive fine-tuning over {len(es[0]['ordering'])}-domain streams: "
                    f"{name(generalist)} first {fmt(summarise(f.values()))} ({orders(first)} order(s)), last "
                    f"{fmt(summarise(l.values()))} ({orders(last)} order(s)); first − last {fmt(summarise(diff.values()), signed=True)}")
        out.append(Claim("generalist first: forgets less over the stream than generalist last", name(study),
                         f"{name(generalist)} first vs last", evidence, _decided(diff, rule), _rule_text(rule, first + last)))
    return out


def _labels(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each study's strategy labels."""
    out: dict[str, set[str]] = defaultdict(set)
    for e in rows:
        out[e["study"]].add(e["strategy"])
    return out


def _rate_label(e: dict[str, Any]) -> tuple[str, float] | None:
    """(replay kind, rate) of a run for claim (c): the strategy's own ``rate``, or a shared ``[memory] rate``
    mixed into the training set (the paper's protocol; a rate replayed by minibatch is another protocol and
    not pooled with it); naive is ("none", 0)."""
    name, params, budget = e["strategy_name"], e["params"], e.get("memory")
    if name == "naive":
        return ("none", 0.0)
    if name not in ("replay", "dq_replay"):
        return None
    if budget is not None:  # the shared budget, not the strategy's own rate, decided its memory
        return (name, float(budget["rate"])) if budget.get("rate") and budget["protocol"] == "mix" else None
    return None if params.get("rate") is None else (name, float(params["rate"]))


def _rate_cells(rows: list[dict[str, Any]], metric: str) -> dict[tuple[str, tuple[str, ...]], dict[tuple[str, float], list[dict]]]:
    """Per (study, ordering): the runs of each (replay kind, rate), naive as ("none", 0). A cell is one
    strategy label (and compute, under a shared budget): two labels of the same kind and rate (DQ with
    two embedders, say, or one at compute appended and matched) are not pooled; the first (by name) is kept,
    except naive run at both computes, where the one at the replay cells' compute is kept."""
    by_label: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for e in rows:
        lab = _rate_label(e) if e["metric"] == metric and e.get("selector") is None and len(e["ordering"]) == 2 else None
        if lab is not None:
            # runs of one label at two budgets of the same rate (compute appended and matched) are two cells too
            cell = e["strategy"] + ("" if e.get("memory") is None else f" (compute {e['memory']['compute']})")
            by_label[(e["study"], tuple(e["ordering"]), lab)][cell].append(e)
    groups: dict = defaultdict(dict)
    for (study, order, lab), labels in by_label.items():
        groups[(study, order)][lab] = labels[sorted(labels)[0]]
    for (study, order), cells in groups.items():
        # naive run at both computes: the one at the replay cells' compute (the first's, by rate)
        naive = {runs[0].get("compute", "appended"): runs for runs in by_label.get((study, order, ("none", 0.0)), {}).values()}
        replayed = [runs[0].get("compute", "appended") for lab, runs in sorted(cells.items()) if lab != ("none", 0.0)]
        if len(naive) > 1 and replayed and replayed[0] in naive:
            cells[("none", 0.0)] = naive[replayed[0]]
    return groups


def _replay(rows: list[dict[str, Any]], metric: str, name: Name) -> list[Claim]:
    out = []
    groups = _rate_cells(rows, metric)
    for (study, order), cells in sorted(groups.items()):
        rates = sorted({r for (kind, r) in cells if kind == "dq_replay"})
        if order[0] != GENERALIST or ("none", 0.0) not in cells or not rates:
            continue
        source_name, target_name = name(order[0]), name(order[1])
        pair = f"{source_name} → {target_name}"
        source = lambda e: e["R"][1][0]  # noqa: E731
        target = lambda e: e["R"][1][1]  # noqa: E731
        naive = cells[("none", 0.0)]
        for rate in (r for r in (0.05, 0.1) if ("dq_replay", r) in cells):
            dq = cells[("dq_replay", rate)]
            rule = rule_of("restored", rate=rate)
            gain = paired(_by_seed(dq, source), _by_seed(naive, source))
            # per seed: the source's score after adaptation over its score before, in the same run
            share = {e["seed"]: source(e) / e["R"][0][0] for e in dq if e["R"][0][0] > 0}
            vs_random = paired(_by_seed(dq, source), _by_seed(cells.get(("replay", rate), []), source))
            out.append(Claim(
                f"replay: {rate:.0%} DQ replay restores the source", name(study), pair,
                f"{metric} on {source_name}: {fmt(summarise(_by_seed(dq, source).values()))} with {rate:.0%} DQ replay, "
                f"{fmt(summarise(_by_seed(naive, source).values()))} without (gain {fmt(gain, signed=True)}); "
                f"{fmt(summarise(share.values()))} of its score before adaptation, seed by seed (restored: ≥ {RESTORED:.0%}); "
                f"DQ − random at {rate:.0%}: {fmt(vs_random, signed=True)}",
                _decided(share, rule), _rule_text(rule, dq + naive),
            ))
        full = cells.get(("replay", 1.0))
        if full:
            rule = rule_of("full_replay_target")
            loss = paired(_by_seed(full, target), _by_seed(naive, target))
            theirs, base = _by_seed(full, target), _by_seed(naive, target)
            out.append(Claim(
                "replay: full (100 %) replay hurts the target", name(study), pair,
                f"{metric} on {target_name}: {fmt(summarise(theirs.values()))} with 100 % replay, "
                f"{fmt(summarise(base.values()))} without (difference {fmt(loss, signed=True)})",
                _decided({seed: theirs[seed] - base[seed] for seed in theirs if seed in base}, rule), _rule_text(rule, full + naive),
            ))
    return out


def _arm(b: dict[str, Any], batch: int) -> tuple[str, str]:
    """(arm, value) of a replay budget: what it holds fixed as the source grows."""
    if b["protocol"] == "batch":
        return "share", f"{b['replay_batch'] or batch} of {batch} per batch at {b['rate']:.0%}" if b["rate"] else \
            f"{b['replay_batch'] or batch} of {batch} per batch, {b['size']} patches"
    return ("rate", f"{b['rate']:.0%}") if b["rate"] else ("count", f"{b['size']} patches")


def _rate_or_count(rows: list[dict[str, Any]], metric: str, name: Name) -> list[Claim]:
    """Is the replay threshold a rate, a count, or a share of each batch? From a study whose orderings
    share a target and differ in the source's size, with random replay under [memory] budgets of three
    kinds (see benchmarks/rate_or_count_*.toml). For each budget the gain on the source (replay − naive,
    final score R[1][0], paired by seed) at the largest source minus at the smallest: the quantity
    that decides is the one whose arm keeps its gain as the source grows (an interval including 0)
    while the arms that hold it only by accident do not."""
    out = []
    cells: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    sizes: dict[str, dict[tuple[str, ...], int]] = defaultdict(dict)
    labels = _labels(rows)
    for e in rows:
        if e["metric"] != metric or e.get("selector") is not None or len(e["ordering"]) != 2:
            continue
        order, n = tuple(e["ordering"]), (e.get("train_patches") or {}).get(e["ordering"][0])
        if n is None:
            continue
        sizes[e["study"]][order] = int(n)
        if e["strategy_name"] == "naive":
            # each arm is paired with naive at its own compute (matched drops the short last batch)
            compute = e.get("compute") or "appended"
            if e["strategy"] == naive_label(labels[e["study"]], compute):
                cells[e["study"]][("naive", compute)][order].append(e)
        elif e["strategy_name"] == "replay" and e.get("memory"):
            cells[e["study"]][_arm(e["memory"], e.get("batch_size") or 8)][order].append(e)
    for study, arms in sorted(cells.items()):
        by_size = sorted(sizes[study], key=lambda o: sizes[study][o])
        if len({o[1] for o in by_size}) != 1 or len(by_size) < 2 or not {"rate", "count"} <= {a for a, _ in arms}:
            continue  # a study without rate and count arms (replay_threshold's factorial, say) is not this one
        small, large = by_size[0], by_size[-1]
        computes = sorted(c for a, c in arms if a == "naive")
        verdicts, parts, kept = {}, None, set()
        for baseline in [None, *computes] if len(computes) > 1 else [None]:
            verdict, found, held = _rate_or_count_rule(arms, small, large, sizes[study], baseline)
            if found:
                verdicts[baseline] = verdict
                if baseline is None:
                    parts, kept = found, held
        if not parts:
            continue
        rule = rule_of("threshold_factorial")
        carried = f"replay_threshold carries the question ({rule.name}.toml)" if rule else "replay_threshold carries the question"
        by = "; ".join(f"{verdicts[b]} with naive at {'each arm' + chr(39) + 's compute' if b is None else 'compute ' + b}"
                       for b in verdicts)
        out.append(Claim("replay threshold: rate, count or share of each batch?", name(study),
                         f"{name(small[0])} … {name(large[0])} → {name(small[1])}",
                         f"{metric} on the source, random replay − naive: " + "; ".join(parts)
                         + f"; arms whose gain held as the source grew: {', '.join(sorted(kept)) or 'none'}",
                         f"supporting data, no verdict of its own: {carried}; its own rule (written before its runs, "
                         f"non-directional) gives {by}",
                         "its study's own rule (benchmarks/rate_or_count_*.toml headers), under each defensible baseline"))
    return out


def _rate_or_count_rule(arms: dict, small: tuple, large: tuple, sizes: dict, baseline: str | None) -> tuple[str, list[str], set[str]]:
    """rate_or_count's own rule (an arm "holds" where its gain's change from the smallest to the largest source
    has an interval across 0), each arm paired with naive at ``baseline``'s compute (None: at the arm's own):
    (its verdict, the evidence per arm, the arms that held)."""
    source = lambda e: e["R"][1][0]  # noqa: E731
    flat: dict[str, list[bool]] = defaultdict(list)
    parts = []
    for (arm, value), by_order in sorted(arms.items()):
        if arm == "naive" or small not in by_order or large not in by_order:
            continue
        naive = arms.get(("naive", baseline or by_order[large][0]["memory"]["compute"]), {})
        gains = {o: paired(_by_seed(by_order[o], source), _by_seed(naive.get(o, []), source)) for o in (small, large)}
        if any(g is None for g in gains.values()):
            continue
        change = paired(_gain_by_seed(by_order[large], naive.get(large, []), source),
                        _gain_by_seed(by_order[small], naive.get(small, []), source))
        if change is None or change.n < 2:
            continue
        flat[arm].append(not change.excludes_zero())
        parts.append(f"{arm} {value}: gain {fmt(gains[small], signed=True)} at {sizes[small]} source patches, "
                     f"{fmt(gains[large], signed=True)} at {sizes[large]} (change {fmt(change, signed=True)})")
    kept = {arm for arm, f in flat.items() if f and all(f)}
    moved = {arm for arm, f in flat.items() if not all(f)}
    if {"rate", "count"} <= set(flat) and "rate" in kept and "count" in moved:
        verdict = "rate"
    elif {"rate", "count", "share"} <= set(flat) and "count" in kept and {"rate", "share"} <= moved:
        verdict = "count"
    elif {"rate", "count", "share"} <= set(flat) and {"count", "share"} <= kept and "rate" in moved:
        verdict = "share of each batch"
    else:
        verdict = "undecided"
    return verdict, parts, kept


# claim (e): the sign each hypothesis predicts for the three contrasts of `_replay_threshold`
# (+ above 0, - below 0, 0 an interval across 0), in the order size, count, share
THRESHOLD_SIGNS = {"count": ("0", "+", "0"), "share of each batch": ("0", "0", "+"), "rate": ("-", "+", "0")}


def _sign(s: Summary) -> str:
    return "+" if s.n >= 2 and s.lo > 0 else "-" if s.n >= 2 and s.hi < 0 else "0"


def _replay_threshold(rows: list[dict[str, Any]], metric: str, name: Name) -> list[Claim]:
    """Is the replay threshold a count, a share of each batch, or a rate? From a factorial study (see
    benchmarks/replay_threshold_k*.toml): random replay by minibatch at compute matched, two source sizes
    with one target, two memory sizes (patches) and two shares (memory samples per batch). The gain on the
    source (replay - naive, final R[1][0], paired by seed) gives three contrasts, each the mean over the
    other two factors' cells, seed by seed: size (largest source - smallest), count (largest memory -
    smallest), share (most memory samples per batch - fewest). The verdict names the hypothesis whose
    predicted signs (`THRESHOLD_SIGNS`) all three contrasts' intervals fit; none fits: "none alone"."""
    out = []
    naive: dict[str, dict] = defaultdict(lambda: defaultdict(dict))  # study -> source -> seed -> score
    replayed: dict[str, dict] = defaultdict(lambda: defaultdict(dict))  # study -> (source, count, share) -> seed -> replay score
    batches: dict[str, set[int]] = defaultdict(set)  # study -> the batch sizes its replay runs trained with
    patches: dict[str, dict[tuple[str, ...], list[int]]] = defaultdict(lambda: defaultdict(list))
    for e in rows:
        if e["metric"] != metric or e.get("selector") is not None or len(e["ordering"]) != 2:
            continue
        order, n, b = tuple(e["ordering"]), (e.get("train_patches") or {}).get(e["ordering"][0]), e.get("memory")
        if n is None:
            continue
        if e["strategy_name"] == "naive" and (e.get("compute") or "appended") == "matched":
            naive[e["study"]][order][e["seed"]] = float(e["R"][1][0])
            patches[e["study"]][order].append(int(n))
        elif (e["strategy_name"] == "replay" and b and b.get("protocol") == "batch" and b.get("size") and not b.get("rate")
              and b.get("compute") == "matched"):
            batch = int(e.get("batch_size") or 8)
            batches[e["study"]].add(batch)
            replayed[e["study"]][(order, int(b["size"]), int(b["replay_batch"] or batch))][e["seed"]] = float(e["R"][1][0])
    # a source's size: its training patches, the mean over seeds (each seed draws its own images)
    sizes = {study: {o: round(sum(ns) / len(ns)) for o, ns in by_order.items()} for study, by_order in patches.items()}
    for study, cells in sorted(replayed.items()):
        orders = sorted(sizes.get(study, {}), key=lambda o: sizes[study][o])
        if len(batches[study]) != 1:
            continue  # a share of each batch means nothing across batch sizes
        counts, shares = sorted({c for _, c, _ in cells}), sorted({k for _, _, k in cells})
        if len({o[1] for o in orders}) != 1 or len(orders) < 2 or len(counts) < 2 or len(shares) < 2:
            continue
        factors = [(o, c, k) for o in (orders[0], orders[-1]) for c in (counts[0], counts[-1]) for k in (shares[0], shares[-1])]
        if any(f not in cells for f in factors):
            continue
        seeds = sorted(set.intersection(*(set(cells[f]) for f in factors), *(set(naive[study][o]) for o in orders)))
        if len(seeds) < 2:
            continue
        gain = {f: {s: cells[f][s] - naive[study][f[0]][s] for s in seeds} for f in factors}

        def contrast(axis: int, hi, lo) -> dict[int, float]:
            per_seed = {}
            for s in seeds:
                diffs = [gain[f][s] - gain[tuple(lo if i == axis else x for i, x in enumerate(f))][s] for f in factors if f[axis] == hi]
                per_seed[s] = sum(diffs) / len(diffs)
            return per_seed

        small, large = orders[0], orders[-1]
        values = (contrast(0, large, small), contrast(1, counts[-1], counts[0]), contrast(2, shares[-1], shares[0]))
        found = tuple(summarise(v.values()) for v in values)
        signs = tuple(_sign(c) for c in found)
        rule = rule_of("threshold_factorial")
        if rule is None:
            fits = [h for h, predicted in THRESHOLD_SIGNS.items() if predicted == signs]
            moved = [axis for axis, sign in zip(("source size", "count", "share"), signs) if sign != "0"]
            verdict = fits[0] if len(fits) == 1 else ("none alone: depends on " + " and ".join(moved) if moved else "undecided")
        else:  # each hypothesis read against the rule's predicted signs, "0" within its equivalence margin
            outcomes = pattern_outcome(list(values), rule)
            verdict = "; ".join(f"{h}: **{o}**" for h, o in outcomes.items())
            flips = [sign_flip_p(list(v.values())) for v in values]
            verdict += "; sign-flip p of the contrasts (size, count, share): " + ", ".join(f"{q:.2g}" for q in flips)
        (batch,) = batches[study]
        cell_text = "; ".join(
            f"{sizes[study][o]} source patches, {c} memory patches, {k} of {batch} per batch: gain "
            f"{fmt(summarise(gain[(o, c, k)].values()), signed=True)}" for o, c, k in factors)
        evidence = (f"{metric} on the source, random replay − naive ({len(seeds)} seeds; source sizes in training patches, "
                    f"the mean over seeds): {cell_text}. Contrasts: source "
                    f"{sizes[study][large]} − {sizes[study][small]} patches {fmt(found[0], signed=True)} ({signs[0]}); memory "
                    f"{counts[-1]} − {counts[0]} patches {fmt(found[1], signed=True)} ({signs[1]}); {shares[-1]} − {shares[0]} "
                    f"of {batch} per batch {fmt(found[2], signed=True)} ({signs[2]}); predicted (size, count, share): "
                    + ", ".join(f"{h} ({' '.join(p)})" for h, p in THRESHOLD_SIGNS.items()))
        out.append(Claim("replay threshold: count, share of each batch or rate? (factorial)", name(study),
                         f"{name(small[0])}, {name(large[0])} → {name(small[1])}", evidence, verdict,
                         _rule_text(rule, [e for e in rows if e["study"] == study and e["metric"] == metric])))
    return out


def _gain_by_seed(runs: list[dict], naive: list[dict], value) -> dict[int, float]:
    """Replay − naive, seed by seed."""
    a, b = _by_seed(runs, value), _by_seed(naive, value)
    return {s: a[s] - b[s] for s in a if s in b}


def claims(rows: list[dict[str, Any]], metric: str = "ap50", name: Name = _plain) -> list[Claim]:
    """Every claim the stored runs can test, with its evidence and verdict. Study, domain and selector
    names (in ``study``, ``pair`` and ``evidence``) are shown by ``name``: shortened by default, for
    a writer that escapes whole fields (HTML); Markdown passes its own escaping."""
    return (_redundancy(rows, metric, name) + _asymmetry(rows, metric, name) + _replay(rows, metric, name)
            + _rate_or_count(rows, metric, name) + _replay_threshold(rows, metric, name) + _generalist_first(rows, metric, name))


def _curve_table(rows: list[dict[str, Any]], metric: str) -> list[str]:
    """Source and target scores per replay rate, DQ vs random, for each replay study and pair (Markdown;
    the replay kinds are dqcl's own words, study and domain names are escaped)."""
    lines = []
    groups = _rate_cells(rows, metric)
    for (study, order), cells in sorted(groups.items()):
        if not any(name != "none" for name, _ in cells):
            continue
        source, target = _md(order[0]), _md(order[1])
        lines += [f"**{_md(study)}: {source} → {target}** ({metric}; source = {source}, target = {target}; "
                  "mean ± std [95 % interval] over seeds)", "",
                  "| replay | rate | n | source | target |", "| --- | --- | --- | --- | --- |"]
        for (name, rate), es in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            lines.append(f"| {name} | {rate:.0%} | {len(es)} | {fmt(summarise(e['R'][1][0] for e in es))} | "
                         f"{fmt(summarise(e['R'][1][1] for e in es))} |")
        lines.append("")
    return lines


def claims_markdown(rows: list[dict[str, Any]], metric: str = "ap50") -> list[str]:
    """The Claims section of the leaderboard (empty when no stored study tests a claim)."""
    found = claims(rows, metric, _md)
    if not found:
        return []
    lines = ["## Claims of the paper, tested", "",
             "Each claim is decided by a rule fixed in a file of its own (`benchmarks/claims/`, `dqcl.results.rules`): its "
             "deciding contrast's 95 % interval over seeds (paired by seed; ratios seed by seed) is **supported** where it "
             "clears the threshold on the claim's side, **contradicted** where it lies on the other side or within the "
             "equivalence margin, **undecided** otherwise or below the rule's fewest seeds (with the seeds the observed "
             "spread would need). An exact sign-flip p-value checks it without normality (\"t only\" where it does not "
             "agree). The rule column gives the file's SHA-256 and whether it was committed before the first run it reads "
             "(else **post hoc**). Built-in CPU-sized domains, not the paper's data.", "",
             "| claim | study | domains | rule | evidence | verdict |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {c.claim} | {c.study} | {c.pair} | {markdown_text(c.rule)} | {c.evidence} | "
              f"{c.verdict if '**' in c.verdict else '**' + c.verdict + '**'} |" for c in found]
    lines.append("")
    return lines + _curve_table(rows, metric)
