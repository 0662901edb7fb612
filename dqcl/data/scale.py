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

__all__ = ["MIN_DIAMETER", "diameter_range", "median_diameter", "rescale_factor", "rescaled_size", "rescaled_shape", "rescale_problem",
           "to_diameter", "split_to_diameter"]

# the diameter of a disc of one pixel's area: objects rescaled below it fall between the pixels of the mask
MIN_DIAMETER = 2 / np.pi**0.5


def diameter_range(patch: int, min_size: float = 0.0, max_size_fraction: float = 1.0) -> tuple[float, float]:
    """The median object diameters (px) a run can train at and still find the objects in its ``patch`` px
    patches: from a disc of ``min_size`` pixels (mask reconstruction removes smaller masks; at least a
    one-pixel disc, `MIN_DIAMETER`) to a disc of ``max_size_fraction`` of the patch (it removes larger
    ones, as Cellpose's ``max_size_fraction`` does), and never more than the patch's side."""
    lo = max(MIN_DIAMETER, (4 * float(min_size) / np.pi) ** 0.5)
    hi = float(patch) * min(1.0, (4 * max(float(max_size_fraction), 0.0) / np.pi) ** 0.5)
    return lo, hi


def median_diameter(mask: np.ndarray) -> float:
    """Cellpose's object diameter of a mask: the median over objects of the diameter of the disc
    of the same area (`cellpose.utils.diameters`); 0 for a mask without objects."""
    areas = np.bincount(np.asarray(mask, np.int64).ravel())[1:]
    areas = areas[areas > 0]
    return float(np.median(np.sqrt(areas)) / (np.pi**0.5 / 2)) if len(areas) else 0.0


def rescale_factor(mask: np.ndarray, target: float, stated: float = 0.0) -> tuple[float, float]:
    """(the objects' median diameter: ``stated``, else measured from ``mask``; the factor `to_diameter`
    rescales the image by to bring it to ``target`` px). The factor is 1 where ``target`` is 0, where
    there is no diameter (no objects, none stated) or where it is within 0.1 % of 1."""
    diameter = float(stated or median_diameter(mask))
    if target <= 0 or diameter <= 0:
        return diameter, 1.0
    factor = target / diameter
    return diameter, 1.0 if abs(factor - 1.0) < 1e-3 else float(factor)


def rescaled_size(shape: tuple[int, ...], factor: float) -> tuple[float, ...]:
    """Each side of an image of ``shape`` times ``factor``, unrounded (as floats, so a huge factor gives
    ``inf`` and never an OverflowError); `to_diameter` rounds them, at least 1."""
    return tuple(float(s) * factor for s in shape)


def rescaled_shape(shape: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """The shape `to_diameter` gives an image of ``shape`` rescaled by ``factor`` (each side rounded, at
    least 1); for a factor `rescale_problem` accepts."""
    return tuple(max(1, int(round(s))) for s in rescaled_size(shape, factor))


def rescale_problem(shape: tuple[int, ...], diameter: float, factor: float, target: float, stated: bool = False) -> str | None:
    """Why an image of ``shape`` whose objects' median diameter is ``diameter`` px cannot go to ``target``
    px by ``factor`` (see `rescale_factor`), or None: a target that is not a finite number; objects that
    would be smaller than a pixel (under `MIN_DIAMETER`); a side that would be under one pixel (the image
    would be a flat patch of padding); or more pixels than dqcl reads in one image (`imageio.MAX_PIXELS`)."""
    from .imageio import MAX_PIXELS

    if not np.isfinite(target):
        return f"the diameter to rescale to must be a finite number, got {target}"
    if factor == 1.0:
        return None
    sides = rescaled_size(shape, factor)
    size = " x ".join(f"{max(1.0, round(s)):,.0f}" if s < 1e15 else f"{s:.3g}" for s in sides)
    how = f"rescaling x{factor:.3g} (objects {'stated as' if stated else 'measured at'} {diameter:.3g} px) to {target:g} px"
    if target < MIN_DIAMETER:
        return f"{how} leaves objects under one pixel and a {size} px image: no signal, only padding"
    if min(sides) < 1:
        return f"{how} leaves a {size} px image, a side under one pixel: no signal, only padding"
    if not float(np.prod(sides)) <= MAX_PIXELS:
        return f"{how} makes it {size} px, over dqcl's limit of {MAX_PIXELS:,} pixels"
    return None


def to_diameter(image: np.ndarray, mask: np.ndarray, target: float, stated: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """``image`` and ``mask`` rescaled so that the objects' median diameter (``stated``, else measured)
    becomes ``target`` px, and the factor used. ``target`` 0 (or a mask without objects and no
    stated diameter) leaves them as they are (factor 1). The image is interpolated linearly (with
    anti-aliasing when it shrinks), the mask by nearest neighbour. A rescaling `rescale_problem`
    refuses (objects under a pixel, a side under a pixel, an image over dqcl's pixel limit) raises
    `DataError` before anything is allocated."""
    from ..errors import DataError

    diameter, factor = rescale_factor(mask, target, stated)
    problem = rescale_problem(image.shape, diameter, factor, target, bool(stated))
    if problem:
        raise DataError(problem)
    return (*_resize(image, mask, factor), factor)


def _resize(image: np.ndarray, mask: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    from skimage.transform import resize

    if factor == 1.0:
        return image, mask
    shape = rescaled_shape(image.shape, factor)
    img = resize(image, shape, order=1, preserve_range=True, anti_aliasing=factor < 1).astype(np.float32)
    lab = resize(mask, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    return img, lab


def split_to_diameter(split: Split, target: float) -> tuple[Split, tuple[float, ...]]:
    """Every image of ``split`` through `to_diameter` (its stated diameter where the split has
    them), and the factor each was rescaled by; ``target`` 0 leaves the split as it is (no factors).
    An image that cannot be rescaled raises `DataError` naming it, before any image is resized."""
    from ..errors import DataError

    if target <= 0:
        return split, ()
    stated = split.diameters or (0.0,) * len(split)
    factors = []
    for img, mask, d, name in zip(split.images, split.masks, stated, split.names):  # all checked before any is resized
        diameter, factor = rescale_factor(mask, target, d)
        problem = rescale_problem(img.shape, diameter, factor, target, bool(d))
        if problem:
            raise DataError(f"{name}: {problem}")
        factors.append(factor)
    done = [_resize(img, mask, f) for img, mask, f in zip(split.images, split.masks, factors)]
    return replace(split, images=tuple(x[0] for x in done), masks=tuple(x[1] for x in done)), tuple(factors)
