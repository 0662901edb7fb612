"""Real annotated microscopy that an installable package ships: no download at run or test time.

The ``stardist`` wheel (BSD-3-Clause) carries one image of the 2018 Data Science Bowl (stage 1
training set, BBBC038, CC0; Caicedo et al., Nature Methods 2019): 512 x 512 px of fluorescent
nuclei with their instance mask (183 labels, median diameter 23.7 px). dqcl reads the two TIFF
files from the installed package without importing it (``pip install stardist``, or
``pip install "dqcl[realism]"``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ...errors import DataError

__all__ = ["DSB_SOURCE", "dsb_nuclei", "write_dsb_halves"]

DSB_SOURCE = ("one image of the 2018 Data Science Bowl (BBBC038, CC0), as shipped in the stardist wheel "
              "(stardist/data/images/img2d.tif, mask2d.tif; BSD-3-Clause)")


def _stardist_images() -> Path:
    spec = importlib.util.find_spec("stardist")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the real-nuclei check needs the stardist package's bundled image: pip install stardist "
                        "(or pip install \"dqcl[realism]\")")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "images"


def dsb_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """The real image (uint16, 512 x 512) and its instance mask (int32)."""
    import tifffile

    folder = _stardist_images()
    try:
        return tifffile.imread(folder / "img2d.tif"), tifffile.imread(folder / "mask2d.tif").astype(np.int32)
    except (OSError, ValueError) as err:
        raise DataError(f"{folder}: cannot read the bundled DSB image ({err})") from None


def write_dsb_halves(dest: Path) -> Path:
    """``dest``/train and ``dest``/test in Cellpose's layout: the image's left half to train on and its
    right half to test on (objects cut by the split keep the part on their side); returns ``dest``."""
    import tifffile


    image, mask = dsb_nuclei()
    half = image.shape[1] // 2
    for split, cols in (("train", slice(0, half)), ("test", slice(half, None))):
        folder = Path(dest) / split
        folder.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(folder / "dsb_img.tif", image[:, cols])
        tifffile.imwrite(folder / "dsb_masks.tif", mask[:, cols])
    return Path(dest)
