"""The leaderboard's tables as rows of cells, for every format to show.

Per (study, metric, ordering) a continual table, best ACC first, with ranks and the paired
difference to naive; the weights-vs-statistics rows, the health lines and the Data line of a
study. Cells are mean ± std over seeds (`dqcl.results.stats`); names from the store are shown
by a ``name`` function, so that each writer escapes them for its own format.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable

import numpy as np

from ..core.text import NAME_LIMIT, shorten
from .cl_metrics import CL_METRICS
from .health import health_flags
from .stats import fmt, paired, summarise

__all__ = ["COST_HEADERS", "TABLE_METRICS", "Name"]

Name = Callable[[Any], str]  # how a writer shows a name from a spec or store (see `dqcl.core.text`)


def _shown(name: Any) -> str:
    """A name as a table or heading shows it before its format's escaping: at most NAME_LIMIT characters."""
    return shorten(str(name), NAME_LIMIT)


def _cell(values, interval: bool = False) -> str:
    """mean ± std over seeds (ddof = 1), with the 95 % interval if asked; one seed: the value; none: —."""
    return fmt(summarise(values), interval=interval)


def _ranks(accs: dict[str, dict[int, float]]) -> dict[str, str]:
    """Rank by mean ACC; a strategy ranks below the one above it only where their paired difference
    (over the seeds both ran) has a 95 % interval above zero, else it shares that rank. Fewer than
    two shared seeds: no ranks."""
    order = sorted(accs, key=lambda k: -float(np.mean(list(accs[k].values()))))
    out, rank = {}, 1
    for pos, label in enumerate(order):
        if pos:
            diff = paired(accs[order[pos - 1]], accs[label])
            if diff is None or diff.n < 2:
                return {k: "—" for k in accs}
            if diff.lo > 0:
                rank = pos + 1
        out[label] = str(rank)
    return out


def _versus(es: list[dict[str, Any]], naive: list[dict[str, Any]]) -> str:
    """ACC minus naive's, paired by seed, with its interval and a word only where the interval excludes 0."""
    diff = paired({e["seed"]: e["acc"] for e in es}, {e["seed"]: e["acc"] for e in naive})
    if diff is None:
        return "—"
    word = " better" if diff.excludes_zero() and diff.lo > 0 else " worse" if diff.excludes_zero() else ""
    return fmt(diff, signed=True) + word


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


TABLE_METRICS = ("ap50", "iou")  # in leaderboard.md; the CSV and JSON hold every metric


def _cl_tables(rows: list[dict[str, Any]], cost: bool = False, metrics=TABLE_METRICS,
               name: Name = _shown) -> list[tuple[str, str, tuple[str, ...], list[str], list[list]]]:
    """(study, metric, ordering, headers, rows) for every continual table, best ACC first. Strategy,
    domain and device names in headers and rows are shown by ``name``; study and ordering are
    returned as stored, for the writer to show."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in rows:
        groups[(e["study"], e["metric"], tuple(e["ordering"]), e["strategy"])].append(e)
    out = []
    for study in sorted({e["study"] for e in rows}):
        for metric in metrics:
            for order in sorted({k[2] for k in groups if k[0] == study and k[1] == metric}):
                labels = sorted({k[3] for k in groups if k[:3] == (study, metric, order)})
                ranks = _ranks({lab: {e["seed"]: e["acc"] for e in groups[(study, metric, order, lab)]} for lab in labels})
                naive = groups.get((study, metric, order, "naive"), [])
                table = []
                for label in labels:
                    es = groups[(study, metric, order, label)]
                    row = [ranks[label], name(label), len(es), _cell([e["acc"] for e in es], interval=True),
                           "—" if label == "naive" else _versus(es, naive)]
                    row += [_cell([e[k] for e in es], interval=k == "forgetting") for k in CL_METRICS if k != "acc"]
                    row += [_cell([e["R"][-1][j] for e in es]) for j in range(len(order))]
                    if cost:
                        row += _cost_cells(es, name)
                    table.append(row)
                table.sort(key=lambda r: -float(r[3].split(" ")[0]) if r[3] != "—" else math.inf)
                headers = ["rank", "strategy", "n", "ACC [95 % CI]", "ACC − naive (paired)", "BWT", "Forgetting [95 % CI]",
                           "FWT", "Plasticity"] + [f"final: {name(d)}" for d in order]
                headers += COST_HEADERS if cost else []
                out.append((study, metric, order, headers, table))
    return out


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


def _health_lines(rows: list[dict[str, Any]], study: str, name: Name = _shown) -> list[str]:
    """One line per health flag of ``study``: ordering, strategy (shown by ``name``) and the problem."""
    return [f"{' → '.join(name(d) for d in order)}, {name(label)}: {problem}"
            for st, order, label, problem in health_flags(rows) if st == study]


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
    return f"Data: {'; '.join(parts) or 'not recorded'}. dqcl: {', '.join(versions)}."
