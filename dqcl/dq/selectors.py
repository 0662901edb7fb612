"""Coreset selection: dataset quantization (two variants) and reference selectors.

All selectors take features X (N, D) and return sorted int64 indices.

``mmv`` reproduces the routine released with the paper (MMV-Lab/biomedseg-efficiency,
``dq_selection.py``) pick for pick: n_bins bins of sizes n//n_bins (+1 for the first
n % n_bins); each bin starts at the remaining point with the smallest summed squared
Euclidean distance to all points, then greedily adds the remaining point maximising
mean sqdist-to-bin minus mean sqdist-to-all; ties go to the lower index; the coreset is
the first max(1, int(len(bin) * ratio)) points of each bin. The released loop form is
O(N^2) per step; here each step is one row read of the distance matrix (when it fits the
memory budget, 1.7 GiB by default) or one matrix-vector product with a running sum (O(N*D)
memory). Selection runs in NumPy on the CPU and in torch on a GPU (``device="cuda"``).
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


def _unit_scale(x: np.ndarray) -> np.ndarray:
    """X times the power of two that brings its largest magnitude into [0.5, 1): exact in floating
    point, so the coreset is the same, and squared distances of features as large as 1e200 cannot
    overflow (nor tiny ones underflow) on the way."""
    x = np.asarray(x, dtype=np.float64) if x.dtype.kind in "iu" else x
    if x.dtype.itemsize < 4:
        x = x.astype(np.float32)  # float16 would flush small values to 0 once scaled
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0.0:
        return x
    return np.ldexp(x, -int(np.frexp(top)[1]))


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


def _as_array(x: np.ndarray, bins: int, dtype, device: str):
    """(array module, X as a float array): NumPy on the CPU (no torch import: `dqcl select` stays
    light), torch on any other device (a GPU takes large N)."""
    x = check_features(x)
    _check_args(len(x), 1.0, bins)
    arr = np.ascontiguousarray(x, dtype=dtype)
    if device == "cpu":
        return np, arr
    import torch

    return torch, torch.as_tensor(arr, device=device)


def _fits(n: int, itemsize: int, budget: float) -> bool:
    return n * n * itemsize <= budget


def _empty(xp, shape: tuple[int, ...], like):
    return np.empty(shape, dtype=like.dtype) if xp is np else like.new_empty(shape)


def _flags(xp, n: int, value: bool, like):
    return np.full(n, value, dtype=bool) if xp is np else xp.full((n,), value, dtype=xp.bool, device=like.device)


def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a.clone()


def _float64(a):
    return a.astype(np.float64) if isinstance(a, np.ndarray) else a.double()


def _sqdist_matrix(xp, x, block: int = 2048):
    """Full N x N squared Euclidean distances, built by blocked matrix products."""
    n = len(x)
    sq = (x * x).sum(1)
    d = _empty(xp, (n, n), x)
    for i in range(0, n, block):
        j = min(n, i + block)
        blk = d[i:j]
        xp.matmul(x[i:j], x.T, out=blk)
        blk *= -2
        blk += sq[i:j, None]
        blk += sq[None, :]
        xp.clip(blk, 0, None, out=blk)
        # exact zeros on the diagonal, as a direct distance computation gives
        blk[xp.arange(j - i), xp.arange(i, j)] = 0
    return d


def mmv_bins(x: np.ndarray, bins: int, dtype=None, budget: float = DEFAULT_BUDGET, device: str = "cpu") -> list[np.ndarray]:
    """The released routine's bins, each in pick order (NumPy on the CPU, torch on ``device``).

    ``dtype`` None: float64 when its N x N matrix fits ``budget``, else float32.
    """
    if dtype is None:
        dtype = np.float64 if _fits(len(x), 8, budget) else np.float32
    xp, xt = _as_array(x, bins, dtype, device)
    n = len(xt)
    sq = (xt * xt).sum(1)
    if _fits(n, np.dtype(dtype).itemsize, budget):
        d = _sqdist_matrix(xp, xt)
        row = lambda k: d[k]  # noqa: E731  (D is symmetric: row k is column k)
        to_all = d.mean(1)
        first_key = d.sum(1)  # the released routine starts a bin at the smallest row sum
    else:
        row = lambda k: xp.clip(sq + sq[k] - 2 * (xt @ xt[k]), 0, None)  # noqa: E731
        # mean_j ||x_i - x_j||^2 = ||x_i||^2 + mean ||x_j||^2 - 2 x_i . mean(x)
        to_all = xp.clip(sq + sq.mean() - 2 * (xt @ xt.mean(0)), 0, None)
        first_key = to_all
    taken = _flags(xp, n, False, xt)
    inf = float("inf")
    out = []
    for size in bin_sizes(n, bins):
        first = int(xp.argmin(xp.where(taken, inf, first_key)))  # ties: the lowest index
        members = [first]
        taken[first] = True
        running = _copy(row(first))
        while len(members) < size:
            gain = running / len(members) - to_all
            gain[taken] = -inf
            best = int(xp.argmax(gain))
            members.append(best)
            taken[best] = True
            running += row(best)
        out.append(np.asarray(members, dtype=np.int64))
    return out


def graphcut_bins(x: np.ndarray, bins: int, lam: float = 1.0, dtype=np.float32, budget: float = DEFAULT_BUDGET, device: str = "cpu") -> list[np.ndarray]:
    """Original DQ bins: greedy GraphCut on cosine similarity over the points left, bin after bin."""
    xp, xt = _as_array(x, bins, dtype, device)
    n = len(xt)
    xn = xt / xp.clip(xp.sqrt((xt * xt).sum(1)), 1e-12, None)[:, None]
    sim = xn @ xn.T if _fits(n, np.dtype(dtype).itemsize, budget) else None
    row = (lambda k: sim[k]) if sim is not None else (lambda k: xn @ xn[k])  # noqa: E731
    left = _flags(xp, n, True, xt)
    out = []
    for size in bin_sizes(n, bins):
        # sum over V (the points left now) of sim(i, x) = (sum of V's unit vectors) . x, for every x
        colsum = _float64(xn @ xn[left].sum(0))
        penalty = colsum * 0
        members = []
        for _ in range(size):
            gain = lam * colsum - 2.0 * penalty
            gain[~left] = -float("inf")
            best = int(xp.argmax(gain))
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
    x = _unit_scale(check_features(x))
    return np.sort(SELECTORS[variant](x, float(ratio), int(bins), int(seed), **kw)).astype(np.int64)
