"""Imaging domains: what a domain is, and the registry of domain kinds.

A domain kind is a factory ``kind(*, seed, **params) -> Domain``. The built-in kinds
(`dqcl.data.builtin`) draw grayscale images with instance masks from a long-tailed mixture
of sub-styles; the ``folder`` kind (`dqcl.data.folders`) reads a user's train/test folders.
Both register themselves when `dqcl.data` is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.registry import Registry

__all__ = ["Split", "Domain", "DOMAINS", "register_domain", "list_domains", "seed_dependent"]


@dataclass(frozen=True)
class Split:
    """Images (2-D float32, normalised) with their instance masks (2-D int32), by name."""

    images: tuple[np.ndarray, ...]
    masks: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    styles: tuple[str, ...]
    diameters: tuple[float, ...] = ()  # stated median object diameter per image (px); empty: measured from the masks

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class Domain:
    name: str
    train: Split
    test: Split
    skipped: tuple[str, ...] = ()  # the bad pairs a folder domain left out (skip_bad), one problem each


DOMAINS: Registry[Callable[..., Domain]] = Registry("domain")
register_domain = DOMAINS.register


def seed_dependent(kind: str, params: dict) -> bool:
    """Whether a domain's images depend on the data seed: a built-in domain draws them with it, a
    folder only where ``resplit = true`` divides its pairs anew or ``holdout`` holds some out (see
    `dqcl.data.folders.load_folder`)."""
    return not (kind == "folder" and not params.get("resplit") and not params.get("holdout"))


def list_domains(pattern: str = "*") -> list[str]:
    return DOMAINS.names(pattern)
