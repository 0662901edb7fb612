"""Continual-learning summaries of a score matrix R.

R[i][j] is the score on domain j (in training order) after training experience i, for T
experiences; b[j] is the score of the randomly initialised network on domain j.

- ACC = mean_j R[T-1][j]
- BWT = mean_{j<T-1} (R[T-1][j] - R[j][j])
- forgetting = mean_{j<T-1} (max_{j<=i<T-1} R[i][j] - R[T-1][j])   (max-based, not initial-minus-final)
- FWT = mean_{j>0} (R[j-1][j] - b[j])
- plasticity = mean_j R[j][j]

A matrix with a single row (joint training, trained once on everything) has only ACC;
the others are None. So has a one-domain stream for BWT, forgetting and FWT.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CL_METRICS", "cl_metrics"]

CL_METRICS = ("acc", "bwt", "forgetting", "fwt", "plasticity")


def cl_metrics(R: list[list[float]], baseline: list[float]) -> dict[str, float | None]:
    r = np.asarray(R, dtype=float)
    b = np.asarray(baseline, dtype=float)
    rows, t = r.shape
    out: dict[str, float | None] = {k: None for k in CL_METRICS}
    out["acc"] = float(r[-1].mean())
    if rows != t:
        return out
    out["plasticity"] = float(np.mean(np.diag(r)))
    if t > 1:
        out["bwt"] = float(np.mean([r[t - 1, j] - r[j, j] for j in range(t - 1)]))
        out["forgetting"] = float(np.mean([r[j : t - 1, j].max() - r[t - 1, j] for j in range(t - 1)]))
        out["fwt"] = float(np.mean([r[j - 1, j] - b[j] for j in range(1, t)]))
    return out
