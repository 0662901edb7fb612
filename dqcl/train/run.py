"""One run: a Cellpose network trained through an Avalanche strategy, scored after every experience.

Prepare its domains (patches + cached flows) -> Avalanche benchmark -> score the random-init
network on every test domain (the baseline row) -> for each experience, train then score on
every test domain (row i of R) -> a result dict for the store.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..config.schema import DomainSpec, RunConfig, Subset
from ..core.text import one_line, safe_stem
from ..core.provenance import versions
from ..cpnet.model import CellposeNet, cellpose_loss, load_init, norm_buffers, save_cellpose
from ..data.prepared import DOMAIN_CACHE
from ..data.streams import PatchData, make_benchmark
from ..dq.embedders import embed, embed_options
from ..dq.selectors import capped_bins, select
from ..errors import CheckpointError, DqclError
from ..evaluation.metrics import METRICS
from ..evaluation.scores import SegmentationScores, make_evaluator
from . import checkpoint as ckpt
from .curve import TrainingCurve, make_loggers, write_panel
from .fast import FastPath, fast_enabled
from .plugins import Augment, ImageCount, OptimizerReset, StepBudget, Warmup
from .strategy import Base, build_strategy

__all__ = ["resolve_device", "prepare_domain", "run_one"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def prepare_domain(ds: DomainSpec, cfg: RunConfig) -> tuple[PatchData, PatchData]:
    """Train and test patches of one domain of a run, prepared once per process (flows are cached on disk too)."""
    return DOMAIN_CACHE.patches(
        ds.name, ds.kind, ds.params, cfg.data_seed, dict(cfg.data_manifests).get(ds.name, ""),
        cfg.data.patch_size, cfg.data.stride, cfg.data.pad, Path(cfg.data.cache_dir), cfg.data.diameter,
    )


def subset_indices(train: PatchData, subset: Subset, seed: int, cache_dir: Path | None) -> np.ndarray:
    """The training patches a redundancy run keeps: every one for 'all', else the selector's coreset."""
    if subset.selector == "all" or subset.rate >= 1.0:
        return np.arange(len(train))
    opts = embed_options(subset.embedder, subset.embedder_weights)
    feats = embed(subset.embedder, train.images, train.targets[:, 0].astype(np.int32), cache_dir=cache_dir, **opts)
    return select(feats, subset.rate, capped_bins(subset.bins, len(feats), subset.rate), subset.selector, seed=seed)


def _peak_memory(device: torch.device, peak: dict[str, float]) -> None:
    """Largest resident set of this process and, on a GPU, largest allocation, in MiB (kept across a resume)."""
    from ..core.memory import peak_rss_mib

    rss = peak_rss_mib()
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


def norm_swap_scores(strategy, model, scores: SegmentationScores, bm, states: list[dict]) -> dict[str, dict[str, list[float]]]:
    """Each earlier domain j scored by the network after experience j and the final one with their
    BatchNorm statistics swapped: the final weights with the statistics kept after experience j
    (``new_weights_old_stats``), and the weights after experience j with the final statistics
    (``old_weights_new_stats``). With R[j][j] (old, old) and R[T-1][j] (new, new) this is a 2 x 2
    of weights x statistics, so forgetting can be put down to either. ``{swap: {metric: [j < T-1]}}``;
    the network ends as it was.
    """
    final = {k: v.clone() for k, v in model.state_dict().items()}
    final_stats = norm_buffers(model)
    out = {"new_weights_old_stats": {m: [] for m in METRICS}, "old_weights_new_stats": {m: [] for m in METRICS}}
    try:
        for j, kept in enumerate(states[:-1]):
            old_stats = {k: v for k, v in kept.items() if k in final_stats}
            for swap, state in (("new_weights_old_stats", {**final, **old_stats}), ("old_weights_new_stats", {**kept, **final_stats})):
                model.load_state_dict(state)
                strategy.eval([bm.test_stream[j]])
                for m in METRICS:
                    out[swap][m].append(scores.result()[j][m])
    finally:
        model.load_state_dict(final)
    return out


def close_loggers(strategy) -> None:
    """Flush and close what the run's loggers wrote (Avalanche's TensorBoard logger has no close of its own)."""
    for logger in strategy.evaluator.loggers:
        if hasattr(logger, "writer"):
            logger.writer.close()
        elif callable(getattr(logger, "close", None)):
            logger.close()


def _scales(prepared: list[tuple[PatchData, PatchData]], cfg: RunConfig) -> dict[str, Any]:
    """The diameter every image was rescaled to, and per domain and split the smallest, median and
    largest rescaling factor (1 where nothing was rescaled)."""
    def summary(p: PatchData) -> list[float]:
        f = np.asarray(p.scales or [1.0])
        return [round(float(f.min()), 4), round(float(np.median(f)), 4), round(float(f.max()), 4)]

    return {"diameter": cfg.data.diameter,
            "factors": {p[0].domain: {"train": summary(p[0]), "test": summary(p[1])} for p in prepared}}


def _artifact(write: Callable[[], str], errors: list[str], step: Callable[[str], None]) -> list[str]:
    """``[write()]``, or ``[]`` with the reason added to ``errors``: a file that cannot be written
    after hours of training is reported with the run, never the reason the run is lost."""
    try:
        return [write()]
    except (OSError, DqclError, ValueError, RuntimeError) as err:  # matplotlib raises ValueError/RuntimeError on text
        why = one_line(str(err) or type(err).__name__, 200)
        errors.append(why)
        step(f"could not write an output file: {why}")
        return []


def run_one(
    cfg: RunConfig, on_step: Callable[[str], None] | None = None, checkpoint: Path | None = None,
    probes: tuple = (), artifacts: Path | None = None, on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and score one run; returns the result stored for it.

    With ``checkpoint`` (a file path), the run's state is saved there after every experience
    but the last, and a run that finds a checkpoint of its own key there resumes after the
    experience it holds instead of starting over. ``probes`` are Avalanche plugins added after
    all others (the contract checks watch a run through them). ``artifacts`` is the folder for
    what the spec's ``[output]`` and ``[log]`` tables ask for (saved networks, the prediction
    panel, logger files); ``on_epoch`` gets each row of the training curve as it is made.
    """
    from avalanche.training import JointTraining

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

    model = CellposeNet(cfg.model.widths, norm=cfg.model.norm, diameter=cfg.data.diameter)
    if cfg.model.init:
        load_init(model, cfg.model.init)  # checked in preflight: a mismatch never gets this far
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.train.lr, momentum=cfg.train.momentum, weight_decay=cfg.train.weight_decay
    )
    out = cfg.output
    scores = SegmentationScores(cfg.eval, keep=out.panel_patches if out.panels and artifacts else 0)
    counter = ImageCount()
    curve = TrainingCurve(on_epoch)
    budget = StepBudget(cfg.train.steps) if cfg.train.steps > 0 and cfg.subset is None else None
    plugins: list = [counter, Warmup(cfg.train.warmup_epochs, cfg.train.warmup_steps)]
    plugins += [budget] if budget else []
    plugins += [OptimizerReset()] if cfg.train.reset_optimizer else []
    plugins += [Augment(cfg.seed)] if cfg.train.augment else []
    plugins.append(curve)
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
        evaluator=make_evaluator(scores, make_loggers(cfg.log, artifacts, cfg.key) if artifacts else ()),
        seed=cfg.seed,
        plugins=plugins,
    )
    strategy = build_strategy(cfg.strategy.name, base, cfg.strategy.params)
    strategy.plugins.extend(probes)  # last: they see what every other plugin did
    joint = isinstance(strategy, JointTraining)
    if budget and joint:
        budget.steps = cfg.train.steps * n  # joint training gets the steps every experience would have had

    loader = {"num_workers": cfg.train.loader_workers, "pin_memory": fast and device.type == "cuda",
              "persistent_workers": cfg.train.loader_workers > 0}
    train_s, eval_s = [], []
    R: dict[str, list[list[float]]] = {m: [] for m in METRICS}
    phases = [bm.train_stream] if joint else list(bm.train_stream)
    states: list[dict[str, torch.Tensor]] = []  # the network (weights and statistics) after each experience
    panel: dict[int, dict[int, list]] = {}  # predicted masks of the panel's patches, after each experience
    saved_files: list[str] = []
    artifact_errors: list[str] = []  # files asked for that could not be written: reported, the run is kept
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        try:
            saved = ckpt.load(checkpoint)  # weights only: a planted pickle is refused, never run
            if saved.get("key") == cfg.key and 0 < saved.get("done", 0) < len(phases):
                ckpt.restore_strategy(strategy, saved["state"])
                start, R, baseline = saved["done"], saved["R"], saved["baseline"]
                train_s, eval_s, counter.images = saved["train_s"], saved["eval_s"], saved["images"]
                states = saved.get("states", [])
                panel = {int(i): {int(j): [m.numpy() for m in ms] for j, ms in row.items()}
                         for i, row in saved.get("panel", {}).items()}
                saved_files = saved.get("saved_files", [])
                if budget:
                    budget.steps_done = saved.get("steps", [])
                device_peak.update(saved.get("peak", {}))
                step(f"resuming after experience {start - 1}")
        except (CheckpointError, KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            # unreadable, foreign, or from other code (its plugins or tensors do not fit): set it
            # aside and start the run over, on a strategy that no half-restore has touched
            why = err if isinstance(err, CheckpointError) else f"{checkpoint}: does not fit this run ({type(err).__name__}: {err})"
            step(f"ignoring {why}")
            os.replace(checkpoint, Path(checkpoint).with_suffix(".refused"))
            close_loggers(strategy)
            return run_one(cfg, on_step, checkpoint, probes, artifacts, on_epoch)  # the file is gone: a fresh start
    try:
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
            if norm_buffers(model):
                states.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
            step(f"scoring after experience {i}")
            t = time.perf_counter()
            strategy.eval(bm.test_stream)
            eval_s.append(time.perf_counter() - t)
            for m, row in _row(scores, n).items():
                R[m].append(row)
            if scores.keep:
                panel[i] = {j: scores.kept[j] for j in range(n)}
            if artifacts is not None and (out.save_weights == "all" or out.save_weights == "final" and i == len(phases) - 1):
                # a domain name is data, never a path: the file is named by its safe stem
                name = "final.pth" if i == len(phases) - 1 else f"after_{i}_{safe_stem(cfg.ordering[i], 60)}.pth"
                saved_files += _artifact(lambda: save_cellpose(model, artifacts / name).name, artifact_errors, step)
            if checkpoint is not None and i < len(phases) - 1:
                _peak_memory(device, device_peak)
                ckpt.save(checkpoint, {
                    "key": cfg.key, "done": i + 1, "state": ckpt.strategy_state(strategy), "R": R, "baseline": baseline,
                    "train_s": train_s, "eval_s": eval_s, "images": counter.images, "peak": device_peak,
                    "states": states, "steps": budget.steps_done if budget else [], "saved_files": saved_files,
                    "panel": {str(e): {str(j): [torch.from_numpy(np.ascontiguousarray(m)) for m in ms] for j, ms in row.items()}
                              for e, row in panel.items()},
                })
                step(f"checkpoint saved after experience {i}")

        norm_swap = None
        if len(phases) > 1 and states:
            step("scoring earlier domains with weights and normalisation statistics swapped")
            t = time.perf_counter()
            loggers, strategy.evaluator.loggers = strategy.evaluator.loggers, []  # not the run's scores: not logged
            try:
                norm_swap = norm_swap_scores(strategy, model, scores, bm, states)
            finally:
                strategy.evaluator.loggers = loggers
            eval_s.append(time.perf_counter() - t)
        if panel:
            tests = [p[1] for p in prepared]
            labels = ("all domains",) if joint else cfg.ordering
            saved_files += _artifact(lambda: write_panel(artifacts / "panel.png", tests, panel, labels,
                                                         {e: {j: R["ap50"][e][j] for j in range(n)} for e in panel}).name,
                                     artifact_errors, step)
    finally:
        close_loggers(strategy)  # on every path: a failed run leaves no open writer behind either
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
        "curve": curve.rows,
        "scale": _scales(prepared, cfg),
        "files": saved_files,  # in runs/<key>/ beside the store
        **({"file_errors": artifact_errors} if artifact_errors else {}),
        "steps": budget.steps_done if budget else None,
        "norm_swap": norm_swap,
        "peak_memory_mb": device_peak,
        "resumed_from": start,
        "subset": subset_info,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),  # bit-identity needs the same hardware and the same thread count
        "fast_path": {"bf16_channels_last": fast, "compile": cfg.train.compile},
        "versions": versions(),
    }
