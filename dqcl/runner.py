"""Running a study: each run trains a Cellpose network through an Avalanche strategy.

One run: prepare its domains (patches + cached flows) -> Avalanche benchmark -> score the
random-init network on every test domain (the baseline row) -> for each experience, train
then score on every test domain (row i of R) -> a result dict for the store.
"""

from __future__ import annotations

import math
import os
import platform
import random
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from avalanche.core import SupervisedPlugin

from .domains import DOMAINS
from .errors import DqclError
from .evaluation import MaskSettings, SegmentationScores, make_evaluator
from .fast import FastPath, fast_enabled
from .metrics import METRICS
from .model import CellposeNet, cellpose_loss
from .spec import DomainSpec, RunConfig, Spec, Subset, expand
from .store import Store
from .strategy import Augment, Base, Warmup, build_strategy
from .streams import PatchData, make_benchmark, prepare

__all__ = ["resolve_device", "prepare_domain", "preflight", "run_one", "run_study", "StudySummary", "versions", "checkpoint_path"]

_PREPARED: dict[str, tuple[PatchData, PatchData]] = {}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


_SOURCE: list[str] = []


def versions() -> dict[str, str]:
    from .provenance import source_version

    if not _SOURCE:
        _SOURCE.append(source_version())
    out = {"python": platform.python_version(), "dqcl_commit": _SOURCE[0]}
    for pkg in ("dqcl", "torch", "torchvision", "cellpose", "avalanche-lib", "numpy", "scipy", "numba", "ray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def prepare_domain(ds: DomainSpec, cfg: RunConfig) -> tuple[PatchData, PatchData]:
    """Train and test patches of one domain, memoised per process (flows are cached on disk too)."""
    key = repr((ds, cfg.data.patch_size, cfg.data.stride, cfg.data.pad, cfg.data_seed))
    if key not in _PREPARED:
        domain = DOMAINS.get(ds.kind).factory(seed=cfg.data_seed, **ds.params)
        cache = Path(cfg.data.cache_dir)
        args = (cfg.data.patch_size, cfg.data.stride, cfg.data.pad, cache)
        train, test = prepare(domain, "train", *args), prepare(domain, "test", *args)
        # a domain is known in tables by the name the spec gives it
        _PREPARED[key] = (
            PatchData(ds.name, "train", train.images, train.targets, train.names),
            PatchData(ds.name, "test", test.images, test.targets, test.names),
        )
    return _PREPARED[key]


def subset_indices(train: PatchData, subset: Subset, seed: int, cache_dir: Path | None) -> np.ndarray:
    """The training patches a redundancy run keeps: every one for 'all', else the selector's coreset."""
    from .dq import capped_bins, select
    from .embed import embed

    if subset.selector == "all" or subset.rate >= 1.0:
        return np.arange(len(train))
    opts = {}
    if subset.embedder == "mae" and subset.embedder_weights:
        opts["weights"] = subset.embedder_weights
    elif subset.embedder == "style":
        opts["checkpoint"] = subset.embedder_weights
    feats = embed(subset.embedder, train.images, train.targets[:, 0].astype(np.int32), cache_dir=cache_dir, **opts)
    return select(feats, subset.rate, capped_bins(subset.bins, len(feats), subset.rate), subset.selector, seed=seed)


class _Count(SupervisedPlugin):
    """Counts training images seen (with replay, memory samples count too)."""

    def __init__(self) -> None:
        super().__init__()
        self.images = 0

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.images += len(strategy.mb_x)


def _peak_memory(device: torch.device, peak: dict[str, float]) -> None:
    """Largest resident set of this process and, on a GPU, largest allocation, in MiB (kept across a resume)."""
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    peak["host"] = max(peak.get("host", 0.0), round(rss, 1))
    if device.type == "cuda":
        peak["gpu"] = max(peak.get("gpu", 0.0), round(torch.cuda.max_memory_allocated(device) / 2**20, 1))


def _digest(model: torch.nn.Module) -> str:
    """SHA-256 of the trained network's weights: equal digests, bit-identical networks."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _row(scores: SegmentationScores, n: int) -> dict[str, list[float]]:
    got = scores.result()
    return {m: [got[j][m] for j in range(n)] for m in METRICS}


def run_one(
    cfg: RunConfig, on_step: Callable[[str], None] | None = None, checkpoint: Path | None = None
) -> dict[str, Any]:
    """Train and score one run; returns the result stored for it.

    With ``checkpoint`` (a file path), the run's state is saved there after every experience
    but the last, and a run that finds a checkpoint of its own key there resumes after the
    experience it holds instead of starting over.
    """
    from avalanche.training import JointTraining

    from . import checkpoint as ckpt

    step = on_step or (lambda msg: None)
    t_start = time.perf_counter()
    device_peak: dict[str, float] = {}
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    step("preparing data")
    prepared = [prepare_domain(ds, cfg) for ds in cfg.domains]
    epochs = cfg.train.epochs
    subset_info = None
    if cfg.subset is not None:
        step(f"selecting {cfg.subset.selector} {cfg.subset.rate:g}")
        train, test = prepared[0]
        idx = subset_indices(train, cfg.subset, cfg.seed, Path(cfg.data.cache_dir))
        prepared = [(train.subset(idx), test)]
        # the same number of optimiser steps whatever the subset's size
        epochs = max(1, math.ceil(cfg.subset.steps * cfg.train.batch_size / len(idx)))
        subset_info = {"indices": idx.tolist(), "size": int(len(idx)), "available": len(train), "epochs": epochs}
    t_prepared = time.perf_counter()
    bm = make_benchmark([p[0] for p in prepared], [p[1] for p in prepared])
    n = len(prepared)

    model = CellposeNet(cfg.model.widths)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.train.lr, momentum=cfg.train.momentum, weight_decay=cfg.train.weight_decay
    )
    scores = SegmentationScores(
        MaskSettings(cfg.eval.flow_threshold, cfg.eval.cellprob_threshold, cfg.eval.niter, cfg.eval.min_size)
    )
    counter = _Count()
    plugins: list = [counter, Warmup(cfg.train.warmup_epochs)] + ([Augment(cfg.seed)] if cfg.train.augment else [])
    fast = fast_enabled(cfg.train.fast, device)
    if fast:
        plugins.append(FastPath(device))  # after Augment: batches are turned, then laid out channels-last
    if cfg.train.compile:
        model.compile()  # in place: parameter names (checkpoints, EWC importances) stay as they are
    base = Base(
        model=model,
        optimizer=optimizer,
        criterion=cellpose_loss,
        train_mb_size=cfg.train.batch_size,
        train_epochs=epochs,
        eval_mb_size=cfg.eval.batch_size,
        device=device,
        evaluator=make_evaluator(scores),
        seed=cfg.seed,
        plugins=plugins,
    )
    strategy = build_strategy(cfg.strategy.name, base, cfg.strategy.params)

    loader = {"num_workers": cfg.train.loader_workers, "pin_memory": fast and device.type == "cuda",
              "persistent_workers": cfg.train.loader_workers > 0}
    train_s, eval_s = [], []
    R: dict[str, list[list[float]]] = {m: [] for m in METRICS}
    phases = [bm.train_stream] if isinstance(strategy, JointTraining) else list(bm.train_stream)
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        try:
            saved = ckpt.load(checkpoint)  # weights only: a planted pickle is refused, never run
        except ckpt.CheckpointError as err:
            step(f"ignoring {err}")
            bad = Path(checkpoint).with_suffix(".refused")
            os.replace(checkpoint, bad)
            saved = {}
        if saved.get("key") == cfg.key and 0 < saved.get("done", 0) < len(phases):
            step(f"resuming after experience {saved['done'] - 1}")
            ckpt.restore_strategy(strategy, saved["state"])
            start, R, baseline = saved["done"], saved["R"], saved["baseline"]
            train_s, eval_s, counter.images = saved["train_s"], saved["eval_s"], saved["images"]
            device_peak.update(saved.get("peak", {}))
    if start == 0 and cfg.subset is None:
        step("scoring the random-init network")
        t = time.perf_counter()
        strategy.eval(bm.test_stream)
        baseline = _row(scores, n)
        eval_s.append(time.perf_counter() - t)
    elif start == 0:
        # a redundancy run trains one domain from scratch: no transfer to measure, no baseline needed
        baseline = {m: [float("nan")] * n for m in METRICS}

    for i, phase in enumerate(phases):
        if i < start:
            continue
        step("training on all domains" if len(phases) == 1 and n > 1 else f"training on {cfg.ordering[i]}")
        t = time.perf_counter()
        strategy.train(phase, **loader)
        train_s.append(time.perf_counter() - t)
        step(f"scoring after experience {i}")
        t = time.perf_counter()
        strategy.eval(bm.test_stream)
        eval_s.append(time.perf_counter() - t)
        for m, row in _row(scores, n).items():
            R[m].append(row)
        if checkpoint is not None and i < len(phases) - 1:
            _peak_memory(device, device_peak)
            ckpt.save(checkpoint, {
                "key": cfg.key, "done": i + 1, "state": ckpt.strategy_state(strategy), "R": R, "baseline": baseline,
                "train_s": train_s, "eval_s": eval_s, "images": counter.images, "peak": device_peak,
            })
            step(f"checkpoint saved after experience {i}")

    _peak_memory(device, device_peak)
    return {
        "model_sha256": _digest(model),
        "R": R,
        "baseline": baseline,
        "domains": list(cfg.ordering),
        "timings": {
            "prepare_s": t_prepared - t_start,
            "train_s": train_s,
            "eval_s": eval_s,
            "total_s": time.perf_counter() - t_start,
        },
        "images_seen": counter.images,
        "peak_memory_mb": device_peak,
        "resumed_from": start,
        "subset": subset_info,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "fast_path": {"bf16_channels_last": fast, "compile": cfg.train.compile},
        "versions": versions(),
    }


def preflight(spec: Spec) -> list[RunConfig]:
    """The study's runs, after the checks that should stop it at once rather than hours in."""
    runs = expand(spec)
    from .folders import SKIPPED

    SKIPPED.clear()
    for ds in {d.name: d for r in runs for d in r.domains if d.kind == "folder"}.values():
        if not Path(ds.params["path"]).is_dir():
            raise DqclError(f"{ds.params['path']}: no such folder (domain '{ds.name}' of {spec.source})")
        # read every pair now: a bad file stops the study before anything is stored, not hours in
        DOMAINS.get(ds.kind).factory(**ds.params)
    if spec.device.startswith("cuda") and not torch.cuda.is_available():
        raise DqclError(f"{spec.source}: study.device is '{spec.device}' but no CUDA GPU is available here")
    return runs


@dataclass(frozen=True)
class StudySummary:
    total: int
    done_before: int
    ran: int
    seconds: float


def checkpoint_path(store: Store, cfg: RunConfig) -> Path:
    return store.path.parent / "checkpoints" / f"{cfg.key}.pt"


def run_study(spec: Spec, store: Store, progress: bool = True, executor=None) -> StudySummary:
    """Run every run of a spec not yet in the store, writing each result as it finishes.

    ``executor`` is a `dqcl.executors.ExecutorOptions` (default: local, one run after another).
    Each run checkpoints after every experience next to the store (``checkpoints/<key>.pt``)
    and resumes from there if it was killed; the checkpoint goes once the result is stored.
    """
    from .executors import ExecutorOptions, execute

    return execute(spec, store, executor or ExecutorOptions(), progress)
