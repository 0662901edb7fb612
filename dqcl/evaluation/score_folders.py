"""`dqcl score`: predicted instance masks from elsewhere against ground truth, folder to folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.folders import files_by_stem
from ..data.imageio import read_mask
from ..errors import DataError
from .metrics import mean_scores, score_masks

__all__ = ["score_folders"]


def score_folders(true_dir: Path, pred_dir: Path, true_suffix: str = "_masks", pred_suffix: str = "_cp_masks") -> dict[str, Any]:
    """{"images": [{"name", <metrics>}], "mean": {<metrics>}} over the stems both folders share.

    A true mask without a prediction (or the reverse) is an error: silently scoring a
    subset would flatter the predictions.
    """
    true = files_by_stem(true_dir, true_suffix)
    pred = files_by_stem(pred_dir, pred_suffix)
    if not true:
        raise DataError(f"{true_dir}: no '*{true_suffix}' masks found")
    for stem, path in true.items():
        if stem not in pred:
            raise DataError(f"{path}: no prediction '{stem}{pred_suffix}.*' in {pred_dir}")
    for stem, path in pred.items():
        if stem not in true:
            raise DataError(f"{path}: no ground truth '{stem}{true_suffix}.*' in {true_dir}")
    images = []
    for stem in sorted(true):
        t, p = read_mask(true[stem]), read_mask(pred[stem])
        if t.shape != p.shape:
            raise DataError(f"{pred[stem]}: shape {p.shape} differs from ground truth {t.shape}")
        images.append({"name": stem, **score_masks(t, p)})
    return {"images": images, "mean": mean_scores(images)}
