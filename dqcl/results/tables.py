"""The leaderboard's tables as rows of cells, for every format to show.

Per (study, metric, ordering) a continual table, best ACC first, with ranks and the paired
difference to naive; the weights-vs-statistics rows, the health lines and the Data line of a
study. Cells are mean ± std over seeds (`dqcl.results.stats`); names from the store are shown
by a ``name`` function, so that each writer escapes them for its own format.

Memory budgets: where a study's rehearsal strategies ran at more than one budget (their
``[memory]`` size or rate, protocol, replay minibatch or compute differ), each table is split
into one block per budget, ranked on its own: the block holds the runs of that budget and the
strategies that keep no bounded memory (naive, cumulative, a regulariser), whose runs no budget
changes, in every block. Where runs recorded it, a table shows the memory each strategy held
(patches, the most over its seeds; "all" for a strategy that keeps every patch) and the samples
it backpropagated per optimiser step; a table none of whose runs recorded them leaves the columns out.
"""

from __future__ import annotations

import functools
import json
import math
from collections import defaultdict
from typing import Any, Callable

import numpy as np

from ..core.text import NAME_LIMIT, shorten
from .cl_metrics import CL_METRICS
from .entries import budget_text, naive_label
from .health import health_flags
from .compare import Block, compare
from .stats import fmt, summarise

__all__ = ["COST_HEADERS", "MEMORY_HEADERS", "TABLE_METRICS", "Name", "block_names", "ranked_blocks"]

Name = Callable[[Any], str]  # how a writer shows a name from a spec or store (see `dqcl.core.text`)


def _shown(name: Any) -> str:
    """A name as a table or heading shows it before its format's escaping: at most NAME_LIMIT characters."""
    return shorten(str(name), NAME_LIMIT)


def _cell(values, interval: bool = False) -> str:
    """mean ± std over seeds (ddof = 1), with the 95 % interval if asked; one seed: the value; none: —."""
    return fmt(summarise(values), interval=interval)


def _ranks(accs: dict[str, dict[int, float]]) -> dict[str, str]:
    """The groups of a block (`dqcl.results.compare`): every pair compared on its shared seeds, Holm-adjusted
    over the block; strategies that share a letter are not told apart. Fewer than two seeds: "—"."""
    return compare(accs).groups


def _versus(cmp: Block, label: str, naive: str) -> str:
    """ACC minus naive's, paired by seed, with its Holm-adjusted interval (`dqcl.results.compare`), a word only
    where Holm's t-test tells the two apart, and the Holm-adjusted exact sign-flip p-value beside it, "(t only)"
    or "(sign-flip only)" where the two disagree."""
    pair = cmp.pair(label, naive)
    if pair is None or pair.diff is None:
        return "—"
    d = pair.diff
    if d.n < 2:
        return fmt(d, signed=True)
    word = (" better" if d.mean > 0 else " worse") if pair.apart else ""
    flag = (" (t only)" if pair.apart else " (sign-flip only)") if pair.flagged else ""
    return f"{d.mean:+.3f} ± {d.std:.3f} [{pair.lo:+.3f}, {pair.hi:+.3f}]{word}; sign-flip p {pair.p_flip_holm:.2g}{flag}"


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _cost_cells(es: list[dict[str, Any]], name: Name = _shown) -> list[str]:
    """Wall time per run, training images seen, largest peak memory, devices (each shown by ``name``)."""
    wall, seen = _mean([e["total_s"] for e in es]), _mean([e["images_seen"] for e in es])
    peaks = [e.get("peak_gpu_mb") or e.get("peak_host_mb") for e in es]
    peak = max((p for p in peaks if p is not None), default=None)
    gpu = any(e.get("peak_gpu_mb") for e in es)
    return [
        "—" if wall is None else f"{wall:.0f}",
        "—" if seen is None else f"{seen:.0f}",
        "—" if peak is None else f"{peak:.0f} ({'GPU' if gpu else 'host'})",
        ", ".join(name(d) for d in sorted({str(e.get("device")) for e in es})),
    ]


COST_HEADERS = ["wall s/run", "images seen", "peak MiB", "device"]
MEMORY_HEADERS = ["memory (patches)", "samples/step", "old-domain share"]


@functools.lru_cache(maxsize=None)
def _memory_kind(name: str) -> str | None:
    """How strategy ``name`` keeps memory (`dqcl.config.strategies.MEMORY_KINDS`; None: it keeps
    none), or None where this dqcl does not know the strategy (a plugin not loaded, a store from
    elsewhere): the table then shows what its runs recorded."""
    try:
        from ..config.strategies import strategy_entry

        return getattr(strategy_entry(name).factory, "memory", None)
    except Exception:  # an unknown name, a plugin that does not import: only a table cell depends on it
        return None


def _trained_at_once(e: dict[str, Any]) -> bool:
    """Joint training: one R row over two or more domains, every patch of each in the one training set."""
    return len(e["R"]) == 1 and len(e["ordering"]) > 1


def _memory_cells(es: list[dict[str, Any]], memory: bool, samples: bool, share: bool = False) -> list[str]:
    """The patches of earlier domains held (the most over the seeds' runs; "all" for a strategy that
    keeps every patch, and for joint training, which trains on every domain at once; — where none was recorded),
    the mean samples backpropagated per step and, where recorded, the mean share of the memory that held earlier
    domains while the later experiences trained (a reservoir holds the current domain's samples too)."""
    out = []
    if memory:
        held = [e["memory_held"] for e in es if e.get("memory_held") is not None]
        out.append("all" if any(_memory_kind(e["strategy_name"]) == "all" or _trained_at_once(e) for e in es)
                   else f"{max(held):,}" if held else "—")
    if samples:
        mean = _mean([e.get("samples_per_step") for e in es])
        ref = _mean([e.get("reference_per_step") for e in es])
        out.append(("—" if mean is None else f"{mean:.1f}") + ("" if ref is None else f" (+{ref:.1f} reference)"))
    if share:
        mean = _mean([e.get("memory_old_share") for e in es])
        out.append("—" if mean is None else f"{mean:.2f}")
    return out


_OWN = ()  # the budget key of a rehearsal run without a [memory] table: its own parameters set its memory


def _budget_key(e: dict[str, Any]) -> tuple | None:
    b = e.get("memory")
    return None if not b else (b["size"], b["rate"], b["protocol"], b["replay_batch"], b["compute"])


def _budget_blocks(es: list[dict[str, Any]]) -> list[tuple[tuple | None, dict[str, Any] | None]]:
    """The budgets of one study's entries (or curve runs), each as (key, budget), in order of
    size, rate, protocol, replay minibatch and compute; [(None, None)] where it has one budget or none.
    A strategy label that ran at some budget and also without a [memory] table has its runs of the
    latter in a block of their own (key `_OWN`, budget None)."""
    budgeted = {e["strategy"] for e in es if _budget_key(e) is not None}
    keys: dict[tuple, dict[str, Any] | None] = {}
    for e in es:
        if e["strategy"] in budgeted:
            key = _budget_key(e)
            keys[_OWN if key is None else key] = e.get("memory")
    if len(keys) <= 1:
        return [(None, None)]
    return sorted(keys.items(), key=lambda kv: (kv[0] != _OWN, kv[0]))


def _in_block(e: dict[str, Any], key: tuple | None, budgeted: set[str]) -> bool:
    """Whether entry ``e`` belongs to the block of budget ``key``: a run of that budget, or one of a
    strategy that never ran at a budget (in every block)."""
    if key is None or e["strategy"] not in budgeted:
        return True
    return (_budget_key(e) or _OWN) == key


def _block_heading(key: tuple | None, budget: dict[str, Any] | None) -> str | None:
    if key is None:
        return None
    return "memory as each strategy's own parameters set it (no [memory] table)" if key == _OWN else budget_text(budget)


TABLE_METRICS = ("ap50", "iou")  # in leaderboard.md; the CSV and JSON hold every metric


def ranked_blocks(rows: list[dict[str, Any]], metrics=TABLE_METRICS):
    """Every ranked block of the continual ``rows``, as (study, metric, ordering, budget key, budget, block): a
    block is label -> entries, one per memory budget where the study ran several (with the strategies that
    keep no bounded memory in each), else one per (study, metric, ordering). The tables, the groups figures
    and the results in words all read their blocks from here."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in rows:
        groups[(e["study"], e["metric"], tuple(e["ordering"]), e["strategy"])].append(e)
    for study in sorted({e["study"] for e in rows}):
        mine = [e for e in rows if e["study"] == study]
        blocks = _budget_blocks(mine)
        budgeted = {e["strategy"] for e in mine if _budget_key(e) is not None}
        for metric in metrics:
            for order in sorted({k[2] for k in groups if k[0] == study and k[1] == metric}):
                for key, budget in blocks:
                    block = {}
                    for (st, mt, od, lab), es in groups.items():
                        if (st, mt, od) == (study, metric, order) and (kept := [e for e in es if _in_block(e, key, budgeted)]):
                            block[lab] = kept
                    if key is not None and not any(lab in budgeted for lab in block):
                        continue  # this budget did not run in this ordering
                    yield study, metric, order, key, budget, block


def block_names(budget: dict[str, Any] | None, block: dict[str, Any], name: Name) -> Name:
    """How a block shows its labels: inside a budget's block a label need not repeat the budget the heading
    gives, unless two labels would then read alike ("x [32 patches, ...]" of label x, and a label "x" of its own)."""
    cut = f" [{budget_text(budget, short=True)}]" if budget else ""
    cuts = [lab.replace(cut, "", 1) for lab in block] if cut else []
    return name if not cut or len(set(cuts)) < len(cuts) else (lambda label: name(label.replace(cut, "", 1)))


def _cl_tables(rows: list[dict[str, Any]], cost: bool = False, metrics=TABLE_METRICS,
               name: Name = _shown) -> list[tuple[str, str, tuple[str, ...], str | None, list[str], list[list]]]:
    """(study, metric, ordering, block, headers, rows) for every continual table, best ACC first;
    ``block`` is the memory budget of the table's block in words (None: the study has one budget
    or none, and one table per metric and ordering). Strategy, domain and device names in headers
    and rows are shown by ``name``; study, ordering and block are returned as stored, for the
    writer to show."""
    out = []
    for study, metric, order, key, budget, block in ranked_blocks(rows, metrics):
        # the columns of every block of an ordering: those any of its runs recorded
        every = [e for e in rows if (e["study"], e["metric"], tuple(e["ordering"])) == (study, metric, order)]
        memory, samples = any("memory_held" in e for e in every), any("samples_per_step" in e for e in every)
        share = any("memory_old_share" in e for e in every)
        shown = block_names(budget, block, name)
        out.append((study, metric, order, _block_heading(key, budget), *_table(block, order, cost, memory, samples, shown, share)))
    return out


def _table(block: dict[str, list[dict[str, Any]]], order: tuple[str, ...], cost: bool, memory: bool, samples: bool,
           name: Name, share: bool = False) -> tuple[list[str], list[list]]:
    """Headers and rows of one continual table (or block) of label -> entries, ranked within it."""
    labels = sorted(block)
    cmp = compare({lab: {e["seed"]: e["acc"] for e in block[lab]} for lab in labels})
    most = max(len(es) for es in block.values())
    table = []
    for label in labels:
        es = block[label]
        naive = naive_label(block, es[0].get("compute"))
        rank = cmp.mean_rank[label]
        row = [cmp.groups[label], name(label), "—" if math.isnan(rank) else f"{rank:.1f}",
               f"{len(es)} of {most}" if len(es) < most else len(es), _cell([e["acc"] for e in es], interval=True),
               "—" if label == naive or naive not in block else _versus(cmp, label, naive)]
        row += [_cell([e[k] for e in es], interval=k == "forgetting") for k in CL_METRICS if k != "acc"]
        row += [_cell([e["R"][-1][j] for e in es]) for j in range(len(order))]
        row += _memory_cells(es, memory, samples, share)
        if cost:
            row += _cost_cells(es, name)
        table.append(row)
    table.sort(key=lambda r: -float(r[4].split(" ")[0]) if r[4] != "—" else math.inf)
    headers = ["group", "strategy", "mean rank", "n", "ACC [95 % CI]", "ACC − naive (paired, Holm)", "BWT", "Forgetting [95 % CI]",
               "FWT", "Plasticity", "Avg inc. ACC", "Intransigence"] + [f"final: {name(d)}" for d in order]
    headers += MEMORY_HEADERS[:1] * memory + MEMORY_HEADERS[1:2] * samples + MEMORY_HEADERS[2:] * share
    headers += COST_HEADERS if cost else []
    return headers, table


_SWAP_KEYS = ("before", "new_weights_old_stats", "old_weights_new_stats", "after")
_SWAP_HEADERS = ["ordering", "strategy", "n", "old weights + old stats", "new weights + old stats [95 % CI]",
                 "old weights + new stats [95 % CI]", "new weights + new stats [95 % CI]"]


def _split_rows(rows: list[dict[str, Any]], study: str, metric: str = "ap50", name: Name = _shown) -> list[list]:
    """Earlier domains scored with weights and BatchNorm statistics from before and after, per ordering
    and strategy (domain and strategy names shown by ``name``)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in rows:
        if e["study"] == study and e["metric"] == metric and e.get("before") is not None:
            groups[(tuple(e["ordering"]), e["strategy"])].append(e)
    return [[" → ".join(name(d) for d in order), name(label), len(es), *(_cell([e[k] for e in es], k != "before") for k in _SWAP_KEYS)]
            for (order, label), es in sorted(groups.items())]


def _health_lines(rows: list[dict[str, Any]], study: str, name: Name = _shown, set_aside: list[dict[str, Any]] = ()) -> list[str]:
    """One line per health flag of ``study``: ordering, strategy (shown by ``name``) and the problem;
    then one per run ``set_aside`` (entries whose run broke its protocol, `dqcl.results.invariants`):
    "protocol broken", the seed, the reason and the run's key."""
    lines = [f"{' → '.join(name(d) for d in order)}, {name(label)}: {problem}"
             for st, order, label, problem in health_flags(rows) if st == study]
    runs = {e["run"]: e for e in set_aside if e["study"] == study}
    for key, e in sorted(runs.items(), key=lambda kv: (kv[1]["ordering"], kv[1]["strategy"], kv[1]["seed"])):
        lines.append(f"{' → '.join(name(d) for d in e['ordering'])}, {name(e['strategy'])}: protocol broken for seed "
                     f"{e['seed']} (run {name(key)}), kept out of every table, figure and claim: {name(e['broken'])}")
    return lines


def _provenance(rows: list[dict[str, Any]], study: str, name: Name = _shown) -> str:
    """The Data line of ``study``: each domain's data manifests and the dqcl versions and commits of its
    runs, every one of them (store content) shown by ``name``."""
    mine = [e for e in rows if e["study"] == study]
    data: dict[str, set[str]] = defaultdict(set)
    for e in mine:
        for domain, manifest in e.get("data_manifests", {}).items():
            data[domain].add(manifest)
    versions = sorted({f"{name(e.get('version'))} ({name(str(e.get('commit') or 'unknown')[:12])})" for e in mine})
    parts = [f"{name(d)} `{' / '.join(name(x) for x in sorted(m))}`" for d, m in sorted(data.items())]
    drawn = _data_drawn(mine, name)
    settings = _settings(mine, name)
    return (f"Data: {'; '.join(parts) or 'not recorded'}.{' ' + drawn if drawn else ''} dqcl: {', '.join(versions)}."
            + (f" {settings}" if settings else ""))


def _value(v: Any, name: Name) -> str:
    """A parameter or setting as shown: a number to 3 significant digits, anything else as JSON text by ``name``
    (an integer past any float, as a file someone edited may hold, too)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return f"{v:.3g}"
        except OverflowError:
            pass
    return name(json.dumps(v, default=str))


def trained_params(e: dict[str, Any]) -> dict[str, Any]:
    """An entry's strategy parameters, with the learning rate it trained at: the spec's [train] lr where the
    strategy set none."""
    params = dict(e.get("params")) if isinstance(e.get("params"), dict) else {}
    lr = e.get("train_lr")
    if "lr" not in params and isinstance(lr, (int, float)) and not isinstance(lr, bool):
        params["lr"] = lr
    return params


def _settings(mine: list[dict[str, Any]], name: Name) -> str:
    """The Tuning line: for each strategy label whose parameters `dqcl tune` chose, the values with the range
    searched, how (trials per strategy, validation share, the tuning file), and beside it the values the
    untuned labels of the same strategy ran at; "" where nothing was tuned. (Every run's parameters are in
    the CSV and JSON; a memory budget supersedes a strategy's own memory parameters, so they are not shown.)"""
    arms: dict[str, dict[str, tuple]] = defaultdict(dict)
    for e in mine:
        params = trained_params(e)
        tuned = e.get("tuned") if isinstance(e.get("tuned"), dict) else None
        arms[e["strategy"]].setdefault(json.dumps([params, tuned], sort_keys=True, default=str), (e.get("strategy_name"), params, tuned))
    searched: dict[Any, set[str]] = defaultdict(set)  # strategy -> the keys some tuning searched
    for label in arms:
        for strategy, _, tuned in arms[label].values():
            if tuned and isinstance(tuned.get("space"), dict):
                searched[strategy] |= set(tuned["space"])
    groups: dict[str, list[str]] = defaultdict(list)  # how the values were chosen -> each label at its values
    for label in sorted(arms):
        for strategy, params, tuned in arms[label].values():
            keys = sorted(searched.get(strategy, ()))
            if not keys:
                continue
            space = tuned.get("space") if tuned and isinstance(tuned.get("space"), dict) else {}
            values = []
            for k in keys:
                rng = space.get(k)
                given = _value(params[k], name) if k in params else "its default"
                values.append(f"{name(k)} {given}" + (f" (searched {_value(rng[0], name)} to {_value(rng[1], name)}, log)"
                                                      if isinstance(rng, list) and len(rng) == 2 else ""))
            how = (f"tuned ({_value(tuned.get('trials'), name)} trials per strategy on a {_value(tuned.get('validation'), name)} "
                   f"validation share of each domain's training images; {name(tuned.get('file'))} {name(tuned.get('sha256'))})"
                   if tuned else "untuned")
            groups[how].append(f"{name(label)} at {', '.join(values)}")
    # the provenance once per tuning, then each label's values: one line a reader can scan
    parts = [f"{how}: {'; '.join(labels)}" for how, labels in sorted(groups.items(), key=lambda kv: kv[0] == "untuned")]
    return f"Tuning, {'. '.join(parts)}." if parts else ""


def _data_drawn(mine: list[dict[str, Any]], name: Name) -> str:
    """What the runs that recorded it (`dqcl.data.record`) were scored on and drew: the test objects
    of each domain (mean over runs) and whether the seeds of one cell (ordering, strategy, budget)
    trained on different data draws; "" where no run recorded it."""
    runs = list({e["run"]: e for e in mine if e.get("test_objects") is not None}.values())
    objects: dict[str, list[int]] = defaultdict(list)
    hashes: dict[tuple, set[str]] = defaultdict(set)
    seeds: dict[tuple, set[int]] = defaultdict(set)
    for e in runs:
        cell = (tuple(e["ordering"]), e["strategy"], _budget_key(e))
        for d, n in e["test_objects"].items():
            if n is not None:
                objects[d].append(n)
        for d, h in (e.get("train_hashes") or {}).items():
            if h is not None:
                hashes[cell + (d,)].add(h)
                seeds[cell + (d,)].add(e["seed"])
    if not objects:
        return ""
    text = "Test objects per domain: " + ", ".join(f"{name(d)} {round(float(np.mean(n))):,}" for d, n in sorted(objects.items()))
    text += " (mean over runs)"
    compared = [k for k in hashes if len(seeds[k]) > 1]
    if compared:
        text += ("; per-seed data (the seeds of a cell trained on different draws)" if any(len(hashes[k]) > 1 for k in compared)
                 else "; one data draw (every seed of a cell trained on the same data)")
    return text + "."
