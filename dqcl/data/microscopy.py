"""An image-formation model for the built-in domains (generator 2): objects placed the way cells
lie, stained, seen through optics and counted by a camera.

One image is made in four steps, every number drawn from one `numpy.random.Generator` (a seed
fixes every pixel):

1. **Objects**: compact ones (nuclei, beads, round cells) placed one after another, a later one
   filling only free pixels, so touching objects share a boundary; or confluent cytoplasm
   (a multiplicatively weighted Voronoi partition with rough boundaries: neighbours touch,
   gaps stay where cells are sparse). Object diameters at the microscope's own scale,
   drawn per image around a median (dqcl rescales images to a common diameter later, see
   `dqcl.data.scale`).
2. **Stain**: per modality: fluorescent cytoplasm (a dark nucleus inside, fibrous texture),
   fluorescent nuclei (chromatin speckle, nucleoli, bright mitotic ones), membrane rings,
   unstained cells in transmitted light (brightfield: faint absorption and an edge; phase
   contrast: a dark body and a bright halo), H&E histology (hematoxylin and eosin
   concentrations mixed by Beer-Lambert into RGB, then gray as the mean of the channels,
   Cellpose's ``chan=0``), and objects that are not cells (fluorescent beads, dark
   particles, bright crystals).
3. **Optics**: a Gaussian point-spread blur, a few objects out of the focal plane (a wider
   blur, dimmer), uneven illumination (a smooth field) and vignetting.
4. **Camera**: photon counts drawn from a Poisson law, Gaussian read noise, gain and offset,
   quantised to 16 bits.

The cost of one image is stated per domain in the README (measured by
`benchmarks/perf/test_generation.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["Look", "render", "MODALITIES", "DARK_MODALITIES"]

# modality -> whether its objects are darker than their background
MODALITIES: dict[str, bool] = {
    "fluo_cyto": False, "fluo_nuclei": False, "membrane": False, "beads": False, "crystals": False,
    "brightfield": True, "phase": True, "histo": True, "particles": True,
}
DARK_MODALITIES = frozenset(m for m, dark in MODALITIES.items() if dark)


@dataclass(frozen=True)
class Look:
    """One sub-style of a domain: a kind of object in one modality, and how it is imaged.

    Ranges are drawn per image (per object where it says so)."""

    name: str
    weight: float  # share of the domain's images
    modality: str  # a key of MODALITIES
    diameter: tuple[float, float] = (18.0, 30.0)  # median object diameter at the microscope's scale, px
    density: tuple[float, float] = (0.2, 0.35)  # share of the image covered by objects
    elongation: tuple[float, float] = (1.0, 1.6)  # long axis / short axis, per object
    roughness: float = 0.06  # amplitude of the boundary's low harmonics
    cluster: float = 0.0  # 0: centres spread evenly; 1: all centres in a few clumps
    size_cv: float = 0.18  # spread of object diameters around the image's median (log scale)
    brightness_cv: float = 0.4  # spread of per-object stain (log scale)
    texture: float = 0.25  # structure inside objects, fraction of their signal
    defocus: float = 0.08  # share of objects out of the focal plane
    blur: tuple[float, float] = (0.7, 1.4)  # point-spread sigma, px
    illumination: float = 0.15  # amplitude of the smooth illumination field
    vignetting: float = 0.15  # relative fall-off at the corners
    background: tuple[float, float] = (0.03, 0.12)  # fluorescence: background / mean object signal
    photons: tuple[float, float] = (60.0, 600.0)  # expected photons at the mean object's brightness (transmitted: at the background)
    read_noise: tuple[float, float] = (1.0, 4.0)  # electrons
    debris: int = 0  # unlabelled specks per image
    contrast: tuple[float, float] = (0.3, 0.6)  # transmitted light: how strongly objects absorb (or phase-shift)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"unknown modality {self.modality!r}")

    @property
    def dark(self) -> bool:
        return MODALITIES[self.modality]


# ---- 1. objects --------------------------------------------------------------------------------


def _smooth(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise of unit standard deviation. A wide field (sigma over 4 px) is
    filtered on a coarse grid and interpolated up: the same look at a fraction of the cost."""
    if sigma <= 4:
        field = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    else:
        step = sigma / 2  # 2 coarse cells per sigma
        coarse = tuple(int(np.ceil(n / step)) + 2 for n in shape)
        field = ndi.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), 2.0, mode="wrap")
        field = ndi.zoom(field, step, order=1)[: shape[0], : shape[1]]
    return field / (field.std() + 1e-8)


def _centres(n: int, shape: tuple[int, int], cluster: float, spread: float, rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    pts = rng.uniform((0, 0), (h, w), size=(n, 2))
    k = int(round(cluster * n))
    if k:
        heads = rng.uniform((0, 0), (h, w), size=(max(1, k // 8), 2))
        pts[:k] = heads[rng.integers(0, len(heads), k)] + rng.normal(0, spread, (k, 2))
    return np.clip(pts, 0, (h - 1, w - 1))


def _count(shape: tuple[int, int], look: Look, d: float, rng: np.random.Generator) -> int:
    area = np.pi * (d / 2) ** 2
    return max(1, int(rng.uniform(*look.density) * shape[0] * shape[1] / area))


def _compact(shape: tuple[int, int], look: Look, d: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels and per-pixel normalised radius (0 centre, 1 edge) of objects placed one by one."""
    h, w = shape
    labels = np.zeros(shape, np.int32)
    rho = np.ones(shape, np.float32)
    n = _count(shape, look, d, rng)
    label = 1
    for cy, cx in _centres(n, shape, look.cluster, 1.5 * d, rng):
        r = 0.5 * d * float(np.exp(rng.normal(0, look.size_cv)))
        e = rng.uniform(*look.elongation)
        ry, rx = r / np.sqrt(e), r * np.sqrt(e)
        theta = rng.uniform(0, np.pi)
        reach = int(np.ceil(max(ry, rx) * (1 + 3 * look.roughness))) + 1
        y0, y1, x0, x1 = max(0, int(cy) - reach), min(h, int(cy) + reach + 1), max(0, int(cx) - reach), min(w, int(cx) + reach + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        c, s = np.cos(theta), np.sin(theta)
        u, v = c * (xx - cx) + s * (yy - cy), -s * (xx - cx) + c * (yy - cy)
        phi = np.arctan2(v, u)
        edge = np.ones_like(phi)
        for k in (2, 3, 4, 5):
            edge += look.roughness * rng.normal() / k**0.5 * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        radial = np.sqrt((u / rx) ** 2 + (v / ry) ** 2) / np.maximum(edge, 0.3)
        inside = _largest_piece((radial < 1.0) & (labels[y0:y1, x0:x1] == 0))  # a later object fills only free pixels
        if inside.sum() < 15:  # Cellpose drops masks under 15 pixels
            continue
        labels[y0:y1, x0:x1][inside] = label
        rho[y0:y1, x0:x1][inside] = radial[inside]
        label += 1
    return labels, rho


def _confluent(shape: tuple[int, int], look: Look, d: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cytoplasm that fills space: each pixel belongs to the seed minimising (distance / radius),
    if that ratio (roughened by a smooth field) is under 1; neighbours meet on shared boundaries."""
    h, w = shape
    n = _count(shape, look, d, rng)
    best = np.full(shape, np.inf, np.float32)
    owner = np.zeros(shape, np.int32)
    rough = 1 + 2 * look.roughness * _smooth(shape, d / 4, rng)
    for i, (cy, cx) in enumerate(_centres(n, shape, look.cluster, 1.5 * d, rng), start=1):
        r = 0.5 * d * float(np.exp(rng.normal(0, look.size_cv)))
        e = rng.uniform(*look.elongation)
        ry, rx = r / np.sqrt(e), r * np.sqrt(e)
        theta = rng.uniform(0, np.pi)
        reach = int(np.ceil(max(ry, rx) * 1.6)) + 1
        y0, y1, x0, x1 = max(0, int(cy) - reach), min(h, int(cy) + reach + 1), max(0, int(cx) - reach), min(w, int(cx) + reach + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        c, s = np.cos(theta), np.sin(theta)
        u, v = c * (xx - cx) + s * (yy - cy), -s * (xx - cx) + c * (yy - cy)
        ratio = np.sqrt((u / rx) ** 2 + (v / ry) ** 2) / rough[y0:y1, x0:x1]
        closer = ratio < best[y0:y1, x0:x1]
        best[y0:y1, x0:x1][closer] = ratio[closer]
        owner[y0:y1, x0:x1][closer] = i
    labels = np.where(best < 1.0, owner, 0)
    labels = _keep_main_pieces(labels)
    return labels, np.clip(best, 0, 1).astype(np.float32)


def _largest_piece(mask: np.ndarray) -> np.ndarray:
    """The largest connected piece of a boolean mask (the mask itself when it is one piece or empty)."""
    pieces, count = ndi.label(mask)
    if count <= 1:
        return mask
    return pieces == 1 + int(np.argmax(ndi.sum(mask, pieces, index=np.arange(1, count + 1))))


def _keep_main_pieces(labels: np.ndarray) -> np.ndarray:
    """Each label's largest connected piece, labels renumbered 1..n, pieces under 15 px dropped."""
    out = np.zeros_like(labels)
    slices = ndi.find_objects(labels)
    k = 1
    for i, sl in enumerate(slices, start=1):
        if sl is None:
            continue
        part = _largest_piece(labels[sl] == i)
        if part.sum() < 15:
            continue
        out[sl][part] = k
        k += 1
    return out


# ---- 2. stain ----------------------------------------------------------------------------------


def _per_object(labels: np.ndarray, cv: float, rng: np.random.Generator) -> np.ndarray:
    """A value per pixel: each object's own lognormal stain amount (mean 1), 0 on background."""
    n = int(labels.max())
    amount = np.concatenate([[0.0], np.exp(rng.normal(-cv**2 / 2, cv, n))]).astype(np.float32)
    return amount[labels]


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of an object next to another label (or background)."""
    pad = np.pad(labels, 1, mode="edge")
    edge = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        edge |= pad[1 + dy : 1 + dy + labels.shape[0], 1 + dx : 1 + dx + labels.shape[1]] != labels
    return edge & (labels > 0)


def _speckle(shape: tuple[int, int], d: float, rng: np.random.Generator) -> np.ndarray:
    """Texture at two scales (chromatin grains, organelles), mean 0."""
    return 0.6 * _smooth(shape, max(0.8, d / 14), rng) + 0.4 * _smooth(shape, max(1.5, d / 5), rng)


def _stain(look: Look, labels: np.ndarray, rho: np.ndarray, d: float, rng: np.random.Generator) -> np.ndarray:
    """Stain per pixel (fluorophore, or absorbance/phase for transmitted light), about 1 inside a typical object."""
    inside = labels > 0
    amount = _per_object(labels, look.brightness_cv, rng)
    tex = 1 + look.texture * _speckle(labels.shape, d, rng)
    r = np.clip(rho, 0, 1)
    m = look.modality
    if m == "fluo_cyto":
        nucleus = np.exp(-((r / rng.uniform(0.3, 0.45)) ** 2))  # the nucleus excludes the cytoplasm stain
        profile = (0.6 + 0.4 * (1 - r**1.5)) * (1 - rng.uniform(0.3, 0.7) * nucleus)
    elif m == "fluo_nuclei":
        profile = 0.85 + 0.15 * (1 - r**2)
        nucleoli = np.clip(_smooth(labels.shape, max(1.0, d / 10), rng) - 1.8, 0, None)
        tex = tex - 0.4 * nucleoli
        mitotic = rng.random(int(labels.max()) + 1) < 0.04  # a few condensed, very bright ones
        amount = amount * np.where(mitotic[labels], 3.0, 1.0)
    elif m == "membrane":
        ring = ndi.binary_dilation(_boundaries(labels), iterations=max(1, int(round(d / 20))))
        profile = np.where(ring, 1.0, rng.uniform(0.08, 0.25))
    elif m in ("beads", "crystals"):
        profile = np.ones_like(r) if m == "crystals" else 1.0 - 0.2 * r**4
        tex = 1 + 0.05 * _smooth(labels.shape, 1.0, rng)
    elif m == "histo":  # hematoxylin in nuclei: darker rim and chromatin clumps
        profile = 0.75 + 0.25 * r**2
    elif m in ("brightfield", "phase", "particles"):
        profile = 0.7 + 0.3 * (1 - r**2)
    else:  # pragma: no cover - Look checks the modality
        raise ValueError(m)
    return np.where(inside, amount * profile * np.clip(tex, 0.05, None), 0.0).astype(np.float32)


def _he_gray(labels: np.ndarray, nuclei: np.ndarray, d: float, rng: np.random.Generator) -> np.ndarray:
    """Transmitted intensity (0..1) of an H&E section, as gray: stroma and cytoplasm take eosin
    (fibrous, uneven), nuclei hematoxylin; each channel is I0 * exp(-(cH OD_H + cE OD_E)) and the
    gray value their mean (Cellpose's chan=0 for RGB)."""
    od_h = np.array([0.65, 0.70, 0.29], np.float32)  # Ruifrok & Johnston's stain vectors
    od_e = np.array([0.07, 0.99, 0.11], np.float32)
    shape = labels.shape
    tissue = np.clip(0.6 + 0.5 * _smooth(shape, 3 * d, rng), 0, 1)  # tissue present, holes of white
    fibres = np.clip(0.5 + 0.35 * _smooth(shape, max(1.0, d / 8), rng) + 0.25 * _smooth(shape, d / 2, rng), 0, None)
    c_e = rng.uniform(0.25, 0.7) * tissue * fibres
    c_h = rng.uniform(0.9, 1.6) * nuclei + 0.05 * tissue
    out = np.zeros(shape, np.float32)
    for k in range(3):
        out += np.exp(-(c_h * od_h[k] + c_e * od_e[k])) / 3
    return out


# ---- 3. optics and 4. camera -------------------------------------------------------------------


def _field(shape: tuple[int, int], look: Look, rng: np.random.Generator) -> np.ndarray:
    """Illumination: a smooth uneven field times a radial vignette (1 at the optical centre)."""
    h, w = shape
    uneven = 1 + look.illumination * _smooth(shape, max(h, w) / 3, rng)
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    yy, xx = np.ogrid[:h, :w]
    r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / (0.5 * max(h, w)) ** 2
    return np.clip(uneven * (1 - look.vignetting * r2 / 2), 0.2, None).astype(np.float32)


def _optics(signal: np.ndarray, labels: np.ndarray, look: Look, sigma: float, rng: np.random.Generator, dim: float = 0.6) -> np.ndarray:
    """The point-spread blur, with a few objects out of the focal plane: around them the image is
    blurred wider (``dim``: the share of their light still collected; 1 for transmitted light)."""
    n = int(labels.max())
    far = rng.random(n + 1) < look.defocus
    far[0] = False
    sharp = ndi.gaussian_filter(signal, sigma)
    if not far.any():
        return sharp
    wide = sigma * rng.uniform(2.5, 4.0)
    weight = np.clip(ndi.gaussian_filter(far[labels].astype(np.float32), wide) * 1.5, 0, 1)
    return (1 - weight) * sharp + weight * dim * ndi.gaussian_filter(signal, wide)


def _camera(expected: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon counts, Gaussian read noise (electrons), then gain and offset to 16-bit counts."""
    electrons = rng.poisson(np.clip(expected, 0, None)).astype(np.float32)
    electrons += rng.normal(0, rng.uniform(*look.read_noise), expected.shape).astype(np.float32)
    gain, offset = rng.uniform(0.5, 2.0), rng.uniform(90, 110)
    return np.clip(np.round(offset + gain * electrons), 0, 65535).astype(np.float32)


def _debris(shape: tuple[int, int], count: int, rng: np.random.Generator) -> np.ndarray:
    specks = np.zeros(shape, np.float32)
    ys, xs = rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)
    specks[ys, xs] = rng.uniform(0.5, 1.0, count)
    return ndi.gaussian_filter(specks, 1.2) * 12


def render(look: Look, shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """One image (camera counts, float32), its instance mask (int32, 0 = background) and the median
    object diameter it was drawn at (px)."""
    d = rng.uniform(*look.diameter)
    confluent = look.modality in ("fluo_cyto", "membrane")
    labels, rho = (_confluent if confluent else _compact)(shape, look, d, rng)
    stain = _stain(look, labels, rho, d, rng)
    sigma = rng.uniform(*look.blur)
    field = _field(shape, look, rng)
    photons = rng.uniform(*look.photons)
    m = look.modality
    if not look.dark:  # fluorescence: emitted light on a dim background with its own texture
        bg = rng.uniform(*look.background) * (1 + 0.3 * np.clip(_smooth(shape, d, rng), -2, 2))
        light = _optics(stain, labels, look, sigma, rng) + bg
        if look.debris:
            light = light + 0.5 * _debris(shape, look.debris, rng) * (labels == 0)
        expected = photons * field * light
    else:  # transmitted light: a bright background that the objects dim (or phase-shift)
        contrast = rng.uniform(*look.contrast)
        if m == "histo":
            transmitted = _he_gray(labels, ndi.gaussian_filter(stain, 0.5), d, rng)
        elif m == "phase":  # dark body, bright halo just outside
            halo = ndi.gaussian_filter(ndi.binary_dilation(labels > 0, iterations=max(1, int(d / 10))).astype(np.float32), d / 10)
            transmitted = 1 + 0.4 * contrast * halo - 1.6 * contrast * ndi.gaussian_filter(stain, 1.0)
        elif m == "brightfield":  # faint absorption and a dark refractive edge
            edge = ndi.gaussian_filter(_boundaries(labels).astype(np.float32), 1.0) * (labels > 0)  # a dark rim inside
            transmitted = 1 - 0.8 * contrast * stain - 1.5 * contrast * edge
        else:  # particles: opaque-ish dark objects
            transmitted = 1 - contrast * np.clip(stain, 0, 1.5)
        if look.debris:
            transmitted = transmitted - 0.3 * _debris(shape, look.debris, rng) * (labels == 0)
        transmitted = np.clip(transmitted, 0.02, None)
        expected = photons * field * _optics(transmitted, labels, look, sigma, rng, dim=1.0)
    return _camera(expected, look, rng), labels, float(d)
