"""What a study's images become once rescaled, measured before any run: patch counts and rescale checks.

Every image is rescaled so that its objects' median diameter is ``data.diameter`` before its
patches are cut (`dqcl.data.scale`), so how many patches a domain gives, and whether anything of
its images is left, depends on each image's factor, which depends on its mask. `domain_sizes`
measures it as the run will: the same `rescale_factor`, `rescale_problem`, `rescaled_shape` and
`count_patches` the run's `prepare` uses, on the domains themselves (folder domains as preflight
reads them; built-in ones built for one data seed, 0.1 to 0.5 s for a default 16 + 8 image domain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..config.schema import RunConfig, Spec
from ..data.domains import Domain, Split
from ..data.prepared import PreparedDomains
from ..data.scale import MIN_DIAMETER, diameter_range, rescale_factor, rescale_problem, rescaled_shape
from ..errors import DataError, SpecError

__all__ = ["DomainSize", "diameter_limits", "read_domains", "domain_sizes", "check_diameter_floor", "growth_note", "CELLPOSE_MIN_MEASURED"]

# Cellpose clips a measured diameter under 5 px to 5 when it trains (cellpose.train: diam_train[diam_train < 5] = 5):
# below it, a mask's objects are rarely the cells' size, and rescaling from them blows images up
CELLPOSE_MIN_MEASURED = 5.0


@dataclass(frozen=True)
class DomainSize:
    """One domain of a study once rescaled, as its runs will cut it (one data seed's draw)."""

    name: str
    train: int  # patches of the train split
    test: int  # patches of the test split
    train_pixels: int  # pixels of the train split's rescaled images (all held while its patches are cut)
    test_pixels: int
    diameter: float  # median over images of the objects' median diameter the factors come from (stated or measured), px
    factors: tuple[float, float]  # smallest and largest rescale factor
    tiny: int = 0  # images grown from objects measured under CELLPOSE_MIN_MEASURED px
    tiny_diameter: float = 0.0  # the smallest such measured diameter

    @property
    def patches(self) -> int:
        return self.train + self.test


def read_domains(spec: Spec, runs: Sequence[RunConfig], cache: PreparedDomains, have: Mapping[str, Domain] = {}) -> dict[str, Domain]:
    """Every domain the runs use, read (a folder: every pair checked) or built (a built-in kind) through
    ``cache`` as the first run using it will have it, so that run finds it there; those in ``have`` are
    taken as they are. One data seed serves a domain (``data_seed = "per_seed"`` included): a folder's
    files are the same for every seed, which only decides how ``resplit = true`` or ``holdout`` divides the same pairs;
    a built-in domain of another seed draws other images of the same kinds and sizes."""
    read = dict(have)
    for cfg in runs:
        manifests = dict(cfg.data_manifests)
        for ds in cfg.domains:
            if ds.name in read:
                continue
            if ds.kind == "folder" and not Path(ds.params["path"]).is_dir():
                raise DataError(f"{ds.params['path']}: no such folder (domain '{ds.name}' of {spec.source})")
            read[ds.name] = cache.domain(ds.kind, ds.params, cfg.data_seed, manifests.get(ds.name, ""))
    return read


def _advice(spec: Spec, name: str, stated: bool) -> str:
    """What to change where a domain's images cannot be rescaled: the spec's diameter, or the domain's."""
    lo, hi = diameter_limits(spec)
    own = ""
    if spec.domains[name].kind == "folder":
        own = f", or {'check' if stated else 'state'} domains.{name}.diameter"
    return f"set data.diameter in [{lo:g}, {hi:g}] or 0 (as they are){own}"


def diameter_limits(spec: Spec) -> tuple[float, float]:
    """The ``data.diameter`` values ``spec`` can take besides 0 (`diameter_range` of its patch size and
    [eval] settings), rounded inwards to two decimals, so that advice quoting them is itself accepted."""
    lo, hi = diameter_range(spec.data.patch_size, spec.eval.min_size, spec.eval.max_size_fraction)
    return math.ceil(lo * 100) / 100, math.floor(hi * 100) / 100


def _split_size(spec: Spec, name: str, split: Split) -> tuple[int, int, list[float], list[float], list[float]]:
    """(patches, rescaled pixels, diameters, factors, measured diameters of grown images under Cellpose's floor)."""
    from ..data.patches import count_patches

    d = spec.data
    target = d.diameter
    patches, pixels, diameters, factors, tiny = 0, 0, [], [], []
    stated = split.diameters or (0.0,) * len(split)
    for img, mask, st, image in zip(split.images, split.masks, stated, split.names):
        diameter, factor = rescale_factor(mask, target, st) if target > 0 else (float(st), 1.0)
        problem = rescale_problem(img.shape, diameter, factor, target, bool(st)) if target > 0 else None
        if problem:
            raise DataError(f"{spec.source}: domain '{name}': image {image}: {problem}; {_advice(spec, name, bool(st))}")
        shape = rescaled_shape(img.shape, factor)
        if not d.pad and min(shape) < d.patch_size:
            how = (f"rescaled x{factor:.3g} (objects {'stated as' if st else 'measured at'} {diameter:.3g} px) to {target:g} px "
                   if factor != 1.0 else "")
            raise DataError(f"{spec.source}: domain '{name}': image {image} {how}is {shape[0]} x {shape[1]} px, smaller than "
                            f"the {d.patch_size} px patch; set data.pad = true" +
                            (f", or {_advice(spec, name, bool(st))}" if factor != 1.0 else ""))
        patches += count_patches(shape, d.patch_size, d.stride, d.pad)
        pixels += math.prod(shape)
        diameters.append(diameter)
        factors.append(factor)
        if factor > 1.0 and not st and 0 < diameter < CELLPOSE_MIN_MEASURED:
            tiny.append(diameter)
    return patches, pixels, diameters, factors, tiny


def domain_sizes(spec: Spec, domains: Mapping[str, Domain]) -> dict[str, DomainSize]:
    """Each domain's patches and rescaled pixels per split, as a run of ``spec`` cuts them. An image a
    run could not use stops it with one line naming the domain, the image, its objects' diameter, the
    factor and the size it would have: objects rescaled under one pixel or a side under one pixel (no
    signal left, only padding), more pixels than dqcl reads in one image, or (``data.pad = false``) an
    image smaller than one patch."""
    import numpy as np

    out = {}
    for name, dom in domains.items():
        train, test = _split_size(spec, name, dom.train), _split_size(spec, name, dom.test)
        diameters, factors, tiny = train[2] + test[2], train[3] + test[3], train[4] + test[4]
        out[name] = DomainSize(
            name, train[0], test[0], train[1], test[1], float(np.median(diameters)) if diameters else 0.0,
            (min(factors, default=1.0), max(factors, default=1.0)), len(tiny), min(tiny, default=0.0),
        )
    return out


def check_diameter_floor(spec: Spec) -> None:
    """Refuse (`SpecError`) a ``data.diameter`` too small for the run to find objects: a median object of
    that diameter covers fewer pixels than ``eval.min_size``, and mask reconstruction removes every mask
    smaller than that (as Cellpose does), so at least half the objects could never be found. (Objects
    under one pixel are `domain_sizes`' to refuse, naming a domain; ``data.diameter`` 0 rescales nothing.)"""
    t = spec.data.diameter
    lo, _ = diameter_range(spec.data.patch_size, spec.eval.min_size, spec.eval.max_size_fraction)
    if t <= 0 or t >= lo or t < MIN_DIAMETER:
        return
    raise SpecError(f"{spec.source}: data.diameter = {t:g}: a median object of that diameter covers about {math.pi * t * t / 4:.3g} "
                    f"px, fewer than eval.min_size = {spec.eval.min_size}, and mask reconstruction removes every smaller mask, so "
                    f"most objects could never be found; set data.diameter to at least {diameter_limits(spec)[0]:g} (Cellpose: 30) "
                    "or eval.min_size lower")


def growth_note(spec: Spec, sizes: Mapping[str, DomainSize]) -> str | None:
    """A line for domains whose images grow from objects measured under Cellpose's 5 px floor (a mask of
    points or specks rather than cells is the usual cause), or None."""
    grown = [s for s in sizes.values() if s.tiny]
    if not grown:
        return None
    parts = [f"'{s.name}': {s.tiny} image(s), objects measured down to {s.tiny_diameter:.3g} px, grown up to "
             f"x{s.factors[1]:.3g}, {s.patches:,} patches" for s in grown]
    return (f"{spec.source}: rescaling to data.diameter = {spec.data.diameter:g} px grows images from objects measured under "
            f"{CELLPOSE_MIN_MEASURED:g} px ({'; '.join(parts)}); Cellpose clips such diameters to {CELLPOSE_MIN_MEASURED:g} when "
            "it trains. If the masks' objects are not the cells' size, state the domain's diameter")
