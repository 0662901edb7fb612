"""The mask-reconstruction settings, apart from the code that uses them (no torch import: a spec's
schema and the leaderboard read them without loading a network)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MaskSettings"]


@dataclass(frozen=True)
class MaskSettings:
    """Cellpose's `compute_masks` settings (a spec's ``[eval]`` table holds the same fields)."""

    flow_threshold: float = 0.4
    cellprob_threshold: float = 0.0
    niter: int = 200
    min_size: int = 15
    max_size_fraction: float = 0.4
