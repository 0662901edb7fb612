"""A built-in domain written as a folder of image/mask pairs, as a Cellpose user keeps theirs.

`export_domain` draws a built-in domain's train and test images (the same images a study of that
seed trains and scores on) and writes them in Cellpose's training layout: ``train/`` and ``test/``,
each image ``<name>_img.tif`` (float32, normalised) beside ``<name>_masks.tif`` (uint16 or uint32
labels), objects at their drawn size. Such folders stand in for a user's own: `dqcl update` and
``kind = "folder"`` domains read them, and so does Cellpose (``cellpose --dir ... --img_filter _img
--mask_filter _masks``).

The folder is written beside its final name and renamed into place: an interrupted export leaves
no half-written folder behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DataError, DqclError

__all__ = ["export_domain"]


def export_domain(name: str, out: str | Path, *, seed: int = 0, n_train: int = 16, n_test: int = 8, size: int = 192) -> dict[str, int]:
    """Write built-in domain ``name`` (seed ``seed``: its images as a study with that data seed draws them)
    to a new folder ``out``; returns the pairs written per split."""
    import tifffile

    from .domains import DOMAINS

    out = Path(out)
    if name == "folder" or name not in DOMAINS:
        raise DqclError(f"{name!r}: not a built-in domain (dqcl domains list shows them)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: exists and is not an empty folder; give --out a new folder")
    domain = DOMAINS.get(name).factory(seed=seed, n_train=n_train, n_test=n_test, size=size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:40]}.", dir=out.parent))
    try:
        counts = {}
        for split_name, split in (("train", domain.train), ("test", domain.test)):
            folder = tmp / split_name
            folder.mkdir()
            for i, (image, mask) in enumerate(zip(split.images, split.masks)):
                stem = f"{name}_{split_name}_{i:04d}"  # a built-in's names are its own; numbered, they are safe file names
                tifffile.imwrite(folder / f"{stem}_img.tif", np.asarray(image, np.float32))
                labels = np.asarray(mask)
                tifffile.imwrite(folder / f"{stem}_masks.tif", labels.astype(np.uint16 if labels.max(initial=0) < 2**16 else np.uint32))
            counts[split_name] = len(split)
        if out.exists():
            out.rmdir()  # empty, checked above
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts
