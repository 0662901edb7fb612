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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..config.schema import DomainSpec, RunConfig, Subset
from ..core.provenance import cpu_identity, versions
from ..core.text import one_line, safe_stem
from ..cpnet.model import (
    build_network,
    cellpose_loss,
    load_init,
    norm_buffers,
    save_cellpose,
)
from ..data.prepared import DOMAIN_CACHE
from ..data.record import data_record
from ..data.streams import PatchData, make_benchmark
from ..dq.embedders import embed, embed_options
from ..dq.selectors import capped_bins, select
from ..errors import CheckpointError, DqclError
from ..evaluation.metrics import METRICS
from ..evaluation.scores import SegmentationScores, make_evaluator
from . import checkpoint as ckpt
from .curve import TrainingCurve, make_loggers, write_panel
from .fast import FastPath, fast_enabled, layout_only
from .plugins import (
    Augment,
    ComputeCount,
    ImageCount,
    OptimizerReset,
    SkipFirst,
    StepBudget,
    Warmup,
)
from .rehearsal import Budget, MemoryContent, held_by
from .strategy import Base, build_strategy

__all__ = ["resolve_device", "prepare_domain", "run_one", "budget_of"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def prepare_domain(ds: DomainSpec, cfg: RunConfig) -> tuple[PatchData, PatchData]:
    """Train and test patches of one domain of a run, prepared once per process (flows are cached on disk too).
    With ``data.validation`` > 0 the second is a validation split held out of the training images
    (`validation_split`): the run never sees the domain's test images."""
    train, test = DOMAIN_CACHE.patches(
        ds.name, ds.kind, ds.params, cfg.data_seed, dict(cfg.data_manifests).get(ds.name, ""),
        cfg.data.patch_size, cfg.data.stride, cfg.data.pad, Path(cfg.data.cache_dir), cfg.data.diameter,
    )
    return validation_split(train, cfg.data.validation, cfg.data_seed) if cfg.data.validation > 0 else (train, test)


def validation_split(train: PatchData, share: float, data_seed: int) -> tuple[PatchData, PatchData]:
    """(train, validation): ``share`` of the training images (at least one, never all), drawn with the data
    seed, and every patch cut from them, as the validation split; whole images, so that no image has patches
    on both sides."""
    images = sorted({name.rpartition("@")[0] for name in train.names})
    if len(images) < 2:
        raise DqclError(f"domain '{train.domain}': {len(images)} training image(s), too few to hold some out for "
                        "validation (data.validation); give it more images")
    k = min(len(images) - 1, max(1, round(share * len(images))))
    held = set(np.random.default_rng([data_seed, 4099]).choice(len(images), size=k, replace=False).tolist())
    chosen = {images[i] for i in held}
    keep = [i for i, name in enumerate(train.names) if name.rpartition("@")[0] not in chosen]
    out = [i for i, name in enumerate(train.names) if name.rpartition("@")[0] in chosen]
    val = train.subset(out)
    return train.subset(keep), PatchData(val.domain, "validation", val.images, val.targets, val.names, val.scales)


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


@dataclass
class _Run:
    """One run between its phases: what was prepared and built, and what training has produced so far."""

    cfg: RunConfig
    step: Callable[[str], None]
    device: torch.device
    prepared: list[tuple[PatchData, PatchData]]
    epochs: int
    subset_info: dict[str, Any] | None
    t_start: float
    t_prepared: float
    peak: dict[str, float] = field(default_factory=dict)
    # built
    bm: Any = None
    model: Any = None
    strategy: Any = None
    scores: Any = None
    counter: Any = None
    curve: Any = None
    budget: Any = None
    compute: Any = None
    joint: bool = False
    loader: dict[str, Any] = field(default_factory=dict)
    # produced
    start: int = 0
    baseline: dict[str, list[float]] | None = None
    train_s: list[float] = field(default_factory=list)
    eval_s: list[float] = field(default_factory=list)
    R: dict[str, list[list[float]]] = field(default_factory=lambda: {m: [] for m in METRICS})
    states: list[dict[str, torch.Tensor]] = field(default_factory=list)  # the network after each experience
    panel: dict[int, dict[int, list]] = field(default_factory=dict)  # the panel's predicted masks after each experience
    saved_files: list[str] = field(default_factory=list)
    artifact_errors: list[str] = field(default_factory=list)  # files asked for that could not be written
    memory_held: list[int | None] = field(default_factory=list)  # patches of earlier domains held after each experience
    content: Any = None  # the MemoryContent plugin: the share of memory holding earlier domains, per experience

    @property
    def n(self) -> int:
        return len(self.prepared)

    @property
    def phases(self) -> list:
        return [self.bm.train_stream] if self.joint else list(self.bm.train_stream)


def _prepare(cfg: RunConfig, step: Callable[[str], None]) -> _Run:
    """Seed every generator, prepare the domains' patches and, for a redundancy run, its subset."""
    t_start = time.perf_counter()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    step("preparing data")
    prepared = [prepare_domain(ds, cfg) for ds in cfg.domains]
    _check_full_batches(cfg, prepared)
    _check_supply(cfg, prepared)
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
    return _Run(cfg, step, device, prepared, epochs, subset_info, t_start, time.perf_counter())


def _check_full_batches(cfg: RunConfig, prepared: list[tuple[PatchData, PatchData]]) -> None:
    """compute = "matched" drops every short batch, so a domain with fewer training patches than its
    batch of new samples would train no step at all: refuse it, before anything is trained or stored.
    The first domain's batch is all new samples; a later one's is the batch less its memory samples
    where a replay minibatch takes part of it (`Budget.new_per_step`). Checked when the run starts:
    a domain's patch count is known only once its images are drawn and rescaled."""
    if cfg.memory.compute != "matched":
        return
    budget = budget_of(cfg)
    later = budget.new_per_step(budget.protocol == "batch") if budget else cfg.train.batch_size
    for i, (ds, (train, _)) in enumerate(zip(cfg.domains, prepared)):
        need = cfg.train.batch_size if i == 0 else later
        if len(train) < need:
            raise DqclError(f"domain '{ds.name}': {len(train)} training patches, fewer than one batch of {need} new samples; "
                            'with memory.compute = "matched" every batch is full, so it would train no step '
                            "(give it more images, or a smaller train.batch_size)")


def learning_rate(cfg: RunConfig) -> float:
    """The run's learning rate: its strategy's own ``lr`` where the spec gives one (tuned), else train.lr."""
    return float(cfg.strategy.params.get("lr", cfg.train.lr))


def _check_supply(cfg: RunConfig, prepared: list[tuple[PatchData, PatchData]]) -> None:
    """Refuse, before anything is trained or stored, a budget that cannot give this run's strategy the
    memory samples it takes every step (`dqcl.config.quotas.supply_problem`) on the patch counts this
    run drew: a rate of a small domain, or a domain smaller than its share of the memory. What the
    spec alone decides was refused where it was read (`dqcl.config.parse`)."""
    from ..config.quotas import supply_problem
    from ..config.strategies import draws_of

    budget = budget_of(cfg)
    draws = draws_of(cfg.strategy.name, cfg.strategy.params)
    if budget is None or draws is None or draws == "protocol" and budget.protocol != "batch":
        return
    problem = supply_problem(budget.size, budget.rate, budget.per_step, [len(train) for train, _ in prepared],
                             draws == "per_domain")
    if problem:
        raise DqclError(f"strategy '{cfg.strategy.label}' ({cfg.strategy.name}), memory budget {budget.describe()}, "
                        f"ordering {' > '.join(cfg.ordering)}, data seed {cfg.data_seed}: {problem}; give a larger memory "
                        "(size or rate) or a smaller memory.replay_batch")


def budget_of(cfg: RunConfig) -> Budget | None:
    """The run's memory budget (None: the spec has no [memory] table, or the strategy keeps no bounded memory)."""
    m = cfg.memory
    if m.size <= 0 and m.rate <= 0:
        return None
    return Budget(m.size, m.rate, m.protocol, m.replay_batch, m.compute, cfg.train.batch_size)


def _build(run: _Run, probes: tuple, artifacts: Path | None, on_epoch: Callable | None) -> None:
    """The Avalanche benchmark, the network, its optimiser, dqcl's plugins and the strategy."""
    from avalanche.training import JointTraining

    cfg = run.cfg
    run.bm = make_benchmark([p[0] for p in run.prepared], [p[1] for p in run.prepared])
    model = build_network(cfg.model, cfg.data)
    if cfg.model.init:
        load_init(model, cfg.model.init)  # checked in preflight: a mismatch never gets this far
    if cfg.model.arch == "cpsam":
        # Cellpose 4 trains CPSAM with AdamW (train_seg: learning_rate 5e-5, weight_decay 0.1); dqcl takes the
        # optimiser from Cellpose 4 and the rates from the spec's train.lr / train.weight_decay (README: set them)
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate(cfg), weight_decay=cfg.train.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=learning_rate(cfg), momentum=cfg.train.momentum, weight_decay=cfg.train.weight_decay
        )
    out = cfg.output
    run.scores = SegmentationScores(cfg.eval, keep=out.panel_patches if out.panels and artifacts else 0)
    run.counter = ImageCount()
    run.compute = ComputeCount()
    run.curve = TrainingCurve(on_epoch)
    run.budget = StepBudget(cfg.train.steps) if cfg.train.steps > 0 and cfg.subset is None else None
    # ComputeCount first: its step begins before any other plugin's memory pass
    plugins: list = [run.compute, run.counter, Warmup(cfg.train.warmup_epochs, cfg.train.warmup_steps, cfg.train.schedule, run.budget)]
    plugins += [run.budget] if run.budget else []
    plugins += [OptimizerReset()] if cfg.train.reset_optimizer else []
    plugins += [Augment(cfg.seed)] if cfg.train.augment else []
    plugins.append(run.curve)
    fast = fast_enabled(cfg.train.fast, run.device)
    if fast or layout_only(cfg.train.fast):  # after Augment: batches are turned, then laid out channels-last
        plugins.append(FastPath(run.device, bf16=fast))
    if cfg.train.compile:
        model.compile()  # in place: parameter names (checkpoints, EWC importances) stay as they are
    base = Base(
        model=model,
        optimizer=optimizer,
        criterion=cellpose_loss,
        train_mb_size=cfg.train.batch_size,
        train_epochs=run.epochs,
        eval_mb_size=cfg.eval.batch_size,
        device=run.device,
        evaluator=make_evaluator(run.scores, make_loggers(cfg.log, artifacts, cfg.key) if artifacts else ()),
        seed=cfg.seed,
        plugins=plugins,
        memory=budget_of(cfg),
    )
    run.model = model
    run.strategy = build_strategy(cfg.strategy.name, base, cfg.strategy.params)
    run.content = MemoryContent()
    run.strategy.plugins.append(run.content)  # after the rehearsal plugins: the memory as the step left it
    run.strategy.plugins.extend(probes)  # last: they see what every other plugin did
    run.joint = isinstance(run.strategy, JointTraining)
    if cfg.train.skip_first and not run.joint:  # joint trains once on every domain: nothing to skip
        run.strategy.plugins.insert(len(run.strategy.plugins) - len(probes), SkipFirst())
    if run.budget and run.joint:
        run.budget.steps = cfg.train.steps * run.n  # joint training gets the steps every experience would have had
    # compute matched: every step's batch is full (a short last batch would train on fewer samples)
    run.loader = {"num_workers": cfg.train.loader_workers, "pin_memory": fast and run.device.type == "cuda",
                  "persistent_workers": cfg.train.loader_workers > 0,
                  **({"drop_last": True} if cfg.memory.compute == "matched" else {})}


def _resume(run: _Run, checkpoint: Path) -> bool:
    """Take the run's state back from its checkpoint; False when the file does not fit this run (it is
    set aside as ``.refused``, and the run must start over on a freshly built strategy)."""
    try:
        saved = ckpt.load(checkpoint)  # weights only: a planted pickle is refused, never run
        if saved.get("key") == run.cfg.key and 0 < saved.get("done", 0) < len(run.phases):
            ckpt.restore_strategy(run.strategy, saved["state"])
            run.start, run.R, run.baseline = saved["done"], saved["R"], saved["baseline"]
            run.train_s, run.eval_s, run.counter.images = saved["train_s"], saved["eval_s"], saved["images"]
            run.states = saved.get("states", [])
            run.panel = {int(i): {int(j): [m.numpy() for m in ms] for j, ms in row.items()}
                         for i, row in saved.get("panel", {}).items()}
            run.saved_files = saved.get("saved_files", [])
            run.memory_held = saved.get("memory_held", [])
            run.content.shares = saved.get("old_share", [None] * run.start)
            if run.budget:
                run.budget.steps_done = saved.get("steps", [])
            run.peak.update(saved.get("peak", {}))
            run.step(f"resuming after experience {run.start - 1}")
        return True
    except (CheckpointError, KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        # unreadable, foreign, or from other code (its plugins or tensors do not fit): set it
        # aside and start the run over, on a strategy that no half-restore has touched
        why = err if isinstance(err, CheckpointError) else f"{checkpoint}: does not fit this run ({type(err).__name__}: {err})"
        run.step(f"ignoring {why}")
        os.replace(checkpoint, Path(checkpoint).with_suffix(".refused"))
        close_loggers(run.strategy)
        return False


def _score_baseline(run: _Run) -> None:
    """Row -1: the network before any training, on every test domain (not for a redundancy run)."""
    if run.start > 0:
        return
    if run.cfg.subset is None:
        run.step("scoring the network before training" if run.cfg.model.init else "scoring the random-init network")
        t = time.perf_counter()
        run.strategy.eval(run.bm.test_stream)
        run.baseline = _row(run.scores, run.n)
        run.eval_s.append(time.perf_counter() - t)
    else:
        # a redundancy run trains one domain from scratch: no transfer to measure, no baseline needed
        run.baseline = {m: [float("nan")] * run.n for m in METRICS}


def _experience(run: _Run, i: int, phase, checkpoint: Path | None, artifacts: Path | None) -> None:
    """Train experience ``i``, score every test domain (row i of R), save what is asked for, checkpoint."""
    cfg, strategy, model, last = run.cfg, run.strategy, run.model, i == len(run.phases) - 1
    run.step("training on all domains" if len(run.phases) == 1 and run.n > 1 else f"taking {cfg.ordering[i]} in without a step (train.skip_first)"
             if i == 0 and cfg.train.skip_first else f"training on {cfg.ordering[i]}")
    t = time.perf_counter()
    strategy.train(phase, **run.loader)
    run.train_s.append(time.perf_counter() - t)
    run.memory_held.append(held_by(strategy))
    if norm_buffers(model):
        run.states.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    run.step(f"scoring after experience {i}")
    t = time.perf_counter()
    strategy.eval(run.bm.test_stream)
    run.eval_s.append(time.perf_counter() - t)
    for m, row in _row(run.scores, run.n).items():
        run.R[m].append(row)
    if run.scores.keep:
        run.panel[i] = {j: run.scores.kept[j] for j in range(run.n)}
    out = cfg.output
    if artifacts is not None and (out.save_weights == "all" or out.save_weights == "final" and last):
        # a domain name is data, never a path: the file is named by its safe stem
        name = "final.pth" if last else f"after_{i}_{safe_stem(cfg.ordering[i], 60)}.pth"
        run.saved_files += _artifact(lambda: save_cellpose(model, artifacts / name).name, run.artifact_errors, run.step)
    if checkpoint is not None and not last:
        _peak_memory(run.device, run.peak)
        ckpt.save(checkpoint, {
            "key": cfg.key, "done": i + 1, "state": ckpt.strategy_state(strategy), "R": run.R, "baseline": run.baseline,
            "train_s": run.train_s, "eval_s": run.eval_s, "images": run.counter.images, "peak": run.peak,
            "states": run.states, "steps": run.budget.steps_done if run.budget else [], "saved_files": run.saved_files,
            "memory_held": run.memory_held, "old_share": run.content.shares,
            "panel": {str(e): {str(j): [torch.from_numpy(np.ascontiguousarray(m)) for m in ms] for j, ms in row.items()}
                      for e, row in run.panel.items()},
        })
        run.step(f"checkpoint saved after experience {i}")


def _finish(run: _Run, artifacts: Path | None) -> dict[str, Any] | None:
    """After the last experience: earlier domains scored with weights and statistics swapped, and the panel."""
    norm_swap = None
    strategy = run.strategy
    if len(run.phases) > 1 and run.states:
        run.step("scoring earlier domains with weights and normalisation statistics swapped")
        t = time.perf_counter()
        loggers, strategy.evaluator.loggers = strategy.evaluator.loggers, []  # not the run's scores: not logged
        try:
            norm_swap = norm_swap_scores(strategy, run.model, run.scores, run.bm, run.states)
        finally:
            strategy.evaluator.loggers = loggers
        run.eval_s.append(time.perf_counter() - t)
    if run.panel:
        tests = [p[1] for p in run.prepared]
        labels = ("all domains",) if run.joint else run.cfg.ordering
        run.saved_files += _artifact(lambda: write_panel(artifacts / "panel.png", tests, run.panel, labels,
                                                         {e: {j: run.R["ap50"][e][j] for j in range(run.n)} for e in run.panel}).name,
                                     run.artifact_errors, run.step)
    return norm_swap


def _memory_record(run: _Run) -> dict[str, Any] | None:
    """The run's memory budget and the patches of earlier domains it held after each experience."""
    budget = budget_of(run.cfg)
    held = run.memory_held
    if budget is None and not any(h is not None for h in held):
        return None
    return {"budget": budget.describe() if budget else "the strategy's own", "size": budget.size if budget else None,
            "rate": budget.rate if budget else None, "protocol": budget.protocol if budget else None,
            "replay_batch": budget.per_step if budget else None, "compute": budget.compute if budget else "appended",
            "held": held, "max_held": max((h for h in held if h is not None), default=None),
            # the share of the memory holding earlier domains while each experience trained (a reservoir holds the current one too)
            "old_share": run.content.shares}


def _result(run: _Run, norm_swap: dict | None) -> dict[str, Any]:
    cfg, device = run.cfg, run.device
    _peak_memory(device, run.peak)
    return {
        "model_sha256": _digest(run.model),
        "R": run.R,
        "baseline": run.baseline,
        "domains": list(cfg.ordering),
        "timings": {
            "prepare_s": run.t_prepared - run.t_start,
            "train_s": run.train_s,
            "eval_s": run.eval_s,
            "total_s": time.perf_counter() - run.t_start,
        },
        "images_seen": run.counter.images,
        "compute": run.compute.result(),
        "memory": _memory_record(run),
        "curve": run.curve.rows,
        "scale": _scales(run.prepared, cfg),
        "data": data_record(run.prepared),  # what was trained on and scored: hashes, patches, test objects per domain
        "files": run.saved_files,  # in runs/<key>/ beside the store
        **({"file_errors": run.artifact_errors} if run.artifact_errors else {}),
        "steps": run.budget.steps_done if run.budget else None,
        "norm_swap": norm_swap,
        "peak_memory_mb": run.peak,
        "resumed_from": run.start,
        "subset": run.subset_info,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),  # bit-identity needs the same hardware and the same thread count
        **({"cpu": cpu_identity()} if device.type == "cpu" else {}),
        "fast_path": {"bf16_channels_last": fast_enabled(cfg.train.fast, device), "compile": cfg.train.compile,
                      **({"channels_last": True} if layout_only(cfg.train.fast) else {})},
        "versions": versions(),
    }


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

    Phases: prepare (seeds, data), build (network, plugins, strategy), resume if a checkpoint
    fits, score the untrained network, train and score each experience, finish (swapped
    normalisation scores, panel), result.
    """
    versions()  # the commit as the run starts, kept for the process: the code it loaded, not one committed while it trains
    run = _prepare(cfg, on_step or (lambda msg: None))
    _build(run, probes, artifacts, on_epoch)
    if checkpoint is not None and Path(checkpoint).is_file() and not _resume(run, checkpoint):
        return run_one(cfg, on_step, checkpoint, probes, artifacts, on_epoch)  # the file is gone: a fresh start
    try:
        _score_baseline(run)
        for i, phase in enumerate(run.phases):
            if i >= run.start:
                _experience(run, i, phase, checkpoint, artifacts)
        norm_swap = _finish(run, artifacts)
    finally:
        close_loggers(run.strategy)  # on every path: a failed run leaves no open writer behind either
    return _result(run, norm_swap)
