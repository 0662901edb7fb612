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

from ..config.protocol import align, arm, arm_suffixes, canonical_budget, data_draws, describe_value, differing, percent, setting
from ..core.text import bounded, quoted
from ..errors import DqclError
from ..evaluation.metrics import METRICS
from .cl_metrics import cl_metrics, forgetting_by_distance, intransigence
from .store import Store

__all__ = ["budget_of", "budget_text", "cells", "compute_of", "curve_runs", "entries", "naive_label", "rows_of"]


def budget_of(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The memory budget of a run's config in canonical form (`dqcl.config.protocol.canonical_budget`:
    ``size``, ``rate``, ``protocol``, ``replay_batch`` ``compute``), or
    None: no ``[memory]`` table, or a strategy that keeps no bounded memory. The replay minibatch stays
    as the spec gave it (0: the batch size)."""
    return canonical_budget(cfg, resolve=False)


def budget_text(b: dict[str, Any], short: bool = False) -> str:
    """A budget in words, "memory 32 patches, replayed by minibatch, replay minibatch 4, compute matched",
    or ``short`` for a label or a figure's legend, "32 patches, 4 per step, matched" (a replay minibatch
    under the mix protocol, "mixed in, 4 per step", is what DER++, A-GEM and GEM take each step). Rates
    are written exactly (`dqcl.config.protocol.percent`), so two budgets never print alike."""
    rate = f"{percent(b['rate'])} %"
    held = f"{b['size']:,} patches" if b["size"] > 0 else rate + ("" if short else " of each earlier domain")
    rb = b["replay_batch"]
    if short:
        how = {"mix": "mixed in" + (f", {rb} per step" if rb else ""),
               "batch": f"{rb or 'a batch'} per step"}.get(b["protocol"], b["protocol"])
        return f"{held}, {how}, {b['compute']}"
    how = {"mix": "mixed into the training set", "batch": "replayed by minibatch"}.get(b["protocol"], f"protocol {b['protocol']}")
    return f"memory {held}, {how}, replay minibatch {rb or 'of the batch size'}, compute {b['compute']}"


def compute_of(cfg: dict[str, Any]) -> str:
    """How a run's batches were made: "matched" (memory samples replace part of the batch, short
    batches dropped) or "appended" (the default, and every run without a [memory] table)."""
    m = cfg.get("memory") if isinstance(cfg.get("memory"), dict) else {}
    return bounded(str(m.get("compute") or "appended"), 40)


def naive_label(labels, compute: str | None) -> str:
    """The label of the naive runs that runs at ``compute`` are compared with: "naive", or "naive
    (compute matched)" / "naive (compute appended)" where a study ran naive at both computes (each
    is a cell of its own, `dqcl.config.protocol.arm_suffixes`)."""
    split = f"naive (compute {compute or 'appended'})"
    return split if "naive" not in labels and split in labels else "naive"


def cells(runs: list[dict[str, Any]], split_protocols: bool = False) -> list[dict[str, Any]]:
    """The stored runs a leaderboard shows, each with the study, label and data draw it is shown under
    (``study``, ``label``, ``draw``) and why it broke its protocol (``broken``, `dqcl.results.invariants`;
    None for a run that kept it), oldest first.

    - **One run per cell and seed.** A cell is a study's (strategy label, ordering, arm): runs of one
      label whose arms differ (`dqcl.config.protocol.arm`: strategy parameters, memory budget, compute,
      subset) are cells of their own, labelled by what tells them apart; of the runs of one cell and
      seed the newest is kept, so a study rerun after a change of its data or spec replaces what it
      ran before.
    - **One setting per study.** The runs kept must share their setting (`dqcl.config.protocol.setting`):
      a study whose runs differ in it (a partial rerun on new data or another data seed, runs from
      another Cellpose, other steps) is refused with a `ProtocolError` naming the field and runs, or,
      with ``split_protocols``, each setting becomes a study of its own, named by its values of the
      fields that differ ("study (cellpose 3.1.1.3)"). Never are two settings pooled."""
    keep: dict[str, dict[str, Any]] = {}
    for run in runs:  # oldest first: a newer run of a cell and seed replaces an older one
        cfg = run["config"]
        ident = [cfg["study"], cfg["strategy"]["label"], list(cfg["ordering"]), cfg["seed"], arm(cfg)]
        keep[json.dumps(ident, sort_keys=True)] = run
    kept = list(keep.values())
    by_study: dict[str, list[dict]] = defaultdict(list)
    for run in kept:
        by_study[run["config"]["study"]].append(run)
    out: dict[str, dict] = {}
    names: dict[tuple[str, str], str] = {}  # (study, its values of the fields that differ) -> the name it is shown under
    groups: dict[str, tuple[str, str]] = {}
    for study, mine in by_study.items():
        draws = data_draws((r["key"], r["config"]["seed"], _data_seed(r["config"])) for r in mine)
        settings = {r["key"]: setting(r["config"], r["result"], draws[r["key"]]) for r in mine}
        align(list(settings.values()))
        differ = differing(list(settings.values()))
        if differ and not split_protocols:
            raise _mixed(study, differ[0], mine, settings)
        for r in mine:
            s = settings[r["key"]]
            parts = [f"{_field_words(f)} {describe_value(s[f], 40)}" for f in differ if f in s]
            groups[r["key"]] = group = (study, json.dumps([[f, s[f]] for f in differ if f in s]))
            names[group] = bounded(f"{study} ({', '.join(parts)})" if parts else study)
            out[r["key"]] = {**r, "draw": draws[r["key"]], "setting": s}
    shown_as = _distinct_names(names)
    for key, r in out.items():
        r["study"] = shown_as[groups[key]]
    shown = [out[r["key"]] for r in kept]
    _label(shown)
    from .invariants import broken_runs

    broken = broken_runs(shown, budget_of, compute_of)
    for r in shown:
        r["broken"] = broken.get(r["key"])
    return shown


def _distinct_names(names: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """One name per (study, setting) that no other shows: a study shown as it is keeps its name; a
    setting of a split study whose name another already has (a study stored as "p (cellpose 3.1.1.3)",
    two values that print alike) gets the first free " #2", " #3", ..., so no two settings are ever
    one study of a table, figure, health line or claim."""
    whole = {group: name for group, name in names.items() if group[1] == "[]"}  # not split: named as stored
    taken = set(whole.values())
    out = dict(whole)
    for group, name in sorted(((g, n) for g, n in names.items() if g[1] != "[]"), key=lambda gn: (gn[1], gn[0])):
        candidate, i = name, 1
        while candidate in taken:
            i += 1
            candidate = bounded(f"{name} #{i}")  # within NAME_LIMIT: no table cuts the number off
        taken.add(candidate)
        out[group] = candidate
    return out


def _data_seed(cfg: dict[str, Any]) -> int | str | None:
    """A stored run's data seed: an integer as dqcl stores it; anything else a store may hold, as text."""
    ds = cfg.get("data_seed")
    return ds if ds is None or isinstance(ds, int) and not isinstance(ds, bool) else bounded(repr(ds), 40)


def _field_words(field: str) -> str:
    """A setting field as a sentence names it: "data_manifests.mine" -> "the data of domain 'mine'"."""
    table, _, rest = field.partition(".")
    if table == "data_manifests":
        return f"the data of domain {quoted(rest)!r}"
    if table == "domains":
        return f"the parameters of domain {quoted(rest)!r}"
    return quoted(field)


def _mixed(study: str, field: str, runs: list[dict[str, Any]], settings: dict[str, dict[str, str]]) -> DqclError:
    """The one line that refuses a study whose runs differ in ``field`` of their setting."""
    from ..errors import ProtocolError

    groups: dict[str, list[str]] = defaultdict(list)
    for r in runs:
        if field in settings[r["key"]]:
            groups[settings[r["key"]][field]].append(r["key"])
    shown = "; ".join(f"{quoted(describe_value(v, 32))} in {len(keys)} run(s), e.g. run {quoted(keys[0], 24)}"
                      for v, keys in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:2])
    return ProtocolError(
        f"study {quoted(study)!r}: its runs differ in {_field_words(field)} ({shown}); one study is one protocol, never "
        "pooled: rerun the older runs, or pass --split-protocols to show each protocol as a study of its own")


def _label(runs: list[dict[str, Any]]) -> None:
    """Give every run its ``label``: the spec's strategy label, followed where a study's label stands
    for several arms by what tells its arm apart (`dqcl.config.protocol.arm_suffixes`). Redundancy runs
    (a subset) keep their label: their selector and rate are columns of their own."""
    arms: dict[tuple[str, str], dict[str, tuple[dict, str | None]]] = defaultdict(dict)
    for r in runs:
        if not r["config"].get("subset"):
            a, b = arm(r["config"]), budget_of(r["config"])
            arms[(r["study"], r["config"]["strategy"]["label"])][json.dumps(a, sort_keys=True)] = (a, b and budget_text(b, short=True))
    suffix: dict[tuple[str, str, str], str] = {}
    for (study, label), by_text in arms.items():
        if len(by_text) > 1:
            found = list(by_text.values())
            for text, s in zip(by_text, arm_suffixes([a for a, _ in found], [b for _, b in found])):
                suffix[(study, label, text)] = s
    cells_of: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)  # (study, label shown) -> (label, arm) of its cells
    for r in runs:
        label = r["config"]["strategy"]["label"]
        text = json.dumps(arm(r["config"]), sort_keys=True)
        # within NAME_LIMIT as a whole, so that no table cuts off what tells the arm apart
        r["label"] = bounded(bounded(label) + suffix.get((r["study"], label, text), ""))
        if not r["config"].get("subset"):
            cells_of[(r["study"], r["label"])].add((label, text))
    # a label that two cells print alike (a spec's label "replay [32 patches, 2 per step, matched]" beside
    # label "replay" at that budget and another): the cell whose own label it is keeps it, the others get
    # the first free " #2", " #3", ...; never are two cells one row of a table
    renamed: dict[tuple[str, str, str], str] = {}
    taken = set(cells_of)
    for (study, shown), cells_ in sorted(cells_of.items()):
        if len(cells_) < 2:
            continue
        for label, text in sorted(cells_, key=lambda c: (bounded(c[0]) != shown, c))[1:]:
            i = 2
            while (study, bounded(f"{shown} #{i}")) in taken:
                i += 1
            taken.add((study, bounded(f"{shown} #{i}")))
            renamed[(study, label, text)] = bounded(f"{shown} #{i}")
    for r in runs:
        if not r["config"].get("subset"):
            r["label"] = renamed.get((r["study"], r["config"]["strategy"]["label"], json.dumps(arm(r["config"]), sort_keys=True)),
                                     r["label"])


def _stores_outputs(name: str) -> bool:
    """Whether strategy ``name`` keeps the network's outputs beside each memory patch (DER++), as it declares."""
    try:
        from ..config.strategies import strategy_entry

        return bool(getattr(strategy_entry(name).factory, "stores_outputs", False))
    except Exception:  # a strategy this dqcl does not know (a store from elsewhere): only a byte count depends on it
        return False


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
        patch = (cfg.get("data") or {}).get("patch_size") if isinstance(cfg.get("data"), dict) else None
        if isinstance(out["memory_held"], int) and isinstance(patch, int) and not isinstance(patch, bool):
            # a held patch is its image (1 channel) and targets (4), float32; DER++ keeps its 3 output maps too
            channels = 1 + 4 + (3 if _stores_outputs(cfg["strategy"]["name"]) else 0)
            out["memory_bytes"] = out["memory_held"] * patch * patch * channels * 4
        shares = [x for x in ((res["memory"] or {}).get("old_share") or [])[1:] if isinstance(x, (int, float))]
        if shares:  # recorded from issue 27 on: the mean share of memory holding earlier domains, over the later experiences
            out["memory_old_share"] = float(np.mean(shares))
    if res.get("compute") is not None:
        out["samples_per_step"] = res["compute"].get("samples_per_step")
        out["backward"] = res["compute"].get("backward")  # every sample backpropagated over the run (reference passes too)
        if res["compute"].get("reference_backward") and res["compute"].get("steps"):
            # A-GEM's and GEM's reference passes at the papers' sizes: compute apart from the batch, per step
            out["reference_per_step"] = res["compute"]["reference_backward"] / res["compute"]["steps"]
    if res.get("data") is not None:
        out["test_objects"] = {bounded(d): r.get("test_objects") for d, r in res["data"].items()}
        out["train_hashes"] = {bounded(d): r.get("train_hash") for d, r in res["data"].items()}
        out["train_patches"] = {bounded(d): r.get("train_patches") for d, r in res["data"].items()}
        out["batch_size"] = (cfg.get("train") or {}).get("batch_size")
    return out


def entries(store: Store, study: str | None = None, split_protocols: bool = False) -> list[dict[str, Any]]:
    """One entry per (stored run, metric) of the runs a leaderboard shows (`cells`), each with
    ``broken``: why the run broke its protocol (`dqcl.results.invariants`), or None. A study whose
    runs differ in their setting raises `ProtocolError` unless ``split_protocols``."""
    return rows_of(cells(list(store.runs(study)), split_protocols))


def rows_of(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of runs as `cells` gives them (one per run and metric), each with its intransigence
    against the joint run of its study, ordering and seed where there is one (`_intransigence`)."""
    return _intransigence(_rows(runs))


def _intransigence(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry's intransigence (`dqcl.results.cl_metrics.intransigence`): joint's final scores are those
    of the study's joint run of the same ordering, seed and metric (the label "joint", or the one run of
    strategy joint there); None where there is none. A broken joint run is no reference."""
    joint: dict[tuple, list[float]] = {}
    for e in rows:
        if e["strategy_name"] == "joint" and not e["broken"] and len(e["R"]) == 1:
            joint.setdefault((e["study"], tuple(e["ordering"]), e["seed"], e["metric"]), e["R"][-1])
    for e in rows:
        ref = joint.get((e["study"], tuple(e["ordering"]), e["seed"], e["metric"]))
        e["intransigence"] = intransigence(e["R"], ref) if ref is not None else None
        e["forgetting_by_distance"] = forgetting_by_distance(e["R"])
    return rows


def _rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        cfg, res = run["config"], run["result"]
        for metric in METRICS:
            R, base = res["R"][metric], res["baseline"][metric]
            out.append(
                {
                    # names past NAME_LIMIT (a spec refuses them; a store someone sent may hold them) are cut
                    # here, once, so no table, file or figure pays for a name of a million characters
                    "study": run["study"],
                    "strategy": run["label"],
                    "strategy_name": bounded(cfg["strategy"]["name"]),
                    "params": cfg["strategy"]["params"],
                    "train_lr": (cfg.get("train") or {}).get("lr"),  # the learning rate of a strategy that sets none
                    "schedule": (cfg.get("train") or {}).get("schedule") or "constant",  # the lr after warm-up
                    # where `dqcl tune` chose the params: its provenance (trials, validation share, space, file)
                    "tuned": cfg["strategy"].get("tuned") if isinstance(cfg["strategy"].get("tuned"), dict) else None,
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
                    "cellpose": bounded(str((res.get("versions") or {}).get("cellpose") or "not recorded")),
                    "data_draw": run["draw"],
                    "data_manifests": {bounded(str(d)): bounded(str(m)) for d, m in dict(cfg.get("data_manifests") or []).items()},
                    "model_sha256": res.get("model_sha256"),
                    "steps": res.get("steps"),
                    # a run with no step budget trains [train] epochs over each experience's data
                    "epochs": _epochs(cfg, res),
                    "diverged": _diverged(res.get("curve")),
                    **_norm_swap(R, res.get("norm_swap"), metric),
                    **_recorded(cfg, res),
                    "compute": compute_of(cfg),
                    "broken": run["broken"],
                    "created": run.get("created"),
                }
            )
    return out


def _epochs(cfg: dict[str, Any], res: dict[str, Any]) -> Any:
    """[train] epochs for a run with no step budget (none recorded, none set), else None: its steps say it."""
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    steps = train.get("steps")
    if res.get("steps") or (isinstance(steps, (int, float)) and not isinstance(steps, bool) and steps > 0):
        return None
    return train.get("epochs")


def _diverged(curve: list[dict] | None) -> int | None:
    """The first experience whose training loss became NaN or infinite, or None."""
    for row in curve or []:
        if row["loss"] is None or not math.isfinite(row["loss"]):  # null: stored as such, not finite
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


def curve_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training curve of each run `cells` gives that kept its protocol (continual runs only),
    with its study, label and ordering."""
    return [{"study": r["study"], "strategy": r["label"], "ordering": [bounded(d) for d in r["config"]["ordering"]],
             "curve": r["result"].get("curve"), "compute": compute_of(r["config"]),
             **({"memory": budget_of(r["config"])} if "memory" in r["config"] else {})}
            for r in runs if r["result"].get("curve") and not r["config"].get("subset") and not r["broken"]]
