"""What a stored number means: a run's protocol, as one fingerprint in two parts.

- The **setting** is what every run of a study shares: the data (patch size, stride, padding,
  target diameter; each domain's kind, parameters and data manifest, which names the generator
  version or the folder's content), how the data were drawn (one draw for every seed, or each
  seed its own), the network, the training schedule (steps or epochs, batch, learning rate,
  momentum, decay, warm-up, optimiser reset, fast path), mask reconstruction, the Cellpose
  version whose flow targets trained it, and a redundancy study's subset rules (bins, embedder,
  steps). `setting` gives it as a flat mapping, field path -> canonical value.
- The **arm** is what a strategy label names: the strategy and its parameters, its memory budget
  in canonical form (`canonical_budget`), its compute mode and, for a redundancy run, the
  selector and rate. `arm` gives it.

Runs whose settings differ are never pooled or paired (`dqcl.results.entries` stops, naming the
field, or shows each setting as a study of its own); runs of one label whose arms differ are
cells of their own, each labelled by what differs (`arm_suffixes`). Every value is read from a
stored config or result, which anyone may have written: nothing here assumes a type that
`dqcl.results.shape` does not check.
"""

from __future__ import annotations

import json
from dataclasses import fields
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from ..core.text import bounded
from .schema import _ADDED_LATER, DataSpec, EvalSpec, ModelSpec, TrainSpec

__all__ = ["setting", "arm", "canonical_budget", "percent", "data_draws", "align", "differing", "describe_value", "arm_suffixes",
           "domain_records", "UNRECORDED"]

UNRECORDED = "not recorded"

# settings that change no result (where a file lies, how many loader processes feed the batches)
_NOT_PROTOCOL = {("data", "cache_dir"), ("train", "loader_workers")}
_TABLES = {"data": DataSpec, "model": ModelSpec, "train": TrainSpec, "eval": EvalSpec}
_SUBSET_SETTING = ("bins", "embedder", "embedder_weights", "steps")  # the rest (selector, rate) is the arm


def _canon(value: Any) -> Any:
    """A value in one canonical form, so that 1 and 1.0 (or a list and a tuple) compare equal and
    a bool stays a bool; dict keys sorted. A whole number is an int, exactly: 2**53 and 2**53 + 1
    stay two values (as floats they would be one), and an int too large for a float is no error."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value  # NaN and infinities are no whole numbers
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return repr(value)


def _text(value: Any) -> str:
    return json.dumps(_canon(value), sort_keys=True, allow_nan=True)


def _table(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """A config table with every setting it leaves out filled in: the default it had before the
    setting existed (`dqcl.config.schema._ADDED_LATER`), else today's default. A table stored as
    something else than an object (a list, a number) says nothing of its settings: each is that
    value, never the defaults (which would pool the run with runs that kept them)."""
    stored = cfg.get(name)
    later = {key: default for table, key, default in _ADDED_LATER if table == name}
    out = {}
    for f in fields(_TABLES[name]):
        if (name, f.name) in _NOT_PROTOCOL:
            continue
        if stored is not None and not isinstance(stored, dict):
            out[f.name] = {"unreadable table": stored}
            continue
        default = later.get(f.name, getattr(_TABLES[name](), f.name))
        out[f.name] = (stored or {}).get(f.name, default)
    for key, value in (stored.items() if isinstance(stored, dict) else ()):  # a setting this dqcl does not know
        if key not in out and (name, key) not in _NOT_PROTOCOL:
            out[str(key)] = value
    return out


def _fast(result: dict[str, Any], stored: Any) -> Any:
    """The fast path a run trained on ("on": bf16 and channels-last, "off"), as its result recorded
    it, else as ``train.fast`` and its device resolve it: "auto" is on for a GPU only, so an "auto"
    run on a GPU and one on a CPU trained at two precisions (`dqcl.train.fast.fast_enabled`)."""
    record = result.get("fast_path")
    if isinstance(record, dict) and isinstance(record.get("bf16_channels_last"), bool):
        return "on" if record["bf16_channels_last"] else "layout" if record.get("channels_last") is True else "off"
    device = result.get("device")
    if stored == "auto" and isinstance(device, str):  # a run stores "cpu" or its GPU's name
        return "off" if device == "cpu" else "on"
    return stored


def domain_records(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The domains a stored config describes, name -> its object (``kind``, ``params``): only the
    entries that are objects named by a string; a ``domains`` that is no list describes none."""
    domains = cfg.get("domains")
    out: dict[str, dict[str, Any]] = {}
    for d in domains if isinstance(domains, list) else ():
        if isinstance(d, dict) and isinstance(d.get("name"), str):
            out.setdefault(d["name"], d)
    return out


def setting(cfg: dict[str, Any], result: dict[str, Any], draw: str) -> dict[str, str]:
    """The setting of one stored run, field path -> canonical value (JSON text). ``draw`` is how the
    run's data were drawn (`data_draws`). Per-domain fields (``domains.NAME``, ``data_manifests.NAME``)
    exist only for the run's own domains (those of its ordering, "not recorded" where its config
    leaves them out, and those it describes), so runs over different orderings of a study compare on
    the domains they share. ``train.fast`` is the fast path the run trained on (`_fast`)."""
    out: dict[str, str] = {}
    for name in _TABLES:
        for key, value in _table(cfg, name).items():
            if (name, key) == ("train", "fast"):
                value = _fast(result, value)
            out[f"{name}.{key}"] = _text(value)
    # every domain the run trained on has its parameters and data, "not recorded" where its config
    # leaves them out: a run that says nothing of a domain is not pooled with runs that do
    ordering = [d for d in cfg.get("ordering") or [] if isinstance(d, str)]
    domains = domain_records(cfg)
    for name in [*ordering, *domains]:
        d = domains.get(name)
        out[f"domains.{bounded(name)}"] = _text({"kind": d.get("kind"), "params": d.get("params")} if d else UNRECORDED)
    manifests = cfg.get("data_manifests") or []
    manifests = dict(manifests) if isinstance(manifests, (list, dict)) else {}
    for name in ordering:
        out[f"data_manifests.{bounded(name)}"] = _text(UNRECORDED)
    for domain, manifest in manifests.items():
        out[f"data_manifests.{bounded(str(domain))}"] = _text(manifest)
    out["data draw"] = _text(draw)
    versions = result.get("versions") if isinstance(result.get("versions"), dict) else {}
    out["cellpose"] = _text(str(versions.get("cellpose") or UNRECORDED))
    subset = cfg.get("subset")
    if isinstance(subset, dict):
        for key in _SUBSET_SETTING:
            out[f"subset.{key}"] = _text(subset.get(key))
    return out


def canonical_budget(cfg: dict[str, Any], resolve: bool = True) -> dict[str, Any] | None:
    """The memory budget of a run's config in canonical form (``size`` int, ``rate`` float,
    ``protocol``, ``replay_batch``, ``compute``), or None: no ``[memory]`` table, or a strategy that
    keeps no bounded memory (neither a size nor a rate). ``resolve``: a replay minibatch of 0 is read
    as the batch size it means (two budgets that say it both ways are one); else it stays 0, as given."""
    m = cfg.get("memory")
    if not isinstance(m, dict) or not ((m.get("size") or 0) > 0 or (m.get("rate") or 0) > 0):
        return None
    batch = (cfg.get("train") or {}).get("batch_size") if isinstance(cfg.get("train"), dict) else None
    rb = int(m.get("replay_batch") or 0)
    if resolve and not rb and isinstance(batch, int) and not isinstance(batch, bool):
        rb = batch
    return {"size": int(m.get("size") or 0), "rate": float(m.get("rate") or 0.0), "protocol": bounded(str(m.get("protocol", "mix")), 40),
            "replay_batch": rb, "compute": bounded(str(m.get("compute", "appended")), 40)}


def arm(cfg: dict[str, Any]) -> dict[str, Any]:
    """The arm of one stored run: what its strategy label stands for."""
    strategy = cfg.get("strategy") if isinstance(cfg.get("strategy"), dict) else {}
    subset = cfg.get("subset") if isinstance(cfg.get("subset"), dict) else {}
    memory = cfg.get("memory") if isinstance(cfg.get("memory"), dict) else {}
    return {"strategy": strategy.get("name"), "params": _canon(strategy.get("params")), "budget": _canon(canonical_budget(cfg)),
            "compute": bounded(str(memory.get("compute") or "appended"), 40),
            "subset": _canon([subset.get("selector"), subset.get("rate")]) if subset else None}


def percent(rate: float) -> str:
    """A rate as a percentage written exactly, with no rounding that could make two rates print
    alike: 0.3 -> "30", 0.2999999 -> "29.99999", 0.05 -> "5"."""
    try:
        d = (Decimal(repr(float(rate))) * 100).normalize()
    except (InvalidOperation, ValueError, OverflowError):
        return str(rate)
    return format(d, "f")


def data_draws(runs: Iterable[tuple[Any, int, Any]]) -> dict[Any, str]:
    """How each run of one study drew its data, from (run id, seed, data seed) triples: "each seed its
    own" (``data_seed = "per_seed"``: the data seed is the run's seed) or "data seed N" (one draw for
    every seed). A run whose data seed equals its seed is a per-seed run, unless the study also holds
    runs drawn with that data seed for other seeds: then it is one of those (a study of data seed 0
    and seeds 0, 1, 2). A run that recorded no data seed (None): "not recorded"."""
    runs = list(runs)
    fixed = {data_seed for _, seed, data_seed in runs if data_seed is not None and data_seed != seed}
    return {rid: UNRECORDED if data_seed is None else f"data seed {data_seed}" if data_seed != seed or data_seed in fixed
            else "each seed its own" for rid, seed, data_seed in runs}


def align(settings: list[dict[str, str]]) -> None:
    """Give every run of ``settings`` (one per run of a study) each setting of a config table that
    some other run stores and it does not (one that a later dqcl added and this one does not know):
    "not recorded", its default being unknown here. The per-domain and subset fields stay as they
    are: a run has them for its own domains, and only where it is a redundancy run."""
    extra = {key for s in settings for key in s if key.partition(".")[0] in _TABLES}
    for s in settings:
        for key in extra - s.keys():
            s[key] = _text(UNRECORDED)


def differing(settings: list[dict[str, str]]) -> list[str]:
    """The fields of ``settings`` (one per run) that hold more than one value among the runs that have them."""
    seen: dict[str, set[str]] = {}
    for s in settings:
        for key, value in s.items():
            seen.setdefault(key, set()).add(value)
    return sorted(key for key, values in seen.items() if len(values) > 1)


def describe_value(text: str, limit: int = 60) -> str:
    """A canonical value (JSON text) as a reader would write it: 250 not 250.0, text without quotes,
    except text that would read as another value ("250", "true", "null"), which keeps them."""
    try:
        value = json.loads(text)
    except ValueError:
        return bounded(text, limit)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):  # quoted where it would read as a number, true, null, a list...: "250" is not 250
        return bounded(json.dumps(value, ensure_ascii=False) if _reads_as_json(value) else value, limit)
    if isinstance(value, list):
        return bounded("[" + ", ".join(describe_value(json.dumps(v), limit) for v in value) + "]", limit)
    return bounded(json.dumps(value, sort_keys=True), limit)


def _reads_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _params_text(params: Any, keys: list[str]) -> str:
    params = params if isinstance(params, dict) else {}
    return ", ".join(f"{k} {describe_value(json.dumps(params.get(k)))}" for k in keys)


def arm_suffixes(arms: list[dict[str, Any]], budgets: list[str | None]) -> list[str]:
    """For the arms of one strategy label (all different), the text each one's label gets after the
    label, saying what tells it apart from the others: its budget in brackets ("[32 patches, 2 per
    step, matched]", as ``budgets`` writes each arm's; "[own memory]" where it has none), its compute
    ("(compute matched)"), its strategy and parameters ("(ewc_lambda 100)"). Two arms that would
    still print alike get their place among the arms, so no two labels are ever the same."""
    differ = {k for k in ("strategy", "params", "budget", "compute") if len({_text(a.get(k)) for a in arms}) > 1}
    param_keys: list[str] = []
    if "params" in differ:
        keys = sorted({k for a in arms if isinstance(a.get("params"), dict) for k in a["params"]})
        param_keys = [k for k in keys if len({_text((a.get("params") or {}).get(k)) for a in arms}) > 1]
    out = []
    for a, budget in zip(arms, budgets):
        parts = []
        if "budget" in differ:
            parts.append(f" [{budget or 'own memory'}]")
        if "compute" in differ and not ("budget" in differ and a.get("budget")):
            parts.append(f" (compute {a['compute']})")
        what = [describe_value(json.dumps(a.get("strategy")))] if "strategy" in differ else []
        if param_keys:
            what.append(_params_text(a.get("params"), param_keys))
        if what:
            parts.append(f" ({', '.join(w for w in what if w)})")
        out.append("".join(parts))
    if len(set(out)) < len(out):  # what differs printed alike (a parameter cut short): number them
        out = [f"{s} #{i + 1}" for i, s in enumerate(out)]
    return out
