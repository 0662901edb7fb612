"""Procedural microscopy images with instance masks, for the built-in domains.

Each built-in domain is a mixture of sub-styles with long-tailed frequencies (one common
style, several rare ones), so the data are redundant the way real collections are and a
subset that covers the rare styles beats one that samples the common style many times.
Everything is drawn from one `numpy.random.Generator`, so a seed fixes every pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

__all__ = ["CellLook", "Style", "render", "sample_styles"]


@dataclass(frozen=True)
class CellLook:
    """How one kind of cell is shaped, placed and painted (ranges are drawn per image)."""

    radius: tuple[float, float]  # mean radius in pixels
    elongation: tuple[float, float] = (1.0, 1.3)  # long axis / short axis
    roughness: float = 0.08  # amplitude of the boundary's low harmonics
    density: tuple[float, float] = (0.3, 0.5)  # fraction of the image covered by cells
    cluster: float = 0.0  # 0 = uniform centres, 1 = all centres in a few clumps
    intensity: tuple[float, float] = (0.7, 1.0)  # cell brightness (or darkness) amplitude
    profile: str = "cytoplasm"  # cytoplasm | nucleus | vesicular | halo
    hole: float = 0.0  # dark nucleus inside a cytoplasm stain, fraction of intensity
    texture: float = 0.1  # speckle inside cells, fraction of intensity


@dataclass(frozen=True)
class Style:
    """One sub-style of a domain: a cell look on a background."""

    name: str
    weight: float
    cells: CellLook
    polarity: int = 1  # +1 bright cells on dark, -1 dark cells on light
    background: tuple[float, float] = (0.05, 0.15)
    illumination: float = 0.1  # amplitude of a slow background gradient
    tissue: float = 0.0  # amplitude of fibrous tissue texture in the background
    debris: int = 0  # unlabelled specks per image
    blur: tuple[float, float] = (0.6, 1.2)
    noise: tuple[float, float] = (0.02, 0.05)
    extra: dict = field(default_factory=dict)


def sample_styles(styles: tuple[Style, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Style index per image: the common style by weight, every style at least once when n allows."""
    w = np.array([s.weight for s in styles], dtype=float)
    idx = rng.choice(len(styles), size=n, p=w / w.sum())
    if n >= len(styles):
        # a rare style that never shows up would make the domain narrower than it claims
        missing = [k for k in range(len(styles)) if k not in idx]
        slots = rng.permutation(np.flatnonzero(idx == int(np.argmax(w))))
        for k, slot in zip(missing, slots):
            idx[slot] = k
    return idx


def _uniform(rng: np.random.Generator, lohi: tuple[float, float]) -> float:
    return float(rng.uniform(lohi[0], lohi[1]))


def _smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    field_ = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field_ / (field_.std() + 1e-8)


def _centres(n: int, shape: tuple[int, int], cluster: float, rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    pts = rng.uniform((0, 0), (h, w), size=(n, 2))
    n_clustered = int(round(cluster * n))
    if n_clustered:
        k = max(1, n_clustered // 12)
        heads = rng.uniform((0, 0), (h, w), size=(k, 2))
        spread = 0.08 * min(h, w)
        pts[:n_clustered] = heads[rng.integers(0, k, n_clustered)] + rng.normal(0, spread, (n_clustered, 2))
    return np.clip(pts, 0, (h - 1, w - 1))


def _paint_cells(
    shape: tuple[int, int], look: CellLook, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Instance labels and a per-pixel normalised radius (0 at the centre, 1 at the edge)."""
    h, w = shape
    labels = np.zeros(shape, np.int32)
    rho = np.ones(shape, np.float32)
    r_lo, r_hi = look.radius
    r_mean = 0.5 * (r_lo + r_hi)
    density = _uniform(rng, look.density)
    n = max(1, int(density * h * w / (np.pi * r_mean**2 * np.mean(look.elongation))))
    next_label = 1
    for cy, cx in _centres(n, shape, look.cluster, rng):
        r = _uniform(rng, look.radius)
        e = _uniform(rng, look.elongation)
        ry, rx = r / np.sqrt(e), r * np.sqrt(e)
        theta = rng.uniform(0, np.pi)
        reach = int(np.ceil(max(ry, rx) * (1 + 3 * look.roughness))) + 1
        y0, y1 = max(0, int(cy) - reach), min(h, int(cy) + reach + 1)
        x0, x1 = max(0, int(cx) - reach), min(w, int(cx) + reach + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dy, dx = yy - cy, xx - cx
        c, s = np.cos(theta), np.sin(theta)
        u, v = c * dx + s * dy, -s * dx + c * dy
        phi = np.arctan2(v, u)
        boundary = np.ones_like(phi)
        for k in (2, 3, 4, 5):
            boundary += look.roughness * rng.normal() / k**0.5 * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        radial = np.sqrt((u / rx) ** 2 + (v / ry) ** 2) / np.maximum(boundary, 0.3)
        free = labels[y0:y1, x0:x1] == 0
        inside = (radial < 1.0) & free
        # a later cell only fills free pixels; keep its largest connected piece
        pieces, count = ndi.label(inside)
        if count > 1:
            sizes = ndi.sum(inside, pieces, index=np.arange(1, count + 1))
            inside = pieces == (1 + int(np.argmax(sizes)))
        if inside.sum() < 15:  # Cellpose drops masks under 15 pixels
            continue
        labels[y0:y1, x0:x1][inside] = next_label
        rho[y0:y1, x0:x1][inside] = radial[inside]
        next_label += 1
    return labels, rho


def _cell_signal(labels: np.ndarray, rho: np.ndarray, look: CellLook, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel stain amplitude in [0, ~1] from the cell profile, per-cell brightness and speckle."""
    n = int(labels.max())
    per_cell = np.concatenate([[0.0], rng.uniform(*look.intensity, size=n)]).astype(np.float32)
    amp = per_cell[labels]
    inside = labels > 0
    r = np.clip(rho, 0, 1)
    if look.profile == "cytoplasm":
        shape_ = 0.55 + 0.45 * (1 - r**2)
        if look.hole:
            shape_ = shape_ * (1 - look.hole * np.exp(-((r / 0.35) ** 2)))
    elif look.profile == "nucleus":
        shape_ = 0.8 + 0.2 * (1 - r**2)
    elif look.profile == "vesicular":
        shape_ = 0.45 + 0.55 * r**2  # dense chromatin rim, light centre
    elif look.profile == "halo":
        shape_ = 0.9 - 0.3 * r**2
    else:
        raise ValueError(f"unknown cell profile {look.profile!r}")
    speckle = 1 + look.texture * _smooth_noise(labels.shape, 0.8, rng)
    return np.where(inside, amp * shape_ * speckle, 0.0).astype(np.float32)


def render(style: Style, shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image (float32, roughly [0, 1]) and its instance mask (int32, 0 = background)."""
    labels, rho = _paint_cells(shape, style.cells, rng)
    signal = _cell_signal(labels, rho, style.cells, rng)
    h, w = shape
    bg = _uniform(rng, style.background)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) * style.illumination
    image = bg + gradient
    if style.tissue:
        fibres = _smooth_noise(shape, 6.0, rng) + 0.6 * _smooth_noise(shape, 1.5, rng)
        image = image + style.tissue * fibres
    if style.debris:
        specks = np.zeros(shape, np.float32)
        ys, xs = rng.integers(0, h, style.debris), rng.integers(0, w, style.debris)
        specks[ys, xs] = rng.uniform(0.5, 1.0, style.debris)
        specks = ndi.gaussian_filter(specks, 1.2) * 12
        image = image + style.polarity * specks * (labels == 0)
    if style.cells.profile == "halo":
        # phase-contrast look: a bright ring just outside each cell, dark body inside
        outside_ring = ndi.binary_dilation(labels > 0, iterations=2) & (labels == 0)
        image = image + 0.35 * outside_ring
    image = image + style.polarity * signal
    image = ndi.gaussian_filter(image, _uniform(rng, style.blur))
    noise = _uniform(rng, style.noise)
    image = image + noise * rng.standard_normal(shape)
    return image.astype(np.float32), labels
