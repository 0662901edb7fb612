"""How diverse a domain is in the embedding DQ selects in: how many kinds of patch it holds.

Every domain's patches are embedded together (the ``stats`` embedder: intensity histogram and
moments, texture, mask morphology), each feature standardised over all of them, and the union
is cut into ``k`` clusters (k-means, like DQ's bins); a domain's diversity is the effective
number of those clusters its patches occupy, exp(entropy of its cluster shares), from 1 (one
kind of patch) to ``k``. Every domain contributes the same number of patches, so the measure
does not grow with a domain's size. A mixture of modalities occupies the clusters of several
specialists; one modality occupies a few.
"""

from __future__ import annotations

import numpy as np

__all__ = ["domain_diversity"]


def _patches(kind: str, n_images: int, patch: int, diameter: float, seed: int, path: str = "") -> tuple[np.ndarray, np.ndarray]:
    from ..data.domains import DOMAINS
    from ..data.patches import extract_patches
    from ..data.scale import split_to_diameter

    factory = DOMAINS.get(kind).factory
    dom = factory(seed=seed, path=path) if kind == "folder" else factory(seed=seed, n_train=n_images, n_test=1)
    split, _ = split_to_diameter(dom.train, diameter)
    images, masks, _ = extract_patches(split, patch, patch, pad=True)
    return images, masks


def domain_diversity(kinds: list[str], n_images: int = 24, patch: int = 64, diameter: float = 16.0, seed: int = 0,
                     max_patches: int = 300, k: int = 10, path: str = "") -> dict[str, float]:
    """Effective number of the ``k`` joint clusters each domain's patches occupy (module docstring);
    every domain is represented by the same number of patches (its first ``max_patches`` or fewer,
    drawn with ``seed``). Kind ``folder`` is the domain folder ``path`` (its train split)."""
    from sklearn.cluster import KMeans

    from .embedders import embed

    rng = np.random.default_rng(seed)
    drawn = {kind: _patches(kind, n_images, patch, diameter, seed, path) for kind in kinds}
    n = min(max_patches, *(len(images) for images, _ in drawn.values()))
    feats = {}
    for kind, (images, masks) in drawn.items():
        keep = rng.permutation(len(images))[:n]
        feats[kind] = embed("stats", images[keep][:, None], masks[keep])
    everything = np.concatenate(list(feats.values()))
    z = (everything - everything.mean(axis=0)) / (everything.std(axis=0) + 1e-8)
    labels = KMeans(min(k, len(z)), n_init=4, random_state=seed).fit(z).labels_
    out = {}
    for i, kind in enumerate(feats):
        share = np.bincount(labels[i * n : (i + 1) * n], minlength=k) / n
        share = share[share > 0]
        out[kind] = float(np.exp(-(share * np.log(share)).sum()))
    return out
