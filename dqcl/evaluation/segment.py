"""A whole image segmented the way Cellpose's `CellposeModel.eval` segments it (``resample=True``,
the default), with dqcl's own code, step for step:

1. normalise: 1st-99th percentile of the image;
2. rescale by the network's diameter over the objects' stated diameter (OpenCV's bilinear resize,
   the size truncated as Cellpose truncates it);
3. pad with zeros, centred, to a multiple of 16 plus 8 px on every side (`_pads`; a CPSAM network
   also to at least one tile);
4. cut overlapping tiles (224 px for CPnet, as Cellpose 3 does; CPSAM's own tile size, as Cellpose 4
   does), predict each, and blend them with Cellpose's taper (`_tiled`);
5. bring the flows and cell probability back to the image's own size, and follow the flows there
   for ``niter`` / rescale steps (200 / rescale by default, Cellpose's default).

dqcl's studies score patches cut from images already at the network's diameter; this is the same
network on one whole image at its own scale, which is what a user of an exported network gets from
Cellpose (``eval(img, diameter=true_size)``). The padding matters: a network trained on patches
segments a reflection-padded image differently from a zero-padded one (AP@0.5 0.54 vs 0.37 on the
packaged nuclei, one network), so dqcl pads as Cellpose pads.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..cpnet.masks import MaskSettings, batch_masks
from ..cpnet.model import CellposeNet

__all__ = ["segment_image"]

CPNET_TILE = 224  # Cellpose 3's `eval(bsize=224)`


@torch.no_grad()
def segment_image(model: CellposeNet, image: np.ndarray, diameter: float, settings: MaskSettings = MaskSettings()) -> np.ndarray:
    """Instance mask (int32, ``image``'s shape) of a 2-D image whose objects' median diameter is
    ``diameter`` px; the network segments it at its own diameter (``diam_mean``)."""
    import cv2

    from ..data.imageio import normalize

    img = normalize(np.asarray(image, np.float32))
    H, W = img.shape
    rescale = float(model.net.diam_mean) / float(diameter) if diameter and diameter > 0 else 1.0
    if rescale != 1.0:
        size = (max(1, int(W * rescale)), max(1, int(H * rescale)))  # OpenCV takes (width, height)
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    cpsam = getattr(model, "arch", "cpnet") == "cpsam"
    was_training = model.training
    model.eval()
    try:
        out = _tiled(model, img, int(model.net.bsize) if cpsam else CPNET_TILE, at_least_one_tile=cpsam)[0].numpy()
    finally:
        model.train(was_training)
    if out.shape[1:] != (H, W):  # resample: the flows at the image's own size
        out = cv2.resize(np.ascontiguousarray(out.transpose(1, 2, 0)), (W, H), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    mask = batch_masks(out[None], replace(settings, niter=int(settings.niter / rescale)))[0]
    return np.asarray(mask, np.int32)


def _taper(ly: int, lx: int | None = None, sig: float = 7.5) -> torch.Tensor:
    """A tile's blending weight, Cellpose's taper (`_taper_mask`): a logistic fall-off over the last
    ~20 px of each edge of a square of max(224, ly, lx) px, of which the central ``ly`` x ``lx`` px
    are kept (so a small tile is weighted by the middle of a 224-px taper, as Cellpose weights it)."""
    lx = ly if lx is None else lx
    full = max(224, ly, lx)
    d = torch.arange(full, dtype=torch.float64)
    d = (d - d.mean()).abs()
    edge = 1.0 / (1.0 + torch.exp((d - (full / 2 - 20.0)) / sig))
    mid = full // 2
    return (edge[mid - ly // 2: mid - ly // 2 + ly, None] * edge[None, mid - lx // 2: mid - lx // 2 + lx]).float()


def _pads(n: int, bsize: int, at_least_one_tile: bool) -> tuple[int, int]:
    """Zeros before and after an image side of ``n`` px, as Cellpose pads it (`get_pad_yx`): up to a
    multiple of 16 (or to one tile), split evenly, plus 8 px on each side."""
    short = bsize - n if at_least_one_tile and n < bsize else int(16 * np.ceil(n / 16) - n)
    return 8 + short // 2, 8 + short - short // 2


def _starts(n: int, bsize: int, overlap: float) -> tuple[np.ndarray, int]:
    """Tile starts along a padded side of ``n`` px and the tile's length on it (Cellpose's `make_tiles`)."""
    overlap = min(0.5, max(0.05, overlap))
    count = 1 if n <= bsize else int(np.ceil((1.0 + 2 * overlap) * n / bsize))
    length = min(bsize, n)
    return np.linspace(0, n - length, count).astype(int), length


@torch.no_grad()
def _tiled(model, img: np.ndarray, bsize: int, overlap: float = 0.1, batch: int = 8, at_least_one_tile: bool = True) -> torch.Tensor:
    """(1, 3, H, W) network output of an (H, W) image: zero-padded as Cellpose pads it, covered by
    overlapping tiles of at most ``bsize`` px (exactly ``bsize`` with ``at_least_one_tile``, for a
    network that takes its own tile size only), each predicted, blended by Cellpose's taper."""
    H, W = img.shape
    (y1, y2), (x1, x2) = (_pads(n, bsize, at_least_one_tile) for n in (H, W))
    padded = np.pad(np.asarray(img, np.float32), [(y1, y2), (x1, x2)])
    Hp, Wp = padded.shape
    (ys, ly), (xs, lx) = _starts(Hp, bsize, overlap), _starts(Wp, bsize, overlap)
    corners = [(y, x) for y in ys for x in xs]
    tiles = torch.from_numpy(np.stack([padded[y: y + ly, x: x + lx] for y, x in corners])[:, None].copy())
    w = _taper(ly, lx)
    out = torch.zeros((3, Hp, Wp))
    weight = torch.zeros((Hp, Wp))
    for i in range(0, len(corners), batch):
        pred = model(tiles[i: i + batch]).float()
        for (y, x), p in zip(corners[i: i + batch], pred):
            out[:, y: y + ly, x: x + lx] += p * w
            weight[y: y + ly, x: x + lx] += w
    return (out / weight)[None, :, y1: y1 + H, x1: x1 + W]
