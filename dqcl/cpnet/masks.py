"""Batched mask reconstruction: Cellpose's `compute_masks` for many patches at once.

`cellpose.dynamics.compute_masks` takes one patch at a time and spends its time in three
places: following the flows (200 Euler steps per pixel), re-computing flows from the
masks it found for the flow-error check (a diffusion per mask), and small Python loops
over seeds. Here the same three steps run over a whole batch:

- flow following: one compiled loop over every foreground pixel of every patch, in
  parallel, with the same float arithmetic as Cellpose's CPU path; a pixel stops as soon
  as a step leaves it where it was (it would stay there for the remaining steps), so the
  result is identical. On a GPU the batch is followed with `grid_sample` instead.
- seeds and labels: Cellpose's histogram / max-pool / seed-growing rules, vectorised.
- flow error: Cellpose's diffusion from each mask's centre, one compiled task per mask of
  the batch, in parallel, same arithmetic; errors are then averaged per mask as Cellpose does.

The last step (filling holes, dropping small masks) is Cellpose's own function.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from numba import njit, prange

from .settings import MaskSettings

__all__ = ["MaskSettings", "batch_masks", "flows_to_masks", "outputs_from_targets"]

_RPAD = 20  # histogram padding, as in cellpose.dynamics.get_masks_torch


@njit(inline="always")
def _step(dP, b, yc, xc, Ly, Lx):  # pragma: no cover - compiled
    """One Euler step with bilinear interpolation, with the float types of Cellpose's CPU path (map_coordinates)."""
    yf0 = np.int32(yc)
    xf0 = np.int32(xc)
    y = np.float32(np.float64(yc) - np.float64(yf0))
    x = np.float32(np.float64(xc) - np.float64(xf0))
    yf = min(Ly - 1, max(0, yf0))
    xf = min(Lx - 1, max(0, xf0))
    yf1 = min(Ly - 1, yf + 1)
    xf1 = min(Lx - 1, xf + 1)
    # the mix of float32 and float64 below is what numba makes of map_coordinates' expression
    oy = 1.0 - np.float64(y)
    ox = 1.0 - np.float64(x)
    dy = np.float32(
        np.float64(dP[b, 0, yf, xf]) * oy * ox
        + np.float64(dP[b, 0, yf, xf1]) * oy * np.float64(x)
        + np.float64(np.float32(dP[b, 0, yf1, xf] * y)) * ox
        + np.float64(np.float32(np.float32(dP[b, 0, yf1, xf1] * y) * x))
    )
    dx = np.float32(
        np.float64(dP[b, 1, yf, xf]) * oy * ox
        + np.float64(dP[b, 1, yf, xf1]) * oy * np.float64(x)
        + np.float64(np.float32(dP[b, 1, yf1, xf] * y)) * ox
        + np.float64(np.float32(np.float32(dP[b, 1, yf1, xf1] * y) * x))
    )
    ny = min(np.float32(Ly - 1), max(np.float32(0.0), np.float32(yc + dy)))
    nx = min(np.float32(Lx - 1), max(np.float32(0.0), np.float32(xc + dx)))
    return ny, nx


_RING = 8  # positions remembered per point to spot a return


@njit(parallel=True, cache=True, nogil=True)
def _follow(dP, patch, py, px, niter):  # pragma: no cover - compiled
    """``niter`` Euler steps for every point (Cellpose's steps_interp, CPU), exactly.

    A point's path is a deterministic map on float32 positions, so once it comes back to a
    position it held ``p`` steps before it repeats that cycle for good and only
    ``(steps left) mod p`` more steps are needed. Near a cell's centre most points fall into
    such a cycle within a few dozen steps; each point remembers its last few positions to
    spot the return at once.
    """
    _, _, Ly, Lx = dP.shape
    for i in prange(py.shape[0]):
        b = patch[i]
        yc = py[i]
        xc = px[i]
        ry = np.empty(_RING, np.float32)
        rx = np.empty(_RING, np.float32)
        ry[0] = yc
        rx[0] = xc
        t = 0
        while t < niter:
            yc, xc = _step(dP, b, yc, xc, Ly, Lx)
            t += 1
            period = 0
            for lag in range(1, min(t, _RING) + 1):
                j = (t - lag) % _RING
                if ry[j] == yc and rx[j] == xc:
                    period = lag
                    break
            if period:
                for _ in range((niter - t) % period):
                    yc, xc = _step(dP, b, yc, xc, Ly, Lx)
                break
            ry[t % _RING] = yc
            rx[t % _RING] = xc
        py[i] = yc
        px[i] = xc


@njit(parallel=True, cache=True, nogil=True)
def _flow_errors(dP, starts, patch, y0, x0, ly, lx, ys, xs, out):  # pragma: no cover - compiled
    """Per mask: Cellpose's diffusion flows (masks_to_flows_cpu) and their error against dP (flow_error)."""
    for m in prange(starts.shape[0] - 1):
        a = starts[m]
        n = starts[m + 1] - a
        b = patch[m]
        w = lx[m]
        y = ys[a : a + n]
        x = xs[a : a + n]
        ymean = y.mean()
        xmean = x.mean()
        best = 0
        bestd = np.inf
        for j in range(n):
            d = (x[j] - xmean) ** 2 + (y[j] - ymean) ** 2
            if d < bestd:
                bestd = d
                best = j
        med = y[best] * w + x[best]
        T = np.zeros(ly[m] * w, np.float64)
        new = np.empty(n, np.float64)
        for _ in range(2 * (ly[m] + w)):
            T[med] += 1
            for j in range(n):
                c = y[j] * w + x[j]
                new[j] = (1 / 9.0) * (
                    T[c] + T[c - w] + T[c + w] + T[c - 1] + T[c + 1] + T[c - w - 1] + T[c - w + 1] + T[c + w - 1] + T[c + w + 1]
                )
            for j in range(n):
                T[y[j] * w + x[j]] = new[j]
        e0 = 0.0
        e1 = 0.0
        for j in range(n):
            c = y[j] * w + x[j]
            dy = T[c + w] - T[c - w]
            dx = T[c + 1] - T[c - 1]
            norm = 1e-60 + np.sqrt(dy * dy + dx * dx)
            py = y0[m] + y[j] - 1
            px = x0[m] + x[j] - 1
            e0 += (dy / norm - np.float32(dP[b, 0, py, px]) / np.float32(5.0)) ** 2
            e1 += (dx / norm - np.float32(dP[b, 1, py, px]) / np.float32(5.0)) ** 2
        out[m] = e0 / n + e1 / n


def _follow_torch(dP: np.ndarray, patch: np.ndarray, py: np.ndarray, px: np.ndarray, niter: int, device: torch.device):
    """The same Euler steps for the whole batch with `grid_sample` on ``device`` (float32 rounding may differ)."""
    from torch.nn import functional as F

    B, _, Ly, Lx = dP.shape
    counts = np.bincount(patch, minlength=B)
    nmax = int(counts.max())
    slot = np.arange(len(patch)) - np.repeat(np.cumsum(counts) - counts, counts)
    scale = torch.tensor([Lx - 1, Ly - 1], dtype=torch.float32, device=device)
    pts = torch.zeros((B, 1, nmax, 2), dtype=torch.float32, device=device)
    b_t, s_t = torch.from_numpy(patch).to(device), torch.from_numpy(slot).to(device)
    pts[b_t, 0, s_t] = torch.stack([torch.from_numpy(px), torch.from_numpy(py)], 1).to(device)
    im = torch.from_numpy(np.ascontiguousarray(dP[:, ::-1])).to(device)  # (dx, dy): grid_sample's (x, y) order
    hi = scale.view(1, 1, 1, 2)
    for _ in range(niter):
        g = pts / hi * 2 - 1
        step = F.grid_sample(im, g, mode="bilinear", padding_mode="border", align_corners=True)  # (B, 2, 1, nmax)
        pts = torch.minimum(torch.clamp(pts + step.permute(0, 2, 3, 1), min=0.0), hi)
    got = pts[b_t, 0, s_t].cpu().numpy()
    return got[:, 1].copy(), got[:, 0].copy()


@contextmanager
def _threads_like_torch():
    """Run numba's parallel loops on as many threads as torch uses, and give torch its count back.

    numba's OpenMP layer sets the process-wide OpenMP thread count when it starts; torch shares
    it, so without this a worker limited to 1 thread (``--executor process``) would train on
    all cores after its first scoring, and its results would depend on when that happened.
    """
    import numba

    n = torch.get_num_threads()
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)
        torch.set_num_threads(n)


def _seed_labels(h: np.ndarray) -> np.ndarray:
    """Cellpose's seeds (local histogram maxima over 10) grown 5 times within bins over 2; labels per bin."""
    from scipy.ndimage import maximum_filter

    hmax = maximum_filter(h, size=5, mode="constant", cval=0)
    seeds = np.stack(np.nonzero((h == hmax) & (h > 10)), 1)
    M1 = np.zeros(h.shape, np.int32)
    if len(seeds) == 0:
        return M1
    order = torch.from_numpy(h[seeds[:, 0], seeds[:, 1]].astype(np.int32)).argsort().numpy()
    seeds = seeds[order]
    off = np.arange(-5, 6)
    rows = seeds[:, 0, None, None] + off[None, :, None]
    cols = seeds[:, 1, None, None] + off[None, None, :]
    allowed = h[rows, cols] > 2
    grown = np.zeros(allowed.shape, np.float32)
    grown[:, 5, 5] = 1
    for _ in range(5):
        grown = maximum_filter(grown, size=(1, 3, 3), mode="constant", cval=0) * allowed
    k, r, c = np.nonzero(grown)
    # a later (larger) seed overwrites an earlier one where they overlap, as in Cellpose's loop
    np.maximum.at(M1.reshape(-1), (rows[k, r, 0] * h.shape[1] + cols[k, 0, c]), k.astype(np.int32) + 1)
    return M1


def _label_patch(py: np.ndarray, px: np.ndarray, iy: np.ndarray, ix: np.ndarray, shape: tuple[int, int], frac: float) -> np.ndarray:
    import fastremap

    Ly, Lx = shape
    ty = np.clip(py.astype(np.int32) + _RPAD, 0, Ly + _RPAD - 1)
    tx = np.clip(px.astype(np.int32) + _RPAD, 0, Lx + _RPAD - 1)
    hs = (Ly + 2 * _RPAD, Lx + 2 * _RPAD)
    h = np.bincount(ty * hs[1] + tx, minlength=hs[0] * hs[1]).reshape(hs).astype(np.int32)
    M1 = _seed_labels(h)
    M0 = np.zeros(shape, np.uint16)
    if not M1.any():
        return M0
    M0[iy, ix] = M1[ty, tx]
    uniq, counts = fastremap.unique(M0, return_counts=True)
    big = uniq[counts > Ly * Lx * frac]
    if len(big) > 0 and (len(big) > 1 or big[0] != 0):
        M0 = fastremap.mask(M0, big)
    fastremap.renumber(M0, in_place=True)
    return M0


def _remove_bad_flows(masks: list[np.ndarray], dP: np.ndarray, threshold: float) -> None:
    """Cellpose's flow-error check for every mask of every patch at once (in place)."""
    stack = np.stack(masks)
    counts = np.array([int(m.max()) for m in masks], np.int64)
    if counts.sum() == 0:
        return
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # global id of each patch's label 1, minus 1
    b, y, x = np.nonzero(stack)
    gid = first[b] + stack[b, y, x] - 1
    order = np.argsort(gid, kind="stable")  # each mask's pixels in row-major order, as find_objects + nonzero give
    gid, b, y, x = gid[order], b[order], y[order], x[order]
    starts = np.searchsorted(gid, np.arange(int(counts.sum()) + 1))
    if np.any(np.diff(starts) == 0):  # a label with no pixel: not expected after renumbering
        raise ValueError("masks must be numbered without gaps")
    y0 = np.minimum.reduceat(y, starts[:-1])
    y1 = np.maximum.reduceat(y, starts[:-1])
    x0 = np.minimum.reduceat(x, starts[:-1])
    x1 = np.maximum.reduceat(x, starts[:-1])
    seg = np.repeat(np.arange(len(y0)), np.diff(starts))
    errors = np.zeros(len(y0), np.float64)
    with _threads_like_torch():
        _flow_errors(
            dP, starts.astype(np.int64), b[starts[:-1]].astype(np.int32), y0.astype(np.int32), x0.astype(np.int32),
            (y1 - y0 + 3).astype(np.int32), (x1 - x0 + 3).astype(np.int32),
            (y - y0[seg] + 1).astype(np.int32), (x - x0[seg] + 1).astype(np.int32), errors,
        )
    bad = np.nonzero(errors > threshold)[0]
    if len(bad):
        owner = np.searchsorted(first, bad, side="right") - 1
        for p in np.unique(owner):
            masks[p][np.isin(masks[p], bad[owner == p] - first[p] + 1)] = 0


def batch_masks(
    outputs, settings: MaskSettings = MaskSettings(), device: torch.device | str = "cpu", engine: str | None = None
) -> list[np.ndarray]:
    """Instance masks (uint16, one per patch) from network outputs (B, 3, H, W): Y flow, X flow, cell probability.

    Gives what ``cellpose.dynamics.compute_masks`` gives for each patch. ``engine`` picks how
    flows are followed: "compiled" (CPU, Cellpose's arithmetic, identical masks) or "torch"
    (`grid_sample` on ``device``, float32); by default "torch" on a GPU, "compiled" otherwise.
    """
    from cellpose.utils import fill_holes_and_remove_small_masks

    out = outputs.detach().float().cpu().numpy() if torch.is_tensor(outputs) else np.asarray(outputs, np.float32)
    if out.ndim != 4 or out.shape[1] != 3:
        raise ValueError(f"expected network outputs of shape (B, 3, H, W), got {out.shape}")
    if engine not in (None, "compiled", "torch"):
        raise ValueError(f"unknown engine {engine!r}; expected 'compiled' or 'torch'")
    B, _, Ly, Lx = out.shape
    dP = out[:, :2]
    cell = out[:, 2] > settings.cellprob_threshold
    patch, iy, ix = (a.astype(np.int32) for a in np.nonzero(cell))
    masks = [np.zeros((Ly, Lx), np.uint16) for _ in range(B)]
    if len(patch) == 0:
        return masks
    moving = dP * cell[:, None]  # Cellpose follows dP * (cellprob > threshold) / 5
    moving /= np.float32(5.0)
    py, px = iy.astype(np.float32), ix.astype(np.float32)
    device = torch.device(device)
    engine = engine or ("compiled" if device.type == "cpu" else "torch")
    if engine == "compiled":
        with _threads_like_torch():
            _follow(moving, patch, py, px, int(settings.niter))
    else:
        py, px = _follow_torch(moving, patch, py, px, int(settings.niter), device)
    bounds = np.searchsorted(patch, np.arange(B + 1))
    for b in range(B):
        a, e = bounds[b], bounds[b + 1]
        if e > a:
            masks[b] = _label_patch(py[a:e], px[a:e], iy[a:e], ix[a:e], (Ly, Lx), settings.max_size_fraction)
    if settings.flow_threshold is not None and settings.flow_threshold > 0:
        _remove_bad_flows(masks, dP, settings.flow_threshold)
    if settings.min_size > 0:
        masks = [fill_holes_and_remove_small_masks(m, min_size=settings.min_size) if m.any() else m for m in masks]
    return masks


def flows_to_masks(output: np.ndarray, settings: MaskSettings = MaskSettings()) -> np.ndarray:
    """Cellpose's own per-patch routine: instance mask (int32) from one network output (3, H, W).

    The reference `batch_masks` is tested and timed against.
    """
    from cellpose.dynamics import compute_masks

    from .flows import cellpose_quiet

    with cellpose_quiet():  # Cellpose logs a line for a patch where it finds no seeds
        mask = compute_masks(
            output[:2],
            output[2],
            niter=settings.niter,
            cellprob_threshold=settings.cellprob_threshold,
            flow_threshold=settings.flow_threshold,
            min_size=settings.min_size,
            max_size_fraction=settings.max_size_fraction,
            device=torch.device("cpu"),
        )
    return np.asarray(mask, np.int32)


def outputs_from_targets(targets: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """Network-like outputs (B, 3, H, W) from flow targets (B, 4, H, W): Cellpose-scaled flows and
    cell-probability logits, with Gaussian noise of standard deviation ``noise`` (for tests and timings)."""
    rng = np.random.default_rng(seed)
    flows = 5.0 * targets[:, 2:4] + rng.normal(0.0, noise, targets[:, 2:4].shape)
    logits = np.where(targets[:, 1:2] > 0.5, 3.0, -3.0) + rng.normal(0.0, 2.0 * noise, targets[:, 1:2].shape)
    return np.concatenate([flows, logits], 1).astype(np.float32)
