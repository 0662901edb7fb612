"""Order sensitivity: how much a strategy's result depends on the order the domains come in.

For a study that ran two or more orderings of the same domains, per strategy (ap50 by default):

- its final ACC over the orders: the mean of the per-order means (each over that order's seeds),
  with a 95 % t-interval over the orders (seeds nested in orders: the order is the unit);
- the spread across orders (the std of the per-order means) beside the spread across seeds (the
  pooled within-order std): a strategy whose order spread dwarfs its seed spread is order-sensitive;
- the forgetting of the domain trained at each position (first, second, ...: max-based, as the
  tables' Forgetting), averaged over the orders and seeds;
- the first domain that gives it the best final ACC, with that mean and its interval over the
  runs that started with it.

`forgetting_by_distance` (`dqcl.results.cl_metrics`) gives the figure of forgetting against the
experiences since a domain was learned (`dqcl.results.plots.distance_curves`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable

import numpy as np

from .stats import fmt, summarise

__all__ = ["order_table", "ORDER_HEADERS"]

Name = Callable[[Any], str]


def _position_forgetting(R: list[list[float]], p: int) -> float | None:
    r = np.asarray(R, dtype=float)
    rows, t = r.shape
    if rows != t or p >= t - 1:
        return None
    return float(r[p : t - 1, p].max() - r[t - 1, p])


def order_table(rows: list[dict[str, Any]], study: str, metric: str = "ap50", name: Name = str) -> tuple[list[str], list[list]] | None:
    """(headers, rows) of ``study``'s order sensitivity, or None where it ran fewer than two orderings of one
    set of domains (the set with the most orderings is read)."""
    mine = [e for e in rows if e["study"] == study and e["metric"] == metric and e.get("selector") is None]
    by_set: dict[frozenset, set[tuple[str, ...]]] = defaultdict(set)
    for e in mine:
        by_set[frozenset(e["ordering"])].add(tuple(e["ordering"]))
    if not by_set:
        return None
    domains, orders = max(by_set.items(), key=lambda kv: (len(kv[1]), sorted(kv[0])))
    if len(orders) < 2:
        return None
    t = len(domains)
    table = []
    for label in sorted({e["strategy"] for e in mine}):
        es = [e for e in mine if e["strategy"] == label and tuple(e["ordering"]) in orders]
        per_order = defaultdict(list)
        for e in es:
            per_order[tuple(e["ordering"])].append(e["acc"])
        means = [float(np.mean(v)) for v in per_order.values()]
        within = [float(np.var(v, ddof=1)) for v in per_order.values() if len(v) > 1]
        over = summarise(means)
        seeds_sd = math.sqrt(float(np.mean(within))) if within else math.nan
        positions = []
        for p in range(t - 1):
            vals = [f for e in es if (f := _position_forgetting(e["R"], p)) is not None]
            positions.append(fmt(summarise(vals), interval=False) if vals else "—")
        firsts = defaultdict(list)
        for e in es:
            firsts[e["ordering"][0]].append(e["acc"])
        best = max(firsts, key=lambda d: (float(np.mean(firsts[d])), d))
        table.append([name(label), f"{len(per_order)} of {len(orders)}", fmt(over),
                      "—" if over is None or over.n < 2 else f"{over.std:.3f}",
                      "—" if math.isnan(seeds_sd) else f"{seeds_sd:.3f}", *positions,
                      f"{name(best)}: {fmt(summarise(firsts[best]))}"])
    table.sort(key=lambda r: -float(r[2].split(" ")[0]) if r[2] != "—" else math.inf)
    headers = ["strategy", "orders", "ACC over orders [95 % CI]", "SD across orders", "SD across seeds",
               *[f"forgetting at position {p + 1}" for p in range(t - 1)], "best first domain: ACC"]
    return headers, table


ORDER_HEADERS = "order sensitivity"
