"""Continual-learning summaries of a score matrix R.

R[i][j] is the score on domain j (in training order) after training experience i, for T
experiences; b[j] is the score of the randomly initialised network on domain j.

- ACC = mean_j R[T-1][j]
- BWT = mean_{j<T-1} (R[T-1][j] - R[j][j])
- forgetting = mean_{j<T-1} (max_{j<=i<T-1} R[i][j] - R[T-1][j])   (max-based, not initial-minus-final)
- FWT = mean_{j>0} (R[j-1][j] - b[j])
- plasticity = mean_j R[j][j]
- average incremental accuracy (Rebuffi et al. 2017) = mean_i ACC_i, ACC_i = mean_{j<=i} R[i][j]: the mean
  score on the domains seen so far, after every experience
- forgetting by distance: for d = 1 .. T-1, mean_{j} (max_{j<=l<j+d} R[l][j] - R[j+d][j]): how much of a
  domain is forgotten d experiences after it was learned (`forgetting_by_distance`)
- intransigence (Chaudhry et al. 2018) = mean_j (J[j] - R[j][j]), J the final scores of joint training on
  the same ordering and seed: how far learning a domain in the stream falls short of learning it with all
  the data at once (`intransigence`, across runs; Chaudhry's reference trains jointly on domains 1..j, dqcl's
  joint run on all of them)

A matrix with a single row (joint training, trained once on everything) has only ACC;
the others are None. So has a one-domain stream for BWT, forgetting and FWT. FWT compares the score on
a domain before training on it with the random-init network's: where every strategy trains the first
experience the same way (all of dqcl's do; they differ from the second on), a two-domain stream gives every
strategy the same FWT, and it tells strategies apart only from three domains on.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CL_METRICS", "cl_metrics", "forgetting_by_distance", "intransigence"]

CL_METRICS = ("acc", "bwt", "forgetting", "fwt", "plasticity", "inc_acc", "intransigence")


def cl_metrics(R: list[list[float]], baseline: list[float]) -> dict[str, float | None]:
    r = np.asarray(R, dtype=float)
    b = np.asarray(baseline, dtype=float)
    rows, t = r.shape
    out: dict[str, float | None] = {k: None for k in CL_METRICS}
    out["acc"] = float(r[-1].mean())
    if rows != t:
        return out
    out["plasticity"] = float(np.mean(np.diag(r)))
    out["inc_acc"] = float(np.mean([r[i, : i + 1].mean() for i in range(t)]))
    if t > 1:
        out["bwt"] = float(np.mean([r[t - 1, j] - r[j, j] for j in range(t - 1)]))
        out["forgetting"] = float(np.mean([r[j : t - 1, j].max() - r[t - 1, j] for j in range(t - 1)]))
        out["fwt"] = float(np.mean([r[j - 1, j] - b[j] for j in range(1, t)]))
    return out


def forgetting_by_distance(R: list[list[float]]) -> list[float] | None:
    """Element d-1: the mean over domains j of max_{j<=l<j+d} R[l][j] - R[j+d][j], forgetting d experiences
    after learning; None for a one-row (joint) matrix."""
    r = np.asarray(R, dtype=float)
    rows, t = r.shape
    if rows != t or t < 2:
        return None
    return [float(np.mean([r[j : j + d, j].max() - r[j + d, j] for j in range(t - d)])) for d in range(1, t)]


def intransigence(R: list[list[float]], joint_final: list[float]) -> float | None:
    """mean_j (joint's final score on domain j - R[j][j]), or None where R is one row (joint itself)."""
    r = np.asarray(R, dtype=float)
    rows, t = r.shape
    if rows != t or len(joint_final) != t:
        return None
    return float(np.mean([joint_final[j] - r[j, j] for j in range(t)]))
