"""A whole image segmented the way Cellpose's `CellposeModel.eval` does it, with dqcl's own code:
normalise (1st-99th percentile), rescale by the network's diameter over the objects' stated
diameter, predict flows, follow them to masks, and bring the masks back to the image's size.

dqcl's studies score patches cut from images already at the network's diameter; this is the
same arithmetic for one whole image at its own scale, which is what a user of an exported
network does in Cellpose (``eval(img, diameter=true_size)``).
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
    # CPnet halves the image three times: pad to a multiple of 16 by reflection, crop after
    pad = [(0, (-s) % 16) for s in img.shape]
    x = torch.from_numpy(np.pad(img, pad, mode="reflect")[None, None].copy())
    was_training = model.training
    model.eval()
    try:
        out = model(x)[:, :, : img.shape[0], : img.shape[1]]
    finally:
        model.train(was_training)
    mask = batch_masks(out, settings)[0]
    if mask.shape != image.shape:
        mask = resize(mask, image.shape, order=0, preserve_range=True, anti_aliasing=False)
    return np.asarray(mask, np.int32)
