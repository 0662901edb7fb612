"""A whole image segmented the way Cellpose's `CellposeModel.eval` does it, with dqcl's own code:
normalise (1st-99th percentile), rescale by the network's diameter over the objects' stated
diameter, predict flows, follow them to masks, and bring the masks back to the image's size.

dqcl's studies score patches cut from images already at the network's diameter; this is the
same arithmetic for one whole image at its own scale, which is what a user of an exported
network does in Cellpose (``eval(img, diameter=true_size)``). CPnet takes the whole image (padded
to a multiple of 16); CPSAM takes tiles of its own size only, so the image is cut into overlapping
tiles and their outputs blended with a taper, as Cellpose 4 does (`_tiled`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..cpnet.masks import MaskSettings, batch_masks
from ..cpnet.model import CellposeNet

__all__ = ["segment_image"]


@torch.no_grad()
def segment_image(model: CellposeNet, image: np.ndarray, diameter: float, settings: MaskSettings = MaskSettings()) -> np.ndarray:
    """Instance mask (int32, ``image``'s shape) of a 2-D image whose objects' median diameter is
    ``diameter`` px; the network segments it at its own diameter (``diam_mean``)."""
    from skimage.transform import resize

    from ..data.imageio import normalize

    img = normalize(np.asarray(image, np.float32))
    target = float(model.net.diam_mean)
    factor = target / float(diameter) if diameter and diameter > 0 else 1.0
    shape = tuple(max(16, int(round(s * factor))) for s in img.shape)
    if shape != img.shape:
        img = resize(img, shape, order=1, preserve_range=True, anti_aliasing=factor < 1).astype(np.float32)
    was_training = model.training
    model.eval()
    try:
        if getattr(model, "arch", "cpnet") == "cpsam":
            out = _tiled(model, img, int(model.net.bsize))
        else:
            # CPnet halves the image three times: pad to a multiple of 16 by reflection, crop after
            pad = [(0, (-s) % 16) for s in img.shape]
            x = torch.from_numpy(np.pad(img, pad, mode="reflect")[None, None].copy())
            out = model(x)[:, :, : img.shape[0], : img.shape[1]]
    finally:
        model.train(was_training)
    mask = batch_masks(out, settings)[0]
    if mask.shape != image.shape:
        mask = resize(mask, image.shape, order=0, preserve_range=True, anti_aliasing=False)
    return np.asarray(mask, np.int32)


def _taper(bsize: int, sig: float = 7.5) -> torch.Tensor:
    """A tile's blending weight, Cellpose's taper: a logistic fall-off over the last ~20 px of each
    edge of a square of max(224, bsize) px, of which the central ``bsize`` px are kept (so a small
    tile is weighted by the middle of a 224-px taper, as Cellpose weights it)."""
    full = max(224, bsize)
    d = torch.arange(full, dtype=torch.float64)
    d = (d - d.mean()).abs()
    edge = 1.0 / (1.0 + torch.exp((d - (full / 2 - 20.0)) / sig))
    lo = full // 2 - bsize // 2
    edge = edge[lo: lo + bsize].float()
    return edge[:, None] * edge[None, :]


def _tiled(model, img: np.ndarray, bsize: int, overlap: float = 0.1, batch: int = 8) -> torch.Tensor:
    """(1, 3, H, W) network output of an image for a network that takes ``bsize``-px tiles only: the image
    (zero-padded up to one tile) is covered by overlapping tiles, each predicted, and blended by `_taper`."""
    H, W = img.shape
    padded = np.pad(img, [(0, max(0, bsize - H)), (0, max(0, bsize - W))])
    Hp, Wp = padded.shape
    starts = [np.unique(np.linspace(0, n - bsize, max(1, int(np.ceil((1 + 2 * overlap) * n / bsize)))).round().astype(int))
              for n in (Hp, Wp)]
    corners = [(y, x) for y in starts[0] for x in starts[1]]
    tiles = torch.from_numpy(np.stack([padded[y: y + bsize, x: x + bsize] for y, x in corners])[:, None].copy())
    out = torch.zeros((3, Hp, Wp))
    weight = torch.zeros((Hp, Wp))
    w = _taper(bsize)
    for i in range(0, len(corners), batch):
        pred = model(tiles[i: i + batch]).float()
        for (y, x), p in zip(corners[i: i + batch], pred):
            out[:, y: y + bsize, x: x + bsize] += p * w
            weight[y: y + bsize, x: x + bsize] += w
    return (out / weight)[None, :, :H, :W]
