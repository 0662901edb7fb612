"""What a run actually trained and was scored on, in a few numbers per domain.

`data_record` turns the (train, test) `PatchData` pairs a run prepares into hashes and counts,
so two runs can be seen to have drawn the same data or not (``data_seed = "per_seed"``,
a folder domain's ``resplit``) without storing the data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from .streams import PatchData

__all__ = ["data_record", "patch_hash", "patch_objects", "test_in_train"]


def patch_hash(data: PatchData) -> str:
    """The first 16 hex digits of the SHA-256 of the patches' images then targets, as C-ordered
    float32 bytes. The targets hold the flows Cellpose computes from the masks, so another
    Cellpose or numpy version may give another hash for the same images and masks."""
    h = hashlib.sha256()
    for a in (data.images, data.targets):
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def patch_objects(data: PatchData) -> int:
    """Objects in the patches: distinct labels > 0 of each patch's label image (``targets[:, 0]``),
    summed over the patches. Whole-image masks are not kept beside the patches (and Cellpose
    renumbers each patch's labels), so an object that a patch border cuts, or that overlapping
    patches (stride < patch size) both hold, counts once in every patch it is in."""
    labels = np.asarray(data.targets[:, 0]).reshape(len(data), -1)
    return int(sum(np.count_nonzero(np.unique(row) > 0) for row in labels))


def test_in_train(train: PatchData, test: PatchData) -> int:
    """Test patches whose image is a training patch's, byte for byte (flat patches left out: two
    empty corners may be equal without any image being shared). A test set that holds training
    images scores memory, not segmentation: a run records the count, and the leaderboard sets
    aside a run where it is not 0."""
    def key(a: np.ndarray) -> bytes:
        return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float32).tobytes()).digest()

    seen = {key(im) for im in train.images if float(np.ptp(im)) > 0}
    return sum(1 for im in test.images if float(np.ptp(im)) > 0 and key(im) in seen)


def data_record(prepared: Iterable[tuple[PatchData, PatchData]]) -> dict[str, dict[str, Any]]:
    """Per domain (in the order given): the hashes of its train and test patches (`patch_hash`),
    the number of each, the number of test objects (`patch_objects`) and of test patches that are
    training patches (`test_in_train`)."""
    out: dict[str, dict[str, Any]] = {}
    for train, test in prepared:
        out[train.domain] = {
            "train_hash": patch_hash(train),
            "test_hash": patch_hash(test),
            "train_patches": len(train),
            "test_patches": len(test),
            "test_objects": patch_objects(test),
            "test_in_train": test_in_train(train, test),
        }
    return out
