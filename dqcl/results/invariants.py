"""Every stored run checked against its own protocol, after the fact.

A run has **broken its protocol** (and is kept out of every table, figure, rank and claim, and
listed with the reason) when:

- **memory**: after some experience it held more patches of earlier domains than its budget
  allows: ``size``, or ``keep_count(n, rate)`` of each domain trained so far
  (`dqcl.config.quotas`);
- **compute**: under ``compute = "matched"`` some step backpropagated other than
  ``train.batch_size`` samples (``result.compute.per_step``, the fewest and the most);
- **test = train**: a domain's test patches are its training patches (equal hashes), or hold
  some of them (``test_in_train``, counted by runs from dqcl 0.4 on);
- **data draws**: in a study where each seed draws its own data, two seeds' runs trained or were
  scored on the same draw of a domain whose draw depends on the seed (a built-in domain: a folder
  split anew chooses among few splits, and two seeds may choose alike); in a study of one draw, a run trained on
  another draw than the study's others; in either, the runs of one seed (strategies of one
  ordering) trained or were scored on different draws of a domain (a redundancy run trains on
  its subset, so only its test draw is compared).

A run is judged by the majority of its peers where they disagree: the runs whose draw differs
from the one most runs of that seed hold; of seeds that share a draw, every seed but the first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from ..config.protocol import UNRECORDED, domain_records
from ..config.quotas import quotas
from ..config.schema import TrainSpec
from ..data.domains import seed_dependent

__all__ = ["broken_runs"]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _memory(cfg: dict[str, Any], res: dict[str, Any], budget: dict[str, Any] | None) -> str | None:
    mem = res.get("memory") if isinstance(res.get("memory"), dict) else None
    if budget is None or mem is None:
        return None
    data = res.get("data") if isinstance(res.get("data"), dict) else {}
    sizes = [_int((data.get(d) or {}).get("train_patches")) for d in cfg["ordering"]]
    held = mem.get("held") if isinstance(mem.get("held"), list) else []
    # after each experience, then the most it held at any time (which no experience's budget exceeds
    # the last one's): a record whose counts per experience are missing is checked on its maximum
    checks = [(i, h, f"after experience {i + 1}") for i, h in enumerate(held)]
    checks.append((len(sizes) - 1, mem.get("max_held"), "at most"))
    for i, h, when in checks:
        if h is None:
            continue
        if budget["size"] > 0:
            allowed = budget["size"]
        elif None in sizes[: i + 1]:
            continue  # a rate budget of a run that did not record its patch counts cannot be checked
        else:
            allowed = sum(quotas(0, budget["rate"], sizes[: i + 1]))
        if h > allowed:
            return f"memory: held {h:,} patches {when}, over its budget of {allowed:,}"
    return None


def _compute(cfg: dict[str, Any], res: dict[str, Any], compute: str) -> str | None:
    per_step = (res.get("compute") or {}).get("per_step") if isinstance(res.get("compute"), dict) else None
    # a train table that leaves the batch out trained at the default, as its setting reads it
    batch = _int(cfg["train"].get("batch_size", TrainSpec.batch_size)) if isinstance(cfg.get("train"), dict) else None
    if compute != "matched" or not per_step or batch is None or list(per_step) == [batch, batch]:
        return None
    lo, hi = per_step
    return f"compute: backpropagated {lo} to {hi} samples in a step under compute matched, not the batch of {batch}"


def _disjoint(res: dict[str, Any]) -> str | None:
    data = res.get("data") if isinstance(res.get("data"), dict) else {}
    for domain, rec in sorted(data.items()):
        if not isinstance(rec, dict):
            continue
        if rec.get("train_hash") is not None and rec.get("train_hash") == rec.get("test_hash"):
            return f"test = train: domain {domain!r} was scored on its training patches"
        shared = _int(rec.get("test_in_train"))
        if shared:
            return f"test = train: {shared:,} test patch(es) of domain {domain!r} are training patches"
    return None


def _draws(runs: list[dict[str, Any]], broken: dict[str, str]) -> dict[str, str]:
    """The runs (by key) whose data draws break their study's scheme, with the reason; runs already
    ``broken`` for another reason are no one's peers.

    Under per-seed data, a seed whose training or test draw of a domain is an earlier seed's is broken
    (not for a folder split anew, whose seeds choose among few splits and may choose alike). Then each run's
    draw of each domain is compared with its peers' (under per-seed data and a domain whose draw
    depends on the seed, the runs of its seed; else every run of its study): the runs off the
    majority are broken (a tie: all of them)."""
    out: dict[str, str] = {}
    runs = [r for r in runs if r["key"] not in broken]
    by_study: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        by_study[r["study"]].append(r)
    for mine in by_study.values():
        peers: dict[tuple, dict[str, str]] = defaultdict(dict)  # (domain, split, seed or None) -> run key -> hash
        # (domain, split) -> seed -> run key -> hash, for domains each seed draws anew (not by chance alike)
        per_seed: dict[tuple[str, str], dict[int, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
        for r in mine:
            data = r["result"].get("data") if isinstance(r["result"].get("data"), dict) else {}
            subset, seed = bool(r["config"].get("subset")), r["config"]["seed"]
            kinds = domain_records(r["config"])
            for domain, rec in data.items():
                if not isinstance(rec, dict):
                    continue
                d = kinds.get(domain) or {}
                params = d.get("params") if isinstance(d.get("params"), dict) else {}
                own = r["draw"] != UNRECORDED and r["draw"] == "each seed its own" and seed_dependent(d.get("kind"), params)
                group = seed if own or r["draw"] == UNRECORDED else None
                for split in ("train", "test") if not subset else ("test",):  # a subset run trains on its subset
                    h = rec.get(f"{split}_hash")
                    if h is not None:
                        peers[(domain, split, group)][r["key"]] = h
                        # a folder split anew (resplit, holdout) chooses among few splits: two seeds may choose alike
                        if own and d.get("kind") != "folder":
                            per_seed[(domain, split)][seed][r["key"]] = h
        for (domain, split), by_seed in per_seed.items():
            first: dict[str, int] = {}
            for seed in sorted(by_seed):
                for h in set(by_seed[seed].values()):
                    first.setdefault(h, seed)
                for key, h in by_seed[seed].items():
                    if first[h] != seed:
                        did = "trained on" if split == "train" else "was scored on"
                        out.setdefault(key, f"data draws: seed {seed} {did} seed {first[h]}'s draw of domain {domain!r}, "
                                            "where each seed draws its own")
        for (domain, split, seed), hashes in peers.items():
            hashes = {k: h for k, h in hashes.items() if k not in out}
            counts = Counter(hashes.values()).most_common()
            if len(counts) > 1:
                (top, n), tie = counts[0], counts[1][1] == counts[0][1]
                whose = f"seed {seed}'s runs" if seed is not None else "the study's runs (one draw for every seed)"
                for key, h in hashes.items():
                    if tie or h != top:
                        out.setdefault(key, f"data draws: {whose} {split} on different draws of domain {domain!r}")
    return out


def broken_runs(runs: list[dict[str, Any]], budget_of, compute_of) -> dict[str, str]:
    """Run key -> why it broke its protocol, for the runs (`dqcl.results.entries.cells`) that did;
    ``budget_of`` and ``compute_of`` read a config's budget and compute as the tables do."""
    out: dict[str, str] = {}
    for r in runs:
        cfg, res = r["config"], r["result"]
        why = _memory(cfg, res, budget_of(cfg)) or _compute(cfg, res, compute_of(cfg)) or _disjoint(res)
        if why:
            out[r["key"]] = why
    out.update(_draws(runs, out))
    return out
