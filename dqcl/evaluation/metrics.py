"""Segmentation scores of one predicted instance mask against its ground truth.

Pixel-level scores follow the paper's released code (foreground IoU, Dice, precision,
recall, accuracy); instance-level scores are Cellpose's AP at IoU 0.5/0.75/0.9
(tp / (tp + fp + fn), Hungarian matching), panoptic quality (SQ x RQ at IoU 0.5) and the
aggregated Jaccard index of Kumar et al. (2017). When both masks are empty every score is
1 (nothing to find, nothing found); a ratio whose denominator is otherwise 0 is 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METRICS", "score_masks", "mean_scores"]

METRICS = ("iou", "dice", "precision", "recall", "accuracy", "ap50", "ap75", "ap90", "pq", "aji")


def _ratio(num: float, den: float, both_empty: bool) -> float:
    if den == 0:
        return 1.0 if both_empty else 0.0
    return float(num / den)


def _renumber(mask: np.ndarray) -> np.ndarray:
    import fastremap  # here, not at the top: METRICS alone must not pull in anything heavy

    return fastremap.renumber(np.ascontiguousarray(mask, dtype=np.int32))[0].astype(np.int64)


def _matches(t: np.ndarray, p: np.ndarray, iou: np.ndarray, th: float) -> int:
    """The most (true, predicted) pairs with IoU >= th that share no object (Cellpose's matching)."""
    ok = iou >= th
    t, p = t[ok], p[ok]
    if len(np.unique(t)) == len(t) and len(np.unique(p)) == len(p):
        return int(len(t))  # above 0.5 a pair can only be matched one way
    from scipy.optimize import linear_sum_assignment

    ut, ti = np.unique(t, return_inverse=True)
    up, pi = np.unique(p, return_inverse=True)
    cost = np.zeros((len(ut), len(up)))
    cost[ti, pi] = -1.0 - iou[ok] / (2 * min(len(ut), len(up)))  # more matches first, then higher IoU
    rows, cols = linear_sum_assignment(cost)
    return int((cost[rows, cols] < 0).sum())


def score_masks(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """All of `METRICS` for one image; label numbers need not be consecutive.

    The overlap of true and predicted objects is kept sparse (only pairs that share pixels), so
    an image with tens of thousands of objects needs memory in proportion to its pixels, not to
    n_true x n_pred.
    """
    if true.shape != pred.shape:
        raise ValueError(f"mask shapes differ: {true.shape} vs {pred.shape}")
    true, pred = _renumber(true), _renumber(pred)
    n_true, n_pred = int(true.max(initial=0)), int(pred.max(initial=0))
    empty = n_true == 0 and n_pred == 0
    codes, counts = np.unique(true.ravel() * (n_pred + 1) + pred.ravel(), return_counts=True)
    t, p, counts = codes // (n_pred + 1), codes % (n_pred + 1), counts.astype(np.float64)

    tp_px = counts[(t > 0) & (p > 0)].sum()
    fp_px = counts[(t == 0) & (p > 0)].sum()
    fn_px = counts[(t > 0) & (p == 0)].sum()
    tn_px = counts[(t == 0) & (p == 0)].sum()
    s = {
        "iou": _ratio(tp_px, tp_px + fp_px + fn_px, empty),
        "dice": _ratio(2 * tp_px, 2 * tp_px + fp_px + fn_px, empty),
        "precision": _ratio(tp_px, tp_px + fp_px, empty),
        "recall": _ratio(tp_px, tp_px + fn_px, empty),
        "accuracy": float((tp_px + tn_px) / counts.sum()) if counts.sum() else 1.0,
    }

    area_true = np.bincount(t, weights=counts, minlength=n_true + 1)
    area_pred = np.bincount(p, weights=counts, minlength=n_pred + 1)
    both = (t > 0) & (p > 0)
    pt, pp, inter = t[both], p[both], counts[both]
    union = area_true[pt] + area_pred[pp] - inter
    iou = inter / union
    for key, th in (("ap50", 0.5), ("ap75", 0.75), ("ap90", 0.9)):
        tp = float(_matches(pt, pp, iou, th)) if n_true and n_pred else 0.0
        s[key] = _ratio(tp, n_true + n_pred - tp, empty)

    # IoU > 0.5 matches are unique, so no assignment is needed for PQ
    matched = iou[iou > 0.5]
    tp = matched.size
    sq = float(matched.mean()) if tp else 0.0
    rq = _ratio(tp, tp + 0.5 * (n_pred - tp) + 0.5 * (n_true - tp), empty)
    s["pq"] = 1.0 if empty else sq * rq

    # AJI: each true object with its best-IoU prediction (ties: the lower label); unmatched predictions add to the union
    if n_true and n_pred:
        order = np.lexsort((pp, -iou, pt))  # by true object, best IoU first, then the lower predicted label
        first = order[np.r_[True, pt[order][1:] != pt[order][:-1]]] if len(order) else order
        inter_sum = inter[first].sum()
        union_sum = union[first].sum() + area_true[1:].sum() - area_true[pt[first]].sum()
        used = np.zeros(n_pred + 1, bool)
        used[pp[first]] = True
        union_sum += area_pred[1:][~used[1:]].sum()
        s["aji"] = float(inter_sum / union_sum)
    else:
        s["aji"] = 1.0 if empty else 0.0
    return s


def mean_scores(per_image: list[dict[str, float]]) -> dict[str, float]:
    if not per_image:
        return {k: float("nan") for k in METRICS}
    return {k: float(np.mean([s[k] for s in per_image])) for k in METRICS}
