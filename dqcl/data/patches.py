"""Square patches from whole images and masks (the paper's 224 px / stride 112 grid)."""

from __future__ import annotations

import numpy as np

from .domains import Split
from ..errors import DataError

__all__ = ["grid", "count_patches", "extract_patches"]


def grid(length: int, size: int, stride: int) -> list[int]:
    """Start offsets of the full patches along one axis."""
    return list(range(0, length - size + 1, stride))


def count_patches(shape: tuple[int, int], size: int, stride: int, pad: bool = False) -> int:
    """How many patches `extract_patches` cuts from an image of ``shape`` (0 where it is smaller than
    ``size`` and ``pad`` is false: `extract_patches` refuses such an image)."""
    h, w = shape
    if pad:
        h, w = max(h, size), max(w, size)
    return len(range(0, h - size + 1, stride)) * len(range(0, w - size + 1, stride))  # `grid`'s lengths, without the lists


def extract_patches(split: Split, size: int, stride: int, pad: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Patches of every image in a split: images (N, size, size) float32, masks (N, size, size) int32, source names.

    Only full patches are taken. An image smaller than ``size`` is an error unless ``pad``,
    which reflects the image and pads its mask with background up to ``size``.
    """
    if size < 16 or stride < 1:
        raise DataError(f"patch size must be >= 16 and stride >= 1 (got {size}, {stride})")
    imgs, masks, names = [], [], []
    for img, mask, name in zip(split.images, split.masks, split.names):
        h, w = img.shape
        if h < size or w < size:
            if not pad:
                raise DataError(f"{name}: image {h}x{w} is smaller than the {size} px patch (set pad = true)")
            ph, pw = max(0, size - h), max(0, size - w)
            img = np.pad(img, ((0, ph), (0, pw)), mode="reflect" if min(h, w) > 1 else "edge")
            mask = np.pad(mask, ((0, ph), (0, pw)))
            h, w = img.shape
        for y in grid(h, size, stride):
            for x in grid(w, size, stride):
                imgs.append(img[y : y + size, x : x + size])
                masks.append(mask[y : y + size, x : x + size])
                names.append(f"{name}@{y},{x}")
    if not imgs:
        raise DataError("no patches: the domain has no images")
    return np.stack(imgs).astype(np.float32), np.stack(masks).astype(np.int32), names
