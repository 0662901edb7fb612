"""The checks that stop a study at once rather than hours in, done once per study.

`preflight` expands a spec into its runs, reads and checks every folder domain (each pair
of files; the domain read is kept for the runs, see `dqcl.data.prepared`) and checks the
device, all before a results store is opened, so a study that cannot start leaves no file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.expand import expand
from ..config.schema import RunConfig, Spec
from ..data.prepared import DOMAIN_CACHE, PreparedDomains
from ..errors import DqclError

__all__ = ["Study", "preflight"]


@dataclass(frozen=True)
class Study:
    """A spec that passed preflight: its runs, and the bad pairs its folder domains left out (skip_bad)."""

    spec: Spec
    runs: tuple[RunConfig, ...]
    skipped: tuple[str, ...] = ()


def preflight(spec: Spec, cache: PreparedDomains = DOMAIN_CACHE) -> Study:
    runs = expand(spec)
    skipped: list[str] = []
    seen = {}
    for cfg in runs:
        manifests = dict(cfg.data_manifests)
        for ds in cfg.domains:
            if ds.kind == "folder" and ds.name not in seen:
                seen[ds.name] = ds
                if not Path(ds.params["path"]).is_dir():
                    raise DqclError(f"{ds.params['path']}: no such folder (domain '{ds.name}' of {spec.source})")
                # read every pair now: a bad file stops the study before anything is stored, not hours in
                skipped += cache.domain(ds.kind, ds.params, spec.data_seed, manifests.get(ds.name, "")).skipped
    if spec.model.init:
        from ..cpnet.model import CellposeNet, load_init

        try:
            load_init(CellposeNet(spec.model.widths, norm=spec.model.norm), spec.model.init)
        except ValueError as err:
            raise DqclError(f"{spec.source}: model.init: {err}") from None
    if spec.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DqclError(f"{spec.source}: study.device is '{spec.device}' but no CUDA GPU is available here")
    return Study(spec, tuple(runs), tuple(skipped))
