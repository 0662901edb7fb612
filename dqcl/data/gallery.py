"""A picture of a domain's samples with their mask outlines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.atomic import save_figure
from ..core.text import figure_text, plain_text_figures
from .domains import Domain

__all__ = ["write_gallery"]


@plain_text_figures
def write_gallery(domain: Domain, out: Path, n: int = 8, cols: int = 4) -> Path:
    """Write a PNG grid of the first ``n`` training images, raw beside outlined, titled by style (names
    drawn as plain text, shortened)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    split = domain.train
    n = min(n, len(split))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.2 * 2 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        img, mask = split.images[i], split.masks[i]
        shown = np.clip(img, np.percentile(img, 0.5), np.percentile(img, 99.5))
        shown = (shown - shown.min()) / (np.ptp(shown) + 1e-8)
        rgb = np.repeat(shown[..., None], 3, axis=-1)
        outlined = rgb.copy()
        outlined[find_boundaries(mask, mode="inner")] = (1.0, 0.25, 0.1)
        r, c = divmod(i, cols)
        axes[r, 2 * c].imshow(rgb)
        axes[r, 2 * c + 1].imshow(outlined)
        style = split.styles[i] or split.names[i]
        axes[r, 2 * c].set_title(figure_text(style), fontsize=8)
        axes[r, 2 * c + 1].set_title(f"{int(mask.max())} cells", fontsize=8)
    fig.suptitle(f"domain '{figure_text(domain.name)}': {len(split)} train / {len(domain.test)} test images", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, dpi=90)
