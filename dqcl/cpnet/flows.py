"""Cellpose flow targets for mask patches, cached on disk by the content of the masks."""

from __future__ import annotations

import hashlib
import logging
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..core.atomic import save_npy

__all__ = ["flow_key", "flow_targets", "cellpose_quiet"]

# Cellpose's modules dqcl calls into; each logs through a logger of its module's name
_CELLPOSE_LOGGERS = ("cellpose.dynamics", "cellpose.utils", "cellpose.metrics")
_quiet = threading.local()


class _InQuietScope(logging.Filter):
    """Drops a record logged by the thread that is inside `cellpose_quiet`; lets every other through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "depth", 0)


_FILTER = _InQuietScope()


@contextmanager
def cellpose_quiet():
    """Cellpose's own lines dropped while dqcl calls into it: ``masks_to_flows`` logs "empty
    masks!" once per empty patch, ``compute_masks`` "no seeds found" (Cellpose 3.1 logs them
    through ``logging``, where Python's last-resort handler prints warnings to stderr).

    Narrow on purpose: only records of Cellpose's loggers, and only those logged by the thread
    inside this block (a thread-local depth; no process-wide stream redirection or logger level
    is changed), so dqcl's own output, other threads' Cellpose lines and a user's own Cellpose
    calls outside it are left as they are.
    """
    for name in _CELLPOSE_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)  # once: addFilter keeps one copy
    _quiet.depth = getattr(_quiet, "depth", 0) + 1
    try:
        yield
    finally:
        _quiet.depth -= 1


def flow_key(masks: np.ndarray) -> str:
    """Hash of the mask stack's bytes, shape and the Cellpose version that turns it into flows."""
    import cellpose

    h = hashlib.sha256()
    h.update(f"{masks.shape}|{masks.dtype}|cellpose {cellpose.version}".encode())
    h.update(np.ascontiguousarray(masks).tobytes())
    return h.hexdigest()[:32]


def _compute(masks: np.ndarray) -> np.ndarray:
    import torch
    from cellpose.dynamics import labels_to_flows

    cpu = torch.device("cpu")
    out = np.empty((len(masks), 4) + masks.shape[1:], np.float32)
    with cellpose_quiet():
        for i, m in enumerate(masks):
            # one mask per call: labels_to_flows renumbers in place and shows its own bar for lists
            out[i] = labels_to_flows([m.copy()], device=cpu)[0][:4]
    return out


def flow_targets(masks: np.ndarray, cache_dir: Path | None = None) -> np.ndarray:
    """(N, 4, H, W) float32 targets in Cellpose's layout: labels, cell probability, Y flow, X flow.

    With ``cache_dir`` the result is stored as ``<hash>.npy`` (written atomically) and a
    later call with the same masks reads it instead of recomputing.
    """
    masks = np.asarray(masks, np.int32)
    if cache_dir is None:
        return _compute(masks)
    cache_dir = Path(cache_dir)
    path = cache_dir / f"flows-{flow_key(masks)}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(masks), 4) + masks.shape[1:]:
                return cached
        except (OSError, ValueError):
            pass  # a damaged cache entry is recomputed and replaced
    flows = _compute(masks)
    save_npy(path, flows)
    return flows
