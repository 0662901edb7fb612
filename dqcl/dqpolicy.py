"""DQ replay: an Avalanche storage policy that keeps a dataset-quantization coreset of each experience."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .dq import capped_bins, select
from .embed import embed
from .memory import FractionBuffer, Selector

__all__ = ["dataset_arrays", "dq_selector", "DQBuffer"]


def dataset_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, H, W) and instance labels (N, H, W) of an experience's dataset, in its order."""
    xs, labels = [], []
    for i in range(len(dataset)):
        x, y = dataset[i][:2]
        xs.append(x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x))
        labels.append((y[0].numpy() if isinstance(y, torch.Tensor) else np.asarray(y)[0]).astype(np.int32))
    return np.stack(xs), np.stack(labels)


def dq_selector(
    variant: str = "mmv", bins: int = 10, embedder: str = "style", seed: int = 0,
    cache_dir: Path | None = None, embedder_weights: str = "",
) -> Selector:
    """Embed an experience's patches, then pick a coreset of it with `dqcl.dq.select`.

    With ``embedder="style"`` the features are the style vectors of the network as it is
    after training on that experience (the strategy's model).
    """

    def pick(dataset, rate: float, strategy, exp_id: int) -> np.ndarray:
        images, labels = dataset_arrays(dataset)
        opts: dict = {}
        if embedder == "style":
            opts["model"] = strategy.model
        elif embedder == "mae" and embedder_weights:
            opts["weights"] = embedder_weights
        feats = embed(embedder, images, labels, cache_dir=cache_dir, **opts)
        return select(feats, rate, capped_bins(bins, len(feats), rate), variant, seed=seed + exp_id)

    return pick


class DQBuffer(FractionBuffer):
    """`FractionBuffer` whose selector is dataset quantization on the chosen embedding."""

    def __init__(self, rate: float, variant: str = "mmv", bins: int = 10, embedder: str = "style", seed: int = 0,
                 cache_dir: Path | None = None, embedder_weights: str = "") -> None:
        super().__init__(rate, dq_selector(variant, bins, embedder, seed, cache_dir, embedder_weights))
