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


def score_masks(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """All of `METRICS` for one image; label numbers need not be consecutive."""
    import fastremap  # here, not at the top: METRICS alone must not pull in Cellpose and torch
    from cellpose.metrics import _label_overlap, _true_positive

    if true.shape != pred.shape:
        raise ValueError(f"mask shapes differ: {true.shape} vs {pred.shape}")
    true = fastremap.renumber(np.ascontiguousarray(true, dtype=np.int32))[0].astype(np.int32)
    pred = fastremap.renumber(np.ascontiguousarray(pred, dtype=np.int32))[0].astype(np.int32)
    overlap = _label_overlap(true, pred).astype(np.float64)  # (n_true+1, n_pred+1) pixel counts
    n_true, n_pred = overlap.shape[0] - 1, overlap.shape[1] - 1
    empty = n_true == 0 and n_pred == 0

    tp_px = overlap[1:, 1:].sum()
    fp_px = overlap[0, 1:].sum()
    fn_px = overlap[1:, 0].sum()
    tn_px = overlap[0, 0]
    s = {
        "iou": _ratio(tp_px, tp_px + fp_px + fn_px, empty),
        "dice": _ratio(2 * tp_px, 2 * tp_px + fp_px + fn_px, empty),
        "precision": _ratio(tp_px, tp_px + fp_px, empty),
        "recall": _ratio(tp_px, tp_px + fn_px, empty),
        "accuracy": float((tp_px + tn_px) / overlap.sum()) if overlap.sum() else 1.0,
    }

    area_true = overlap.sum(axis=1)[1:]
    area_pred = overlap.sum(axis=0)[1:]
    inter = overlap[1:, 1:]
    union = area_true[:, None] + area_pred[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    for key, th in (("ap50", 0.5), ("ap75", 0.75), ("ap90", 0.9)):
        tp = float(_true_positive(iou, th)) if n_true and n_pred else 0.0
        s[key] = _ratio(tp, n_true + n_pred - tp, empty)

    # IoU > 0.5 matches are unique, so no assignment is needed for PQ
    matched = iou[iou > 0.5]
    tp = matched.size
    sq = float(matched.mean()) if tp else 0.0
    rq = _ratio(tp, tp + 0.5 * (n_pred - tp) + 0.5 * (n_true - tp), empty)
    s["pq"] = 1.0 if empty else sq * rq

    # AJI: each true object with its best-IoU prediction; unmatched predictions add to the union
    if n_true and n_pred:
        best = iou.argmax(axis=1)
        hit = iou[np.arange(n_true), best] > 0
        inter_sum = inter[np.arange(n_true), best][hit].sum()
        union_sum = union[np.arange(n_true), best][hit].sum() + area_true[~hit].sum()
        used = np.zeros(n_pred, bool)
        used[best[hit]] = True
        union_sum += area_pred[~used].sum()
        s["aji"] = float(inter_sum / union_sum)
    else:
        s["aji"] = 1.0 if empty else 0.0
    return s


def mean_scores(per_image: list[dict[str, float]]) -> dict[str, float]:
    if not per_image:
        return {k: float("nan") for k in METRICS}
    return {k: float(np.mean([s[k] for s in per_image])) for k in METRICS}
