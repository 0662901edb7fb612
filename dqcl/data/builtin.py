"""The built-in procedural domains (cyto, histo, nuclei, brightfield), registered as domain kinds."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .domains import Domain, Split, register_domain
from .imageio import normalize
from .synth import CellLook, Style, render, sample_styles

__all__ = ["BUILTIN_STYLES"]

# Each tuple: the common style first, rarer ones after (weights sum to 1).
BUILTIN_STYLES: dict[str, tuple[Style, ...]] = {
    "cyto": (
        Style("round", 0.50, CellLook(radius=(8, 11), density=(0.35, 0.5), intensity=(0.6, 1.0), hole=0.35)),
        Style("dense-small", 0.20, CellLook(radius=(4.5, 6.5), density=(0.5, 0.65), cluster=0.5, intensity=(0.5, 0.9), hole=0.2)),
        Style("elongated", 0.13, CellLook(radius=(9, 13), elongation=(2.5, 4.0), roughness=0.12, density=(0.25, 0.4), intensity=(0.5, 0.9), hole=0.3)),
        Style("large-dim", 0.10, CellLook(radius=(14, 19), density=(0.3, 0.45), intensity=(0.15, 0.3), hole=0.4, texture=0.2), noise=(0.03, 0.05)),
        Style("irregular", 0.07, CellLook(radius=(9, 14), roughness=0.35, density=(0.3, 0.45), intensity=(0.6, 1.0), texture=0.25), illumination=0.5),
    ),
    "histo": (
        Style("dense-small", 0.55, CellLook(radius=(4.5, 6.0), density=(0.35, 0.5), cluster=0.3, intensity=(0.45, 0.6), profile="nucleus"), polarity=-1, background=(0.75, 0.85), tissue=0.05),
        Style("spindle", 0.16, CellLook(radius=(5, 7), elongation=(2.5, 4.0), density=(0.15, 0.25), intensity=(0.4, 0.55), profile="nucleus"), polarity=-1, background=(0.7, 0.8), tissue=0.09),
        Style("vesicular", 0.13, CellLook(radius=(6.5, 8.5), roughness=0.12, density=(0.25, 0.35), intensity=(0.4, 0.55), profile="vesicular"), polarity=-1, background=(0.72, 0.82), tissue=0.05),
        Style("pale", 0.09, CellLook(radius=(4.5, 6.0), density=(0.3, 0.45), intensity=(0.15, 0.25), profile="nucleus"), polarity=-1, background=(0.65, 0.75), tissue=0.06, noise=(0.03, 0.04)),
        Style("lymphocyte", 0.07, CellLook(radius=(3.5, 4.2), density=(0.35, 0.5), cluster=0.8, intensity=(0.6, 0.75), profile="nucleus", roughness=0.03), polarity=-1, background=(0.75, 0.85), tissue=0.04),
    ),
    "nuclei": (
        Style("round", 0.50, CellLook(radius=(5, 7), density=(0.2, 0.3), intensity=(0.6, 1.0), profile="nucleus"), background=(0.02, 0.06)),
        Style("touching", 0.20, CellLook(radius=(5, 7), density=(0.45, 0.6), cluster=0.7, intensity=(0.6, 1.0), profile="nucleus"), background=(0.02, 0.06)),
        Style("large-textured", 0.13, CellLook(radius=(9, 12), roughness=0.1, density=(0.25, 0.35), intensity=(0.5, 0.8), profile="vesicular", texture=0.3), background=(0.02, 0.06)),
        Style("dim-noisy", 0.10, CellLook(radius=(5, 7), density=(0.2, 0.3), intensity=(0.12, 0.22), profile="nucleus"), background=(0.03, 0.06), noise=(0.04, 0.06)),
        Style("mitotic", 0.07, CellLook(radius=(3, 4), elongation=(1.5, 2.5), density=(0.1, 0.2), intensity=(0.9, 1.2), profile="nucleus"), background=(0.02, 0.05), debris=30),
    ),
    "brightfield": (
        Style("round", 0.50, CellLook(radius=(8, 11), density=(0.25, 0.4), intensity=(0.25, 0.4), profile="halo"), polarity=-1, background=(0.45, 0.55)),
        Style("dense", 0.20, CellLook(radius=(6, 8), density=(0.45, 0.6), cluster=0.6, intensity=(0.25, 0.4), profile="halo"), polarity=-1, background=(0.45, 0.55)),
        Style("elongated", 0.13, CellLook(radius=(9, 12), elongation=(2.5, 3.5), roughness=0.15, density=(0.2, 0.3), intensity=(0.2, 0.35), profile="halo"), polarity=-1, background=(0.45, 0.55)),
        Style("low-contrast", 0.10, CellLook(radius=(8, 11), density=(0.25, 0.4), intensity=(0.08, 0.14), profile="halo"), polarity=-1, background=(0.45, 0.55), illumination=0.3),
        Style("debris", 0.07, CellLook(radius=(8, 11), density=(0.2, 0.3), intensity=(0.25, 0.4), profile="halo"), polarity=-1, background=(0.45, 0.55), debris=60),
    ),
}

_DESCRIPTIONS = {
    "cyto": "generalist cytoplasm fluorescence: bright cells of varied size, shape, density and brightness on dark",
    "histo": "specialist H&E-like nuclei in gray: dense small dark nuclei on light textured tissue",
    "nuclei": "fluorescent nuclei: small bright nuclei on dark, touching clumps and dim fields among them",
    "brightfield": "brightfield/phase: dark cells with bright halos on gray, uneven light and debris",
}


def _builtin_split(styles: tuple[Style, ...], n: int, size: int, rng: np.random.Generator, prefix: str) -> Split:
    which = sample_styles(styles, n, rng)
    images, masks = [], []
    for k in which:
        img, lab = render(styles[k], (size, size), rng)
        images.append(normalize(img))  # per image, as Cellpose and folder domains do
        masks.append(lab)
    names = tuple(f"{prefix}{i:04d}" for i in range(n))
    return Split(tuple(images), tuple(masks), names, tuple(styles[k].name for k in which))


def _make_builtin(kind: str) -> Callable[..., Domain]:
    styles = BUILTIN_STYLES[kind]

    def factory(*, seed: int = 0, n_train: int = 16, n_test: int = 8, size: int = 192) -> Domain:
        """Procedural domain: n_train/n_test images of size x size pixels, fixed by seed."""
        # train and test come from independent streams so n_train does not change the test set
        ss = np.random.SeedSequence([seed, sum(map(ord, kind))])
        train_rng, test_rng = (np.random.default_rng(s) for s in ss.spawn(2))
        return Domain(
            kind,
            _builtin_split(styles, n_train, size, train_rng, f"{kind}-train-"),
            _builtin_split(styles, n_test, size, test_rng, f"{kind}-test-"),
        )

    factory.__name__ = kind
    # the smallest and largest sensible values of each parameter (a spec is checked against them)
    factory.bounds = {"n_train": (1, 100_000), "n_test": (1, 100_000), "size": (16, 8192)}
    return factory


for _kind in BUILTIN_STYLES:
    register_domain(_kind, description=_DESCRIPTIONS[_kind], reference="built-in (dqcl.data.synth)")(_make_builtin(_kind))
