"""Leaderboard entries from stored runs: one per (run, metric), the newest run of each cell.

An entry holds the run's R matrix, baseline row, continual-learning summaries, cost and
provenance, with every name from the store cut to NAME_LIMIT characters. A run that recorded
them (dqcl 0.4 on) adds its memory budget (``memory``, ``memory_budget``), the patches it held
(``memory_held``), its samples per optimiser step (``samples_per_step``) and the test objects and
training-data hashes and patch counts of each domain (``test_objects``, ``train_hashes``,
``train_patches``) with the batch size (``batch_size``); an older run's entry
has none of these keys.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

import numpy as np

from ..core.text import bounded, quoted
from ..evaluation.metrics import METRICS
from .cl_metrics import cl_metrics
from .store import Store

__all__ = ["budget_of", "budget_text", "check_data", "compute_of", "entries", "naive_label"]


def budget_of(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The memory budget of a run's config (``size`` or ``rate``, ``protocol``, ``replay_batch``,
    ``compute``, as `dqcl.config.schema.MemorySpec` stores them), or None: no ``[memory]`` table, or
    a strategy that keeps no bounded memory (its table holds neither a size nor a rate)."""
    m = cfg.get("memory")
    if not m or not ((m.get("size") or 0) > 0 or (m.get("rate") or 0) > 0):
        return None
    return {"size": int(m.get("size") or 0), "rate": float(m.get("rate") or 0.0), "protocol": bounded(str(m.get("protocol", "mix")), 40),
            "replay_batch": int(m.get("replay_batch") or 0), "compute": bounded(str(m.get("compute", "appended")), 40)}


def budget_text(b: dict[str, Any], short: bool = False) -> str:
    """A budget in words, "memory 32 patches, replayed by minibatch, replay minibatch 4, compute matched",
    or ``short`` for a figure's legend, "32 patches, 4 per step, matched" ("mixed in" for the mix protocol,
    whose replay minibatch plays no part)."""
    rate = f"{100 * b['rate']:g} %"
    held = f"{b['size']:,} patches" if b["size"] > 0 else rate + ("" if short else " of each earlier domain")
    rb = b["replay_batch"]
    if short:
        how = {"mix": "mixed in", "batch": f"{rb or 'a batch'} per step"}.get(b["protocol"], b["protocol"])
        return f"{held}, {how}, {b['compute']}"
    how = {"mix": "mixed into the training set", "batch": "replayed by minibatch"}.get(b["protocol"], f"protocol {b['protocol']}")
    return f"memory {held}, {how}, replay minibatch {rb or 'of the batch size'}, compute {b['compute']}"


def _latest(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each strategy x ordering x seed (x subset, x memory budget) of a study, its newest run: a
    study rerun after an upgrade or a change of its spec or data replaces what it ran before, while
    the runs of one strategy at each of several memory budgets are cells of their own."""
    keep: dict[str, dict] = {}
    for run in runs:  # oldest first
        cfg = run["config"]
        sub = cfg.get("subset") or {}
        ident = [cfg["study"], cfg["strategy"]["label"], list(cfg["ordering"]), cfg["seed"], sub.get("selector"), sub.get("rate")]
        budget = budget_of(cfg)
        # a strategy without a budget run at compute matched (short batches dropped) beside its runs
        # at compute appended is a cell of its own, not a rerun of them
        matched = budget is None and compute_of(cfg) == "matched"
        keep[json.dumps(ident + ([budget] if budget else []) + (["compute matched"] if matched else []))] = run
    return list(keep.values())


def compute_of(cfg: dict[str, Any]) -> str:
    """How a run's batches were made: "matched" (memory samples replace part of the batch, short
    batches dropped) or "appended" (the default, and every run without a [memory] table)."""
    return bounded(str((cfg.get("memory") or {}).get("compute") or "appended"), 40)


def naive_label(labels, compute: str | None) -> str:
    """The label of the naive runs that runs at ``compute`` are compared with: "naive", or "naive
    (compute matched)" / "naive (compute appended)" where a study ran naive at both (`_split_computes`)."""
    split = f"naive (compute {compute or 'appended'})"
    return split if "naive" not in labels and split in labels else "naive"


def _split_computes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A strategy label without a budget that a study ran at both computes (naive beside replay at
    compute appended and at compute matched) gets its compute after its label, "naive (compute
    matched)", so no table, figure or claim pools the two; labels run at one compute stay as they are."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in rows:
        if not e.get("memory"):
            seen[(e["study"], e["strategy"])].add(e["compute"])
    split = {k for k, computes in seen.items() if len(computes) > 1}
    return [{**e, "strategy": f"{e['strategy']} (compute {e['compute']})"} if not e.get("memory") and (e["study"], e["strategy"]) in split
            else e for e in rows]


def _recorded(cfg: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    """What a run of dqcl 0.4 on records beside its scores: its memory budget, the patches it held
    at most, its samples per step, and per domain its test objects and training-data hash. Only the
    keys the run has: an older run's entry stays as it was."""
    out: dict[str, Any] = {}
    if "memory" in cfg:
        budget = budget_of(cfg)
        out["memory"] = budget
        out["memory_budget"] = budget_text(budget) if budget else None
    if "memory" in res:
        out["memory_held"] = (res["memory"] or {}).get("max_held")
    if res.get("compute") is not None:
        out["samples_per_step"] = res["compute"].get("samples_per_step")
    if res.get("data") is not None:
        out["test_objects"] = {bounded(d): r.get("test_objects") for d, r in res["data"].items()}
        out["train_hashes"] = {bounded(d): r.get("train_hash") for d, r in res["data"].items()}
        out["train_patches"] = {bounded(d): r.get("train_patches") for d, r in res["data"].items()}
        out["batch_size"] = (cfg.get("train") or {}).get("batch_size")
    return out


def entries(store: Store, study: str | None = None) -> list[dict[str, Any]]:
    """One entry per (stored run, metric); a run superseded by a newer run of the same cell is left out."""
    out = []
    for run in _latest(list(store.runs(study))):
        cfg, res = run["config"], run["result"]
        for metric in METRICS:
            R, base = res["R"][metric], res["baseline"][metric]
            out.append(
                {
                    # names past NAME_LIMIT (a spec refuses them; a store someone sent may hold them) are cut
                    # here, once, so no table, file or figure pays for a name of a million characters
                    "study": bounded(cfg["study"]),
                    "strategy": bounded(cfg["strategy"]["label"]),
                    "strategy_name": bounded(cfg["strategy"]["name"]),
                    "params": cfg["strategy"]["params"],
                    "ordering": [bounded(d) for d in cfg["ordering"]],
                    "seed": cfg["seed"],
                    "metric": metric,
                    "R": R,
                    "baseline": [None if v is None or math.isnan(v) else v for v in base],
                    **cl_metrics(R, base),
                    "run": bounded(run["key"]),
                    "selector": (cfg.get("subset") or {}).get("selector"),
                    "rate": (cfg.get("subset") or {}).get("rate"),
                    "subset_size": (res.get("subset") or {}).get("size"),
                    "train_s": float(sum(res["timings"]["train_s"])),
                    "total_s": float(res["timings"]["total_s"]),
                    "images_seen": res.get("images_seen"),
                    "device": res.get("device"),
                    "peak_host_mb": (res.get("peak_memory_mb") or {}).get("host"),
                    "peak_gpu_mb": (res.get("peak_memory_mb") or {}).get("gpu"),
                    "attempts": res.get("attempts", 1),
                    "executor": res.get("executor", "local"),
                    "version": cfg.get("version"),
                    "commit": (res.get("versions") or {}).get("dqcl_commit"),
                    "data_manifests": {bounded(str(d)): bounded(str(m)) for d, m in dict(cfg.get("data_manifests") or []).items()},
                    "model_sha256": res.get("model_sha256"),
                    "steps": res.get("steps"),
                    "diverged": _diverged(res.get("curve")),
                    **_norm_swap(R, res.get("norm_swap"), metric),
                    **_recorded(cfg, res),
                    "compute": compute_of(cfg),
                }
            )
    return _split_computes(out)


def _diverged(curve: list[dict] | None) -> int | None:
    """The first experience whose training loss became NaN or infinite, or None."""
    for row in curve or []:
        if not math.isfinite(row["loss"]):
            return int(row["experience"])
    return None


def _norm_swap(R: list[list[float]], swap: dict | None, metric: str) -> dict[str, float | None]:
    """Means over earlier domains j of the 2 x 2 of weights x BatchNorm statistics (see
    `dqcl.train.run.norm_swap_scores`): before = R[j][j], after = R[T-1][j], and the two swaps."""
    if not swap or len(R) < 2 or len(R) != len(R[0]):
        return {"before": None, "after": None, "new_weights_old_stats": None, "old_weights_new_stats": None}
    t = len(R)
    return {"before": float(np.mean([R[j][j] for j in range(t - 1)])), "after": float(np.mean([R[t - 1][j] for j in range(t - 1)])),
            "new_weights_old_stats": float(np.mean(swap["new_weights_old_stats"][metric])),
            "old_weights_new_stats": float(np.mean(swap["old_weights_new_stats"][metric]))}


def check_data(rows: list[dict[str, Any]]) -> None:
    """Refuse tables that mix runs trained or scored on different data of the same domain."""
    from ..errors import DqclError

    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in rows:
        for domain, manifest in e.get("data_manifests", {}).items():
            seen[(e["study"], domain)].add(manifest)
    for (study, domain), manifests in sorted(seen.items()):
        if len(manifests) > 1:
            raise DqclError(
                f"study {quoted(study)!r}: its runs used different data for domain {quoted(domain)!r} (manifests "
                f"{quoted(', '.join(sorted(manifests)), 200)}); rerun the older runs on the current data, give the new data "
                "another study name, or pass --allow-mixed-data"
            )


def _curve_runs(store: Store, study: str | None) -> list[dict[str, Any]]:
    """The training curve of each stored run (the newest of each cell), with its study, strategy and ordering."""
    return _split_computes([
        {"study": bounded(r["config"]["study"]), "strategy": bounded(r["config"]["strategy"]["label"]),
         "ordering": [bounded(d) for d in r["config"]["ordering"]], "curve": r["result"].get("curve"),
         "compute": compute_of(r["config"]), **({"memory": budget_of(r["config"])} if "memory" in r["config"] else {})}
        for r in _latest(list(store.runs(study))) if r["result"].get("curve") and not r["config"].get("subset")])
