"""Coreset selection: dataset quantization (two variants) and reference selectors.

All selectors take features X (N, D) and return sorted int64 indices.

``mmv`` reproduces the routine released with the paper (MMV-Lab/biomedseg-efficiency,
``dq_selection.py``) pick for pick: n_bins bins of sizes n//n_bins (+1 for the first
n % n_bins); each bin starts at the remaining point with the smallest summed squared
Euclidean distance to all points, then greedily adds the remaining point maximising
mean sqdist-to-bin minus mean sqdist-to-all; ties go to the lower index; the coreset is
the first max(1, int(len(bin) * ratio)) points of each bin. The released loop form is
O(N^2) per step; here each step is one row read of the distance matrix (when it fits the
memory budget) or one matrix-vector product with a running sum (O(N*D) memory).
The greedy order is chaotic: one near-tie decided differently by float32 and float64
arithmetic changes every later pick, so float32 runs (the released routine's, or ours at
large N) can pick differently from float64 ones after such a tie.

``graphcut`` is the original DQ (Zhou et al., ICCV 2023): bins are built one after another
from the points not yet binned by greedy GraphCut maximisation on cosine similarity,
gain(x) = lambda * sum_{i in V} sim(i, x) - 2 * sum_{s in S} sim(s, x) with lambda = 1 and V
the points left when the bin starts; then each bin is sampled uniformly at random.

``random`` and ``kcenter`` (greedy k-centre, farthest-point traversal) are references.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import DqclError

__all__ = ["SELECTORS", "select", "mmv_bins", "graphcut_bins", "bin_sizes", "capped_bins", "check_features", "DEFAULT_BUDGET"]

DEFAULT_BUDGET = 1.7 * 2**30  # bytes for a full N x N matrix; past it the running-sum form is used


def check_features(x: np.ndarray, where: str = "features") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise DqclError(f"{where}: expected a 2-D array (samples x features), got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise DqclError(f"{where}: expected numbers, got dtype {x.dtype}")
    if len(x) == 0:
        raise DqclError(f"{where}: no samples")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise DqclError(f"{where}: {int(bad.sum())} row(s) hold NaN or inf (first: row {int(np.argmax(bad))})")
    return x


def _check_args(n: int, ratio: float, bins: int) -> None:
    if not (0.0 < ratio <= 1.0):
        raise DqclError(f"ratio must be in (0, 1], got {ratio}")
    if not (1 <= bins <= n):
        raise DqclError(f"bins must be between 1 and the number of samples ({n}), got {bins}")


def capped_bins(bins: int, n: int, ratio: float) -> int:
    """Bins to use when a coreset must be about as large as random sampling's, max(1, int(n * ratio)).

    Each bin keeps at least one point, so with more bins than points to keep the released
    routine keeps more than asked (10 bins at 1 % of 54 points keep 10, not 1). Replay and
    the redundancy study compare selectors at equal sizes, so they cap the bins there.
    """
    return max(1, min(bins, n, int(n * ratio)))


def bin_sizes(n: int, bins: int) -> list[int]:
    return [n // bins + (1 if b < n % bins else 0) for b in range(bins)]


def _torch_dtype(dtype) -> torch.dtype:
    return {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[np.dtype(dtype)]


def _as_tensor(x: np.ndarray, bins: int, dtype, device: str) -> tuple[torch.Tensor, torch.dtype]:
    x = check_features(x)
    _check_args(len(x), 1.0, bins)
    tdt = _torch_dtype(dtype)
    return torch.as_tensor(np.ascontiguousarray(x), device=device).to(tdt), tdt


def _fits(n: int, dtype: torch.dtype, budget: float) -> bool:
    return n * n * (8 if dtype == torch.float64 else 4) <= budget


def _sqdist_matrix(x: torch.Tensor, block: int = 2048) -> torch.Tensor:
    """Full N x N squared Euclidean distances, built by blocked matrix products."""
    n = len(x)
    sq = (x * x).sum(dim=1)
    d = torch.empty((n, n), dtype=x.dtype, device=x.device)
    for i in range(0, n, block):
        j = min(n, i + block)
        blk = d[i:j]
        torch.matmul(x[i:j], x.T, out=blk)
        blk.mul_(-2).add_(sq[i:j, None]).add_(sq[None, :]).clamp_(min=0)
        # exact zeros on the diagonal, as a direct distance computation gives
        blk[torch.arange(j - i), torch.arange(i, j)] = 0
    return d


def mmv_bins(x: np.ndarray, bins: int, dtype=None, budget: float = DEFAULT_BUDGET, device: str = "cpu") -> list[np.ndarray]:
    """The released routine's bins, each in pick order (torch on ``device``; a GPU takes large N).

    ``dtype`` None: float64 when its N x N matrix fits ``budget``, else float32.
    """
    if dtype is None:
        dtype = np.float64 if _fits(len(x), torch.float64, budget) else np.float32
    xt, tdt = _as_tensor(x, bins, dtype, device)
    n = len(xt)
    sq = (xt * xt).sum(dim=1)
    if _fits(n, tdt, budget):
        d = _sqdist_matrix(xt)
        row = lambda k: d[k]  # noqa: E731  (D is symmetric: row k is column k)
        to_all = d.mean(dim=1)
        first_key = d.sum(dim=1)  # the released routine starts a bin at the smallest row sum
    else:
        row = lambda k: (sq + sq[k] - 2 * (xt @ xt[k])).clamp_(min=0)  # noqa: E731
        # mean_j ||x_i - x_j||^2 = ||x_i||^2 + mean ||x_j||^2 - 2 x_i . mean(x)
        to_all = (sq + sq.mean() - 2 * (xt @ xt.mean(dim=0))).clamp_(min=0)
        first_key = to_all
    taken = torch.zeros(n, dtype=torch.bool, device=xt.device)
    inf = torch.tensor(float("inf"), dtype=tdt, device=xt.device)
    out = []
    for size in bin_sizes(n, bins):
        first = int(torch.argmin(torch.where(taken, inf, first_key)))  # ties: the lowest index
        members = [first]
        taken[first] = True
        running = row(first).clone()
        while len(members) < size:
            gain = running / len(members) - to_all
            gain.masked_fill_(taken, -inf)
            best = int(torch.argmax(gain))
            members.append(best)
            taken[best] = True
            running += row(best)
        out.append(np.asarray(members, dtype=np.int64))
    return out


def graphcut_bins(x: np.ndarray, bins: int, lam: float = 1.0, dtype=np.float32, budget: float = DEFAULT_BUDGET, device: str = "cpu") -> list[np.ndarray]:
    """Original DQ bins: greedy GraphCut on cosine similarity over the points left, bin after bin."""
    xt, tdt = _as_tensor(x, bins, dtype, device)
    n = len(xt)
    xn = xt / xt.norm(dim=1, keepdim=True).clamp_(min=1e-12)
    sim = xn @ xn.T if _fits(n, tdt, budget) else None
    row = (lambda k: sim[k]) if sim is not None else (lambda k: xn @ xn[k])  # noqa: E731
    left = torch.ones(n, dtype=torch.bool, device=xt.device)
    out = []
    for size in bin_sizes(n, bins):
        # sum over V (the points left now) of sim(i, x) = (sum of V's unit vectors) . x, for every x
        colsum = (xn @ xn[left].sum(dim=0)).double()
        penalty = torch.zeros(n, dtype=torch.float64, device=xt.device)
        members = []
        for _ in range(size):
            gain = lam * colsum - 2.0 * penalty
            gain.masked_fill_(~left, -float("inf"))
            best = int(torch.argmax(gain))
            members.append(best)
            left[best] = False
            penalty += row(best)
        out.append(np.asarray(members, dtype=np.int64))
    return out


def _from_bins_prefix(bins: list[np.ndarray], ratio: float) -> np.ndarray:
    return np.unique(np.concatenate([b[: max(1, int(len(b) * ratio))] for b in bins]))


def _from_bins_uniform(bins: list[np.ndarray], ratio: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = [rng.choice(b, size=max(1, int(len(b) * ratio)), replace=False) for b in bins]
    return np.unique(np.concatenate(picks))


def select_mmv(x, ratio, bins=10, seed=0, **kw):
    _check_args(len(x), ratio, bins)
    return _from_bins_prefix(mmv_bins(x, bins, **kw), ratio)


def select_graphcut(x, ratio, bins=10, seed=0, **kw):
    _check_args(len(x), ratio, bins)
    return _from_bins_uniform(graphcut_bins(x, bins, **kw), ratio, seed)


def select_random(x, ratio, bins=10, seed=0, **kw):
    _check_args(len(x), ratio, bins)
    n = len(x)
    k = min(n, max(1, int(n * ratio)))
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False)).astype(np.int64)


def select_kcenter(x, ratio, bins=10, seed=0, **kw):
    """Greedy k-centre: start at a seeded random point, then repeatedly take the farthest from the chosen."""
    _check_args(len(x), ratio, bins)
    xd = np.asarray(x, dtype=np.float64)
    n = len(xd)
    k = min(n, max(1, int(n * ratio)))
    sq = np.einsum("ij,ij->i", xd, xd)
    first = int(np.random.default_rng(seed).integers(n))
    chosen = [first]
    nearest = np.maximum(sq + sq[first] - 2 * (xd @ xd[first]), 0)
    for _ in range(k - 1):
        far = int(np.argmax(nearest))
        chosen.append(far)
        np.minimum(nearest, np.maximum(sq + sq[far] - 2 * (xd @ xd[far]), 0), out=nearest)
    return np.sort(np.asarray(chosen, dtype=np.int64))


SELECTORS: dict[str, Callable[..., np.ndarray]] = {
    "mmv": select_mmv,
    "graphcut": select_graphcut,
    "random": select_random,
    "kcenter": select_kcenter,
}


def select(x: np.ndarray, ratio: float, bins: int = 10, variant: str = "mmv", seed: int = 0, **kw) -> np.ndarray:
    """Sorted int64 indices of the coreset of X chosen by ``variant``."""
    if variant not in SELECTORS:
        raise DqclError(f"unknown selection variant '{variant}'; known: {', '.join(SELECTORS)}")
    x = check_features(x)
    return np.sort(SELECTORS[variant](x, float(ratio), int(bins), int(seed), **kw)).astype(np.int64)
