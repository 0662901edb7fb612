"""The built-in domains, registered as domain kinds.

Generator 2 (`dqcl.data.microscopy`, the default): ``cyto`` is a generalist in the manner of
Cellpose's collection, a long-tailed mixture over modalities (fluorescent cytoplasm the largest
share, then fluorescent nuclei, membrane stains, brightfield and phase contrast, H&E histology
and objects that are not cells; 29 % of its images show objects darker than their
background); ``cytoplasm``, ``nuclei``, ``histo`` and ``brightfield`` are specialists, one
modality each, in five sub-styles of long-tailed frequency.

Generator 1 (`dqcl.data.synth`, dqcl 0.3) made the data of the runs stored before generator 2:
a stored run whose data manifest reads ``generated:<kind>`` reruns on it (see
`dqcl.core.provenance.domain_manifest`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..core.provenance import BUILTIN_GENERATOR
from .domains import Domain, Split, register_domain
from .imageio import normalize
from . import microscopy
from .microscopy import Look
from .synth import CellLook, Style, render, sample_styles

__all__ = ["BUILTIN_STYLES", "BUILTIN_LOOKS", "GENERATOR", "REFERENCE_DIAMETER"]

GENERATOR = BUILTIN_GENERATOR  # the built-in generator new runs use (its version is in every data manifest)
REFERENCE_DIAMETER = 30.0  # a built-in image's side is `size` once its objects are rescaled to this diameter

# Generator 2: (name, share of images, modality, and how it is imaged); common look first.
_FLUO = dict(photons=(60.0, 600.0))
_TRANSMITTED = dict(photons=(1500.0, 8000.0), read_noise=(2.0, 6.0), illumination=0.1)
BUILTIN_LOOKS: dict[str, tuple[Look, ...]] = {
    "cyto": (  # the generalist; dark objects: brightfield, phase, histology, particles = 29 %
        Look("fluo cytoplasm", 0.19, "fluo_cyto", diameter=(30, 55), density=(0.3, 0.5), **_FLUO),
        Look("fluo nuclei", 0.14, "fluo_nuclei", diameter=(14, 30), density=(0.15, 0.35), **_FLUO),
        Look("confluent cytoplasm", 0.12, "fluo_cyto", diameter=(25, 45), density=(0.65, 0.9), cluster=0.3, **_FLUO),
        Look("membrane", 0.10, "membrane", diameter=(25, 45), density=(0.6, 0.9), **_FLUO),
        Look("histology", 0.10, "histo", diameter=(10, 20), density=(0.2, 0.4), contrast=(0.9, 1.6), cluster=0.3, **_TRANSMITTED),
        Look("elongated cytoplasm", 0.08, "fluo_cyto", diameter=(30, 50), elongation=(2.0, 4.0), roughness=0.12, **_FLUO),
        Look("brightfield", 0.09, "brightfield", diameter=(20, 40), density=(0.2, 0.4), **_TRANSMITTED),
        Look("phase contrast", 0.06, "phase", diameter=(20, 40), density=(0.2, 0.45), **_TRANSMITTED),
        Look("beads", 0.06, "beads", diameter=(10, 25), density=(0.1, 0.3), elongation=(1.0, 1.1), roughness=0.01,
             brightness_cv=0.15, **_FLUO),
        Look("dark particles", 0.04, "particles", diameter=(8, 20), density=(0.1, 0.25), roughness=0.2, contrast=(0.4, 0.8),
             **_TRANSMITTED),
        Look("crystals", 0.02, "crystals", diameter=(15, 35), elongation=(1.2, 3.0), roughness=0.25, brightness_cv=0.3, **_FLUO),
    ),
    "cytoplasm": (  # fluorescent cytoplasm only (dqcl 0.3's `cyto`)
        Look("spread", 0.50, "fluo_cyto", diameter=(30, 55), density=(0.3, 0.5), **_FLUO),
        Look("confluent", 0.20, "fluo_cyto", diameter=(25, 45), density=(0.65, 0.9), cluster=0.3, **_FLUO),
        Look("elongated", 0.13, "fluo_cyto", diameter=(30, 50), elongation=(2.0, 4.0), roughness=0.12, **_FLUO),
        Look("large-dim", 0.10, "fluo_cyto", diameter=(50, 80), density=(0.3, 0.5), photons=(15.0, 60.0)),
        Look("irregular", 0.07, "fluo_cyto", diameter=(30, 55), roughness=0.3, illumination=0.4, **_FLUO),
    ),
    "nuclei": (  # fluorescent nuclei only (DSB-like)
        Look("round", 0.50, "fluo_nuclei", diameter=(14, 30), density=(0.15, 0.3), **_FLUO),
        Look("touching", 0.20, "fluo_nuclei", diameter=(14, 26), density=(0.35, 0.55), cluster=0.7, **_FLUO),
        Look("large-textured", 0.13, "fluo_nuclei", diameter=(28, 45), density=(0.2, 0.35), texture=0.5, roughness=0.1, **_FLUO),
        Look("dim-noisy", 0.10, "fluo_nuclei", diameter=(14, 30), density=(0.15, 0.3), photons=(8.0, 30.0)),
        Look("mitotic", 0.07, "fluo_nuclei", diameter=(10, 18), elongation=(1.3, 2.5), density=(0.08, 0.2), brightness_cv=0.7,
             debris=30, **_FLUO),
    ),
    "histo": (  # H&E histology nuclei, in gray
        Look("dense-small", 0.55, "histo", diameter=(10, 16), density=(0.3, 0.45), contrast=(0.9, 1.6), cluster=0.3, **_TRANSMITTED),
        Look("spindle", 0.16, "histo", diameter=(10, 16), elongation=(2.5, 4.0), density=(0.15, 0.25), contrast=(0.9, 1.6),
             **_TRANSMITTED),
        Look("vesicular", 0.13, "histo", diameter=(16, 24), density=(0.2, 0.35), roughness=0.12, texture=0.5,
             contrast=(0.7, 1.2), **_TRANSMITTED),
        Look("pale", 0.09, "histo", diameter=(10, 16), density=(0.25, 0.4), contrast=(0.35, 0.6), **_TRANSMITTED),
        Look("lymphocyte", 0.07, "histo", diameter=(7, 10), density=(0.3, 0.45), cluster=0.8, roughness=0.03,
             contrast=(1.4, 2.0), **_TRANSMITTED),
    ),
    "brightfield": (  # unstained cells in brightfield only
        Look("round", 0.50, "brightfield", diameter=(20, 40), density=(0.2, 0.4), **_TRANSMITTED),
        Look("dense", 0.20, "brightfield", diameter=(18, 30), density=(0.45, 0.65), cluster=0.6, **_TRANSMITTED),
        Look("elongated", 0.13, "brightfield", diameter=(25, 40), elongation=(2.5, 3.5), roughness=0.15, **_TRANSMITTED),
        Look("low-contrast", 0.10, "brightfield", diameter=(20, 40), density=(0.2, 0.4), contrast=(0.12, 0.2), **_TRANSMITTED),
        Look("debris", 0.07, "brightfield", diameter=(20, 40), density=(0.2, 0.3), debris=60, **_TRANSMITTED),
    ),
}

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
    "cyto": "generalist (Cellpose-like): fluorescent cytoplasm, nuclei and membranes, brightfield and phase, H&E, beads and particles",
    "cytoplasm": "specialist: fluorescent cytoplasm, spread, confluent, elongated, dim and irregular cells on dark",
    "histo": "specialist: H&E nuclei in gray, dense small dark nuclei on light fibrous tissue",
    "nuclei": "specialist: fluorescent nuclei (DSB-like), bright nuclei on dark, touching clumps, dim and mitotic ones",
    "brightfield": "specialist: unstained cells in brightfield, faint bodies with dark edges on gray, uneven light and debris",
}


def _split_v1(styles: tuple[Style, ...], n: int, size: int, rng: np.random.Generator, prefix: str) -> Split:
    which = sample_styles(styles, n, rng)
    images, masks = [], []
    for k in which:
        img, lab = render(styles[k], (size, size), rng)
        images.append(normalize(img))  # per image, as Cellpose and folder domains do
        masks.append(lab)
    names = tuple(f"{prefix}{i:04d}" for i in range(n))
    return Split(tuple(images), tuple(masks), names, tuple(styles[k].name for k in which))


def _split_v2(looks: tuple[Look, ...], n: int, size: int, rng: np.random.Generator, prefix: str) -> Split:
    which = sample_styles(looks, n, rng)
    images, masks = [], []
    for k in which:
        look = looks[k]
        # the side grows with the objects, so every image holds about as many objects once rescaled
        d = rng.uniform(*look.diameter)
        side = max(16, int(round(size * d / REFERENCE_DIAMETER)))
        img, lab, _ = microscopy.render(Look(**{**look.__dict__, "diameter": (d, d)}), (side, side), rng)
        images.append(normalize(img))
        masks.append(lab)
    names = tuple(f"{prefix}{i:04d}" for i in range(n))
    return Split(tuple(images), tuple(masks), names, tuple(looks[k].name for k in which))


def _make_builtin(kind: str) -> Callable[..., Domain]:
    looks, styles = BUILTIN_LOOKS[kind], BUILTIN_STYLES.get(kind)

    def factory(*, seed: int = 0, n_train: int = 16, n_test: int = 8, size: int = 192, generator: int = GENERATOR) -> Domain:
        """Built-in domain: n_train/n_test images fixed by seed, each ``size`` px square once its objects
        are rescaled to 30 px (generator 2; generator 1: ``size`` px as drawn)."""
        if generator == 1 and styles is None:
            from ..errors import DataError

            raise DataError(f"built-in domain '{kind}' has no generator 1 (it came with generator 2)")
        # train and test come from independent streams so n_train does not change the test set
        ss = np.random.SeedSequence([seed, sum(map(ord, kind))] + ([] if generator == 1 else [generator]))
        train_rng, test_rng = (np.random.default_rng(s) for s in ss.spawn(2))
        make = (lambda n, rng, p: _split_v1(styles, n, size, rng, p)) if generator == 1 else (lambda n, rng, p: _split_v2(looks, n, size, rng, p))
        return Domain(kind, make(n_train, train_rng, f"{kind}-train-"), make(n_test, test_rng, f"{kind}-test-"))

    factory.__name__ = kind
    # the smallest and largest sensible values of each parameter (a spec is checked against them)
    factory.bounds = {"n_train": (1, 100_000), "n_test": (1, 100_000), "size": (16, 8192), "generator": (1, GENERATOR)}
    return factory


for _kind in BUILTIN_LOOKS:
    register_domain(_kind, description=_DESCRIPTIONS[_kind], reference="built-in (dqcl.data.microscopy)")(_make_builtin(_kind))
