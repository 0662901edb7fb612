"""PNG figures for the leaderboard: the redundancy saturation curve and the diversity picture."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

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
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
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
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
