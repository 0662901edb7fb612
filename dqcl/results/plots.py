"""PNG figures for the leaderboard: the redundancy saturation curve and the diversity picture."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import save_figure

__all__ = ["saturation_plot", "diversity_plot"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def saturation_plot(rows: list[dict[str, Any]], metric: str, out: Path) -> Path:
    """Score vs training-subset rate, one line per selector (mean ± std over seeds); 'all' is a dashed line."""
    plt = _plt()
    by: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    full: list[float] = []
    for e in rows:
        if e["metric"] != metric:
            continue
        score = e["R"][-1][0]
        if e["selector"] == "all":
            full.append(score)
        else:
            by[e["selector"]][e["rate"]].append(score)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for sel in sorted(by):
        rates = sorted(by[sel])
        mean = np.array([np.mean(by[sel][r]) for r in rates])
        std = np.array([np.std(by[sel][r]) for r in rates])
        ax.errorbar(np.array(rates) * 100, mean, yerr=std, marker="o", capsize=3, label=sel)
    if full:
        ax.axhline(np.mean(full), color="k", ls="--", lw=1, label=f"all data ({np.mean(full):.2f})")
    ax.set_xscale("log")
    ax.set_xlabel("training subset (% of patches)")
    ax.set_ylabel(metric)
    ax.set_title(f"{rows[0]['study']}: {rows[0]['ordering'][0]} trained from scratch on subsets")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out, dpi=100)
    return out


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
        ax.scatter(xy[idx, 0], xy[idx, 1], s=22, c="C3", edgecolors="k", linewidths=0.4, label=f"{name} ({len(idx)})")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, out, dpi=100)
    return out


def _mean_R(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.mean([np.asarray(e["R"], dtype=float) for e in rows], axis=0)


def heatmaps(rows: list[dict[str, Any]], out: Path) -> Path:
    """R matrices (mean over seeds) of one (study, ordering, metric), one panel per strategy."""
    plt = _plt()
    by: dict[str, list] = defaultdict(list)
    for e in rows:
        by[e["strategy"]].append(e)
    labels = sorted(by)
    order = rows[0]["ordering"]
    cols = min(4, len(labels))
    nrows = int(np.ceil(len(labels) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols, 2.5 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, label in zip(axes.ravel(), labels):
        R = _mean_R(by[label])
        ax.axis("on")
        ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(R):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
        ax.set_xticks(range(len(order)), order, fontsize=7)
        ax.set_yticks(range(len(R)), [f"after {order[i]}" if len(R) == len(order) else "after all" for i in range(len(R))], fontsize=7)
        ax.set_title(f"{label} (n={len(by[label])})", fontsize=8)
    fig.suptitle(f"{rows[0]['study']}: R[i][j] = {rows[0]['metric']} on domain j after experience i", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out, dpi=90)
    return out


def forgetting_plasticity(rows: list[dict[str, Any]], out: Path) -> Path:
    """One point per strategy: forgetting (x) vs plasticity (y), error bars = std over seeds."""
    plt = _plt()
    by: dict[str, list] = defaultdict(list)
    for e in rows:
        if e["forgetting"] is not None and e["plasticity"] is not None:
            by[e["strategy"]].append(e)
    fig, ax = plt.subplots(figsize=(5, 4))
    for k, label in enumerate(sorted(by)):
        f = [e["forgetting"] for e in by[label]]
        p = [e["plasticity"] for e in by[label]]
        ax.errorbar(np.mean(f), np.mean(p), xerr=np.std(f), yerr=np.std(p), fmt="o", capsize=3, color=f"C{k % 10}", label=label)
    ax.set_xlabel(f"forgetting ({rows[0]['metric']}, max-based)")
    ax.set_ylabel(f"plasticity ({rows[0]['metric']})")
    ax.set_title(f"{rows[0]['study']}: {' → '.join(rows[0]['ordering'])}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_figure(fig, out, dpi=100)
    return out


def replay_rate_curves(rows: list[dict[str, Any]], out: Path) -> Path | None:
    """Final source and target scores vs replay rate, DQ vs random (cumulative = 100 %, naive = 0 %)."""
    plt = _plt()
    series: dict[str, dict[float, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for e in rows:
        final = e["R"][-1]
        if len(e["R"]) < 2:
            continue
        point = (final[0], final[-1])
        if e["strategy_name"] in ("replay", "dq_replay"):
            series[e["strategy_name"]][e["params"]["rate"]].append(point)
        elif e["strategy_name"] == "cumulative":
            for name in ("replay", "dq_replay"):
                series[name][1.0].append(point)
        elif e["strategy_name"] == "naive":
            for name in ("replay", "dq_replay"):
                series[name][0.0].append(point)
    if not any(len([r for r in s if 0 < r < 1]) >= 2 for s in series.values()):
        return None
    order = rows[0]["ordering"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, which, title in ((axes[0], 0, f"source ({order[0]}) after {order[-1]}"), (axes[1], 1, f"target ({order[-1]})")):
        for k, name in enumerate(sorted(series)):
            rates = sorted(series[name])
            mean = [np.mean([p[which] for p in series[name][r]]) for r in rates]
            std = [np.std([p[which] for p in series[name][r]]) for r in rates]
            ax.errorbar(np.array(rates) * 100, mean, yerr=std, marker="o", capsize=3, color=f"C{k}", label=name)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("source replayed (%)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(rows[0]["metric"])
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{rows[0]['study']}: replay rate, DQ vs random", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out, dpi=100)
    return out
