"""PNG figures for the leaderboard and for `dqcl domains diversity`.

Every strategy has its own colour and marker (the same in every figure), scores are shown in
percent, error bars are the standard deviation over seeds with ddof = 1 (as in the tables),
and a strategy a figure cannot place (joint training has no forgetting) is named on it.

Names (studies, strategies, domains, selectors) are drawn as plain text: every figure function
runs without TeX (`plain_text_figures`) and shows a name through `_label` (`figure_text`:
shortened, $ escaped, no control characters), so that a $ or a million characters in a name
cost nothing.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import save_figure
from ..core.text import figure_text, plain_text_figures

__all__ = [
    "saturation_plot", "diversity_plot", "heatmaps", "forgetting_plasticity", "replay_rate_curves",
    "summary_figure", "training_curves", "seed_strips", "group_figure", "budget_curves", "distance_curves", "style_of",
]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "8", "H", "1", "2", "3")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(name: Any) -> str:
    """A name as a figure shows it (see `figure_text`)."""
    return figure_text(str(name))


def _legend(name: Any, suffix: str = "") -> str:
    """A legend entry for a name: matplotlib leaves out an entry whose label starts with '_', so such a
    name gets a leading space."""
    text = _label(name) + suffix
    return " " + text if text.startswith("_") else text


def style_of(label: str, labels: list[str]) -> dict[str, Any]:
    """A distinct colour (tab20) and marker for ``label`` among the sorted ``labels``."""
    import matplotlib

    k = sorted(labels).index(label)
    return {"color": matplotlib.colormaps["tab20"](k % 20), "marker": _MARKERS[k % len(_MARKERS)]}


def _finish(fig, ax, out: Path) -> Path:
    """A grid, the strategies' legend to the right of the axes, and the figure saved."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), title="strategy", title_fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)


def _std(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _pct(metric: str) -> str:
    return f"{metric} (%)"


@plain_text_figures
def saturation_plot(rows: list[dict[str, Any]], metric: str, out: Path) -> Path:
    """Score vs training-subset rate, one line per selector (mean ± std over seeds); all data is a dashed line."""
    plt = _plt()
    by: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    full: list[float] = []
    for e in rows:
        if e["metric"] != metric:
            continue
        score = 100 * e["R"][-1][0]
        if e["selector"] == "all":
            full.append(score)
        else:
            by[e["selector"]][e["rate"]].append(score)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for sel in sorted(by):
        rates = sorted(by[sel])
        ax.errorbar(np.array(rates) * 100, [np.mean(by[sel][r]) for r in rates], yerr=[_std(by[sel][r]) for r in rates],
                    capsize=3, label=_legend(sel), **style_of(sel, list(by)))
    if full:
        ax.axhline(np.mean(full), color="k", ls="--", lw=1, label=f"all data ({np.mean(full):.1f} %)")
        ax.axhline(0.95 * np.mean(full), color="k", ls=":", lw=1, label="95 % of all data")
    ax.set_xscale("log")
    ax.set_xlabel("training subset (% of patches)")
    ax.set_ylabel(_pct(metric))
    ax.set_title(f"{_label(rows[0]['study'])}: {_label(rows[0]['ordering'][0])} trained from scratch on subsets ({metric})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="selector", title_fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)


@plain_text_figures
def diversity_plot(features: np.ndarray, subsets: dict[str, np.ndarray], out: Path, title: str, method: str = "tsne", seed: int = 0) -> Path:
    """2-D map (t-SNE or PCA) of a domain's embeddings with each subset's points marked."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    plt = _plt()
    z = StandardScaler().fit_transform(features)
    if method == "tsne" and len(z) > 5:
        xy = TSNE(n_components=2, perplexity=min(30.0, (len(z) - 1) / 3), random_state=seed, init="pca").fit_transform(z)
    else:
        xy = PCA(n_components=2, random_state=seed).fit_transform(z)
    names = list(subsets)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.scatter(xy[:, 0], xy[:, 1], s=8, c="0.8", label="all")
        idx = subsets[name]
        ax.scatter(xy[idx, 0], xy[idx, 1], s=22, c="C3", edgecolors="k", linewidths=0.4, label=_legend(name, f" ({len(idx)})"))
        ax.set_title(_label(name))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(figure_text(title, 200), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)


@plain_text_figures
def heatmaps(rows: list[dict[str, Any]], out: Path) -> Path:
    """R matrices in percent (mean over seeds) of one (study, ordering, metric), one panel per strategy, with a colour bar."""
    plt = _plt()
    by: dict[str, list] = defaultdict(list)
    for e in rows:
        by[e["strategy"]].append(e)
    labels = sorted(by)
    order = [_label(d) for d in rows[0]["ordering"]]
    cols = min(4, len(labels))
    nrows = int(np.ceil(len(labels) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(2.7 * cols + 0.8, 2.5 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    image = None
    for ax, label in zip(axes.ravel(), labels):
        R = 100 * np.mean([np.asarray(e["R"], dtype=float) for e in by[label]], axis=0)
        ax.axis("on")
        image = ax.imshow(R, vmin=0, vmax=100, cmap="viridis")
        for (i, j), v in np.ndenumerate(R):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="w" if v < 60 else "k", fontsize=8)
        ax.set_xticks(range(len(order)), order, fontsize=7)
        ax.set_yticks(range(len(R)), [f"after {order[i]}" if len(R) == len(order) else "after all" for i in range(len(R))], fontsize=7)
        ax.set_title(f"{_label(label)} (n={len(by[label])})", fontsize=8)
    metric = rows[0]["metric"]
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=_pct(metric))
    fig.suptitle(f"{_label(rows[0]['study'])}: R[i][j] = {metric} (%) on domain j after experience i, mean over seeds", fontsize=9)
    return save_figure(fig, out, dpi=90)


@plain_text_figures
def forgetting_plasticity(rows: list[dict[str, Any]], out: Path) -> Path:
    """One point per strategy: forgetting (x) vs plasticity (y) in percent, error bars = std over seeds."""
    plt = _plt()
    by: dict[str, list] = defaultdict(list)
    for e in rows:
        by[e["strategy"]].append(e)
    labels = sorted(by)
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    absent = []
    for label in labels:
        es = [e for e in by[label] if e["forgetting"] is not None and e["plasticity"] is not None]
        if not es:
            absent.append(label)
            continue
        f, p = [100 * e["forgetting"] for e in es], [100 * e["plasticity"] for e in es]
        ax.errorbar(np.mean(f), np.mean(p), xerr=_std(f), yerr=_std(p), capsize=3, ls="none",
                    label=_legend(label, f" (n={len(es)})"), **style_of(label, labels))
    metric = rows[0]["metric"]
    ax.set_xlabel(f"forgetting, {metric} (%, max-based; lower is better)")
    ax.set_ylabel(f"plasticity, {metric} (%, mean R[i][i])")
    ax.set_title(f"{_label(rows[0]['study'])}: forgetting vs plasticity, {' → '.join(map(_label, rows[0]['ordering']))}", fontsize=9)
    if absent:
        ax.text(0.01, 0.01, "not shown (trained once, no forgetting): " + ", ".join(map(_label, absent)), transform=ax.transAxes,
                fontsize=7)
    return _finish(fig, ax, out)


def _replay_rate(e: dict[str, Any]) -> tuple[float, str] | None:
    """A replay run's rate and how its memory was replayed: the shared budget's rate ([memory] rate) with its
    protocol and compute, or the strategy's own ``rate`` (no [memory] table); None for a run without a rate
    (a budget in patches is a count, not a rate: it has no place on this figure's axis)."""
    b = e.get("memory")
    if b:
        if not b.get("rate"):
            return None
        how = ("mixed" if b["protocol"] == "mix" else f"{b['replay_batch'] or 'a batch'} per step") + f", compute {b['compute']}"
        return float(b["rate"]), how
    rate = e["params"].get("rate")
    return None if rate is None else (float(rate), "")


@plain_text_figures
def replay_rate_curves(rows: list[dict[str, Any]], out: Path) -> Path | None:
    """Final source and target scores (%) vs replay rate, DQ vs random (naive = 0 %, cumulative = 100 %);
    one line per strategy and way of replaying (budgets of other protocols or compute are not merged)."""
    plt = _plt()
    series: dict[tuple[str, str], dict[float, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    ends: list[tuple[float, tuple[float, float]]] = []
    for e in rows:
        if len(e["R"]) < 2:
            continue
        point = (100 * e["R"][-1][0], 100 * e["R"][-1][-1])
        if e["strategy_name"] in ("replay", "dq_replay") and (rate := _replay_rate(e)) is not None:
            series[(e["strategy_name"], rate[1])][rate[0]].append(point)
        elif e["strategy_name"] in ("cumulative", "naive"):
            ends.append((1.0 if e["strategy_name"] == "cumulative" else 0.0, point))
    for key in list(series):
        for rate, point in ends:
            series[key][rate].append(point)
    if not any(len([r for r in s if 0 < r < 1]) >= 2 for s in series.values()):
        return None
    order = [_label(d) for d in rows[0]["ordering"]]
    keys = sorted(series)
    names = [f"{n} {how}" for n, how in keys]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, which, title in ((axes[0], 0, f"source ({order[0]}) after {order[-1]}"), (axes[1], 1, f"target ({order[-1]})")):
        for key, name in zip(keys, names):
            rates = sorted(series[key])
            # the budget's words come from a store: drawn as plain text, as every name is
            label = {"replay": "random replay", "dq_replay": "DQ replay"}[key[0]] + (f" ({_label(key[1])})" if key[1] else "")
            ax.errorbar(np.array(rates) * 100, [np.mean([p[which] for p in series[key][r]]) for r in rates],
                        yerr=[_std([p[which] for p in series[key][r]]) for r in rates], capsize=3,
                        label=label, **style_of(name, names))
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("source replayed (% of its patches)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(_pct(rows[0]["metric"]))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{_label(rows[0]['study'])}: replay rate, DQ vs random, mean ± std over seeds", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)


@plain_text_figures
def summary_figure(rows: list[dict[str, Any]], out: Path, metric: str = "ap50") -> Path | None:
    """Strategies x (study, ordering): ACC and forgetting in percent (mean over seeds); blank where a
    strategy did not run or has no value (joint: no forgetting)."""
    plt = _plt()
    cont = [e for e in rows if e["metric"] == metric and e.get("selector") is None]
    if not cont:
        return None
    cols = sorted({(e["study"], tuple(e["ordering"])) for e in cont})
    labels = sorted({e["strategy"] for e in cont})
    grid = {k: np.full((len(labels), len(cols)), np.nan) for k in ("acc", "forgetting")}
    for (i, label) in enumerate(labels):
        for j, col in enumerate(cols):
            es = [e for e in cont if e["strategy"] == label and (e["study"], tuple(e["ordering"])) == col]
            for k in grid:
                vals = [e[k] for e in es if e[k] is not None]
                if vals:
                    grid[k][i, j] = 100 * float(np.mean(vals))
    fig, axes = plt.subplots(1, 2, figsize=(2.0 + 0.9 * len(cols) * 2, 1.2 + 0.32 * len(labels)), squeeze=False)
    for ax, (k, title, cmap) in zip(axes[0], (("acc", "ACC (%)", "viridis"), ("forgetting", "forgetting (%)", "magma_r"))):
        image = ax.imshow(grid[k], vmin=0, vmax=100, cmap=cmap, aspect="auto")
        for (i, j), v in np.ndenumerate(grid[k]):
            ax.text(j, i, "—" if np.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=7,
                    color="k" if np.isnan(v) or (v > 60) == (cmap == "viridis") else "w")
        ax.set_xticks(range(len(cols)), [f"{_label(s)}\n{'→'.join(map(_label, o))}" for s, o in cols], fontsize=6, rotation=30,
                      ha="right")
        ax.set_yticks(range(len(labels)), [_label(lab) for lab in labels], fontsize=7)
        ax.set_title(f"{title}, {metric}", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8, label=title)
    fig.suptitle("every strategy x study (mean over seeds; — : not run, or no value such as joint's forgetting)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out, dpi=90)


@plain_text_figures
def training_curves(runs: list[dict[str, Any]], out: Path) -> Path | None:
    """Training loss vs optimiser step, one line per strategy (mean over seeds), for one study and ordering."""
    plt = _plt()
    by: dict[str, list[list[dict]]] = defaultdict(list)
    for run in runs:
        if run.get("curve"):
            by[run["strategy"]].append(run["curve"])
    if not by:
        return None
    labels = sorted(by)
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    for label in labels:
        steps = sorted({row["steps"] for curve in by[label] for row in curve})
        mean = [np.mean([np.nan if row["loss"] is None else row["loss"] for curve in by[label] for row in curve
                         if row["steps"] == s]) for s in steps]
        style = style_of(label, labels)
        ax.plot(steps, mean, color=style["color"], marker=style["marker"], markevery=max(1, len(steps) // 8), ms=4,
                lw=1, label=_legend(label, f" (n={len(by[label])})"))
    first = runs[0]
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss (epoch mean, penalties included)")
    ax.set_title(f"{_label(first['study'])}: training curves, {' → '.join(map(_label, first['ordering']))}", fontsize=9)
    return _finish(fig, ax, out)


def _first_forgetting(R: list[list[float]]) -> float | None:
    """Forgetting of the first domain: max_{i<T-1} R[i][0] - R[T-1][0] (None for one row or one domain)."""
    if len(R) < 2 or len(R) != len(R[0]):
        return None
    return max(row[0] for row in R[:-1]) - R[-1][0]


@plain_text_figures
def seed_strips(rows: list[dict[str, Any]], out: Path) -> Path | None:
    """Every seed's final ACC and forgetting of the first domain (in percent) of one (study, ordering,
    metric): one strip per strategy, a dot per seed, and the mean with its 95 % interval over seeds
    (`dqcl.results.stats.summarise`, as the tables give it) as a bar; best mean ACC at the top."""
    from .stats import summarise

    plt = _plt()
    by: dict[str, list] = defaultdict(list)
    for e in rows:
        by[e["strategy"]].append(e)
    if not by:
        return None
    labels = sorted(by)
    ranked = sorted(labels, key=lambda lab: (-float(np.mean([e["acc"] for e in by[lab]])), lab))
    first = _label(rows[0]["ordering"][0])
    panels = (("final ACC", lambda e: e["acc"]), (f"forgetting of {first}", lambda e: _first_forgetting(e["R"])))
    fig, axes = plt.subplots(1, 2, figsize=(10, 1.4 + 0.38 * len(labels)), sharey=True, squeeze=False)
    for ax, (title, value) in zip(axes[0], panels):
        absent = []
        for y, label in enumerate(ranked):
            vals = [(e["seed"], value(e)) for e in by[label]]
            vals = sorted((seed, 100 * v) for seed, v in vals if v is not None)
            if not vals:
                absent.append(label)
                continue
            style = style_of(label, labels)
            jitter = np.linspace(-0.18, 0.18, len(vals)) if len(vals) > 1 else np.zeros(1)
            ax.scatter([v for _, v in vals], y + jitter, s=16, color=style["color"], marker=style["marker"], alpha=0.8,
                       edgecolors="k", linewidths=0.3, zorder=3)
            s = summarise([v for _, v in vals])
            if s.n > 1:
                ax.plot([s.lo, s.hi], [y, y], color="k", lw=2.2, solid_capstyle="butt", zorder=2)
            ax.plot([s.mean], [y], marker="|", color="k", ms=14, mew=2, zorder=4)
        ax.set_title(f"{title}, {rows[0]['metric']} (%)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        if absent:
            ax.text(0.01, 0.01, "no value (trained once): " + ", ".join(map(_label, absent)), transform=ax.transAxes, fontsize=7)
    axes[0][0].set_yticks(range(len(ranked)), [f"{_label(lab)} (n={len(by[lab])})" for lab in ranked], fontsize=7)
    axes[0][0].set_ylim(len(ranked) - 0.5, -0.5)
    fig.suptitle(f"{_label(rows[0]['study'])}: every seed, {' → '.join(map(_label, rows[0]['ordering']))} "
                 "(dot = one seed; bar = mean and its 95 % interval over seeds)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)


@plain_text_figures
def group_figure(rows: list[dict[str, Any]], out: Path, title: str = "") -> Path | None:
    """The groups of one ranked block (`dqcl.results.compare`), as a critical-difference-style figure:
    each strategy at its mean rank over the seeds every strategy of the block ran (1 = best, left), and
    one bar per letter joining the strategies it holds: strategies under one bar are not told apart
    (paired by seed, Holm-adjusted over the block). Where no seed is shared by all, the strategies are
    placed by mean ACC order instead and the axis says so."""
    from .compare import compare

    plt = _plt()
    by: dict[str, dict[int, float]] = defaultdict(dict)
    for e in rows:
        by[e["strategy"]][e["seed"]] = e["acc"]
    if len(by) < 2:
        return None
    cmp = compare(dict(by))
    order = sorted(by, key=lambda lab: (-float(np.mean(list(by[lab].values()))), lab))
    ranks = cmp.mean_rank
    placed_by_rank = all(np.isfinite(ranks[lab]) for lab in order)
    x = {lab: ranks[lab] if placed_by_rank else float(i + 1) for i, lab in enumerate(order)}
    order = sorted(order, key=lambda lab: (x[lab], lab))  # labels stacked left to right: their leader lines never cross
    letters = sorted({ch for g in cmp.groups.values() if g != "—" for ch in g})
    n = len(order)
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.22 * n + 0.18 * len(letters)))
    labels = sorted(by)
    for i, lab in enumerate(order):
        y = -0.6 - 0.34 * i
        style = style_of(lab, labels)
        ax.plot([x[lab], x[lab]], [0, y], color="0.6", lw=0.8)
        ax.plot([x[lab]], [0], marker=style["marker"], color=style["color"], ms=7, mec="k", mew=0.4)
        side = "right" if x[lab] <= (min(x.values()) + max(x.values())) / 2 else "left"
        ax.text(x[lab] + (-0.08 if side == "right" else 0.08), y,
                f"{_label(lab)} ({cmp.groups[lab]}; n={cmp.seeds[lab]})", ha=side, va="center", fontsize=7)
    for k, letter in enumerate(letters):
        members = [x[lab] for lab in order if letter in cmp.groups[lab]]
        y = 0.35 + 0.22 * k
        ax.plot([min(members) - 0.05, max(members) + 0.05], [y, y], color="k", lw=3, solid_capstyle="round")
        ax.text(max(members) + 0.15, y, letter, va="center", fontsize=8)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_position(("data", 0))
    shared = min(cmp.seeds.values())
    axis = ("mean rank over the seeds every strategy ran (1 = best)" if placed_by_rank else
            "order of mean ACC (no seed is shared by every strategy)")
    ax.set_xlim(0.5, max(max(x.values()) + 0.8, n + 0.5))
    ax.set_ylim(-0.9 - 0.34 * n, 0.6 + 0.22 * len(letters))
    ax.set_title(f"{_label(title)}: strategies under one bar are not told apart\n(ACC, paired by seed, Holm-adjusted over "
                 f"{cmp.family} pairs; fewest seeds {shared}); axis: {axis}", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out, dpi=100)


def _bytes(x: float) -> str:
    """A tick of a byte axis: 200 kB, 1 MB, 2.5 GB (decimal units, as a file manager shows them)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= scale:
            return f"{x / scale:g} {unit}"
    return f"{x:g} B"


def _pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other beats: as little cost (x) for as much ACC (y), by increasing cost."""
    front, best = [], -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _budget_cells(rows: list[dict[str, Any]], cost: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(strategy, budget) -> the entries that recorded the cost ``budget_curves`` plots."""
    key = "memory_bytes" if cost == "memory" else "backward"
    cells: dict[tuple[str, str], list] = defaultdict(list)
    for e in rows:
        if e.get(key) is not None and e.get("memory"):
            cells[(e.get("strategy_name") or e["strategy"], json.dumps(e["memory"], sort_keys=True))].append(e)
    return cells


def has_budget_curves(rows: list[dict[str, Any]]) -> bool:
    """Whether `budget_curves` draws a figure for these entries (two or more memory budgets recorded)."""
    return len({b for _, b in _budget_cells(rows, "memory")}) >= 2


@plain_text_figures
def budget_curves(rows: list[dict[str, Any]], out: Path, cost: str = "memory") -> Path | None:
    """Final ACC (%) of each strategy against what it cost, one curve per strategy over the memory budgets of
    one (study, ordering): ``cost`` "memory" (the bytes of earlier domains held, DER++'s stored outputs
    included; a log axis) or "compute" (samples backpropagated over the run, reference passes included);
    error bars the std over seeds, and the Pareto front of every (strategy, budget) point dashed. None where
    fewer than two budgets ran."""
    cells = _budget_cells(rows, cost)
    if len({b for _, b in cells}) < 2:
        return None
    plt = _plt()
    key = "memory_bytes" if cost == "memory" else "backward"
    def curve(cell: tuple[str, str]) -> str:
        """One curve per strategy and way of replaying (protocol, replay minibatch, compute): the memory size varies along it."""
        b = json.loads(cell[1])
        return f"{cell[0]} ({b.get('protocol')}, {b.get('replay_batch') or 'batch'} per step, {b.get('compute')})"

    names = sorted({curve(c) for c in cells})
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    points = []
    for name in names:
        xs, ys, es_ = [], [], []
        for cell, es in sorted(cells.items(), key=lambda kv: float(np.mean([e[key] for e in kv[1]]))):
            if curve(cell) != name:
                continue
            x = float(np.mean([e[key] for e in es]))
            accs = [100 * e["acc"] for e in es]
            xs.append(x)
            ys.append(float(np.mean(accs)))
            es_.append(_std(accs))
        points += list(zip(xs, ys))
        ax.errorbar(xs, ys, yerr=es_, capsize=3, label=_legend(name), **style_of(name, names))
    front = _pareto(points)
    ax.plot([x for x, _ in front], [y for _, y in front], "k--", lw=1.2, zorder=5, label="Pareto front")
    if cost == "memory":
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _bytes(x)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("memory of earlier domains (bytes, log; DER++ keeps its outputs too)")
    else:
        ax.set_xlabel("samples backpropagated over the run (reference passes included)")
    ax.set_ylabel(f"final ACC, {rows[0]['metric']} (%)")
    ax.set_title(f"{_label(rows[0]['study'])}: ACC against {cost}, {' → '.join(map(_label, rows[0]['ordering']))}", fontsize=9)
    return _finish(fig, ax, out)


@plain_text_figures
def distance_curves(rows: list[dict[str, Any]], out: Path) -> Path | None:
    """Forgetting (%) against the experiences since a domain was learned (d = 1 .. T-1), one curve per
    strategy over every ordering and seed of a study (`forgetting_by_distance`); error bars the std over
    runs. None where no run has three or more domains (one point per strategy says nothing a table does not)."""
    by: dict[str, list[list[float]]] = defaultdict(list)
    for e in rows:
        if e.get("forgetting_by_distance") and len(e["forgetting_by_distance"]) >= 2:
            by[e["strategy"]].append(e["forgetting_by_distance"])
    if not by:
        return None
    plt = _plt()
    labels = sorted(by)
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for label in labels:
        width = max(len(c) for c in by[label])
        xs, ys, sd = [], [], []
        for d in range(width):
            vals = [100 * c[d] for c in by[label] if len(c) > d]
            xs.append(d + 1)
            ys.append(float(np.mean(vals)))
            sd.append(_std(vals))
        ax.errorbar(xs, ys, yerr=sd, capsize=3, label=_legend(label, f" (n={len(by[label])})"), **style_of(label, labels))
    ax.set_xlabel("experiences since the domain was learned")
    ax.set_ylabel(f"forgetting, {rows[0]['metric']} (%, max-based)")
    ax.set_title(f"{_label(rows[0]['study'])}: forgetting by distance, every ordering and seed", fontsize=9)
    return _finish(fig, ax, out)
