"""Cellpose's scale convention: every image rescaled so that its objects have one median diameter.

Cellpose trains on images rescaled so that their objects' median diameter is ``diam_mean``
(30 px), measured per image from its masks, and segments a user's image after rescaling it by
``diam_mean / diameter``, the diameter the user states. dqcl does the same for every domain
(built-in and folders): each image goes to the spec's ``data.diameter`` before it is cut into
patches, measured from its own masks (train and test alike: the diameter a user who measured
their objects would state), unless its domain states one (a folder's ``diameter``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .domains import Split

__all__ = ["median_diameter", "to_diameter", "split_to_diameter"]


def median_diameter(mask: np.ndarray) -> float:
    """Cellpose's object diameter of a mask: the median over objects of the diameter of the disc
    of the same area (`cellpose.utils.diameters`); 0 for a mask without objects."""
    areas = np.bincount(np.asarray(mask, np.int64).ravel())[1:]
    areas = areas[areas > 0]
    return float(np.median(np.sqrt(areas)) / (np.pi**0.5 / 2)) if len(areas) else 0.0


def to_diameter(image: np.ndarray, mask: np.ndarray, target: float, stated: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """``image`` and ``mask`` rescaled so that the objects' median diameter (``stated``, else measured)
    becomes ``target`` px, and the factor used. ``target`` 0 (or a mask without objects and no
    stated diameter) leaves them as they are (factor 1). The image is interpolated linearly (with
    anti-aliasing when it shrinks), the mask by nearest neighbour."""
    from skimage.transform import resize

    diameter = stated or median_diameter(mask)
    if target <= 0 or diameter <= 0:
        return image, mask, 1.0
    factor = target / diameter
    if abs(factor - 1.0) < 1e-3:
        return image, mask, 1.0
    shape = tuple(max(1, int(round(s * factor))) for s in image.shape)
    img = resize(image, shape, order=1, preserve_range=True, anti_aliasing=factor < 1).astype(np.float32)
    lab = resize(mask, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    return img, lab, float(factor)


def split_to_diameter(split: Split, target: float) -> tuple[Split, tuple[float, ...]]:
    """Every image of ``split`` through `to_diameter` (its stated diameter where the split has
    them), and the factor each was rescaled by; ``target`` 0 leaves the split as it is (no factors)."""
    if target <= 0:
        return split, ()
    stated = split.diameters or (0.0,) * len(split)
    done = [to_diameter(img, mask, target, d) for img, mask, d in zip(split.images, split.masks, stated)]
    return replace(split, images=tuple(x[0] for x in done), masks=tuple(x[1] for x in done)), tuple(x[2] for x in done)
