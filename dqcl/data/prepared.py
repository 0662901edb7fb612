"""Domains read once per process, and their patches prepared once.

A study reads each folder domain in its preflight (every pair checked before anything is
stored) and its runs reuse what was read. Entries are keyed by everything that decides
them, the domain's data manifest included, so a folder that changed between two studies
in one process is read again rather than served stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .domains import DOMAINS, Domain, seed_dependent
from .streams import PatchData, prepare

__all__ = ["PreparedDomains", "DOMAIN_CACHE"]


def _seed_used(kind: str, params: dict[str, Any], seed: int) -> int | None:
    """``seed``, or None where the domain does not depend on it: then one read serves every data seed of a study."""
    return seed if seed_dependent(kind, params) else None


def _domain_key(kind: str, params: dict[str, Any], seed: int, manifest: str) -> str:
    return repr((kind, sorted(params.items()), _seed_used(kind, params, seed), manifest))


class PreparedDomains:
    def __init__(self) -> None:
        self._domains: dict[str, Domain] = {}
        self._patches: dict[str, tuple[PatchData, PatchData]] = {}

    def domain(self, kind: str, params: dict[str, Any], seed: int, manifest: str = "") -> Domain:
        """The domain of ``kind`` built from ``params`` (a folder: every pair read and checked)."""
        key = _domain_key(kind, params, seed, manifest)
        if key not in self._domains:
            if manifest == f"generated:{kind}" and "generator" not in params:
                params = {**params, "generator": 1}  # a run stored before generator 2 reruns on its own data
            self._domains[key] = DOMAINS.get(kind).factory(seed=seed, **params)
        return self._domains[key]

    def patches(
        self, name: str, kind: str, params: dict[str, Any], seed: int, manifest: str,
        size: int, stride: int, pad: bool, cache_dir: Path | None, diameter: float = 0.0,
    ) -> tuple[PatchData, PatchData]:
        """Train and test patches with their flow targets, known in tables as ``name``, rescaled to ``diameter``."""
        key = repr((name, kind, sorted(params.items()), _seed_used(kind, params, seed), manifest, size, stride, pad, diameter))
        if key not in self._patches:
            domain = self.domain(kind, params, seed, manifest)
            # the patches hold what a run needs: the whole images need not stay in memory too
            self._domains.pop(_domain_key(kind, params, seed, manifest), None)
            train, test = (prepare(domain, split, size, stride, pad, cache_dir, diameter) for split in ("train", "test"))
            self._patches[key] = (
                PatchData(name, "train", train.images, train.targets, train.names, train.scales),
                PatchData(name, "test", test.images, test.targets, test.names, test.scales),
            )
        return self._patches[key]

    def forget_patches(self) -> None:
        """Drop the prepared patches, keep the domains read or built but not yet cut (a later study's)."""
        self._patches.clear()

    def clear(self) -> None:
        self._domains.clear()
        self._patches.clear()


DOMAIN_CACHE = PreparedDomains()  # the process's cache; a study clears it when it starts
