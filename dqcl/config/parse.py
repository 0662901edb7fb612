"""Reading benchmark specs: TOML checked key by key into a `Spec`.

`load_spec` reports the first problem as one `SpecError` line naming the file and key: an
unknown key (with the closest known one), a value of the wrong type or range, an unknown
domain kind or strategy, a path leading outside the places the user named.
"""

from __future__ import annotations

import inspect
import math
import re
import tomllib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from ..core.text import name_problem, quoted
from ..core.validation import (
    confine_write,
    did_you_mean,
    env_number,
    out_of_range,
    resolve_inside,
    type_ok,
    unknown_key,
)
from ..cpnet.model import NORMS
from ..data.domains import DOMAINS
from ..data.scale import MIN_DIAMETER, diameter_range
from ..dq.embedders import EMBEDDERS
from ..dq.selectors import SELECTORS
from ..errors import RegistryError, SpecError
from .schema import (
    PER_SEED,
    DataSpec,
    DomainSpec,
    EvalSpec,
    LogSpec,
    MemorySpec,
    ModelSpec,
    OutputSpec,
    RedundancySpec,
    Spec,
    StrategySpec,
    TrainSpec,
    default_spec_path,
)
from .strategies import resolve_params

__all__ = ["load_spec", "parse_spec", "with_overrides", "with_skip_bad", "NAMED_ORDERINGS"]


_STUDY_KEYS = {"name", "seeds", "orderings", "data_seed", "device"}
SEED_MAX = 2**32 - 1
_TOP_KEYS = {"study", "data", "model", "train", "eval", "domains", "strategies", "redundancy", "output", "log", "memory"}
SAVE_WEIGHTS = ("none", "final", "all")


def _section(cls, table: Any, where: str):
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in table.items():
        if key not in known:
            raise unknown_key(where, key, known)
        default = getattr(defaults, key)
        if not type_ok(value, default):
            want = f"a list of {type(default[0]).__name__}" if isinstance(default, tuple) and default else type(default).__name__
            raise SpecError(f"{where}.{key}: expected {want}, got {quoted(repr(value))}")
        for item in value if isinstance(value, list) else (value,):
            # an integer beyond float range is refused as given, before any float conversion
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63:
                raise SpecError(f"{where}.{key}: {out_of_range(key, item, -(2**63), 2**63 - 1)}")
        if isinstance(default, tuple):
            values[key] = tuple(float(v) if default and isinstance(default[0], float) else v for v in value)
        else:
            values[key] = float(value) if isinstance(default, float) else value
    out = cls(**values)
    table = where.rpartition(": ")[2]
    for f in fields(cls):
        v = getattr(out, f.name)
        for item in v if isinstance(v, tuple) else (v,):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                key = (table, f.name)
                lo = _LOWEST.get(key, 0)
                hi, hi_open = _HIGHEST.get(key, (FLOAT32_MAX if isinstance(item, float) else None, False))
                if lo is None and isinstance(item, float):
                    lo = -FLOAT32_MAX
                problem = out_of_range(f"{table}.{f.name}", item, lo, hi, lo_open=key in _OPEN_LOW, hi_open=hi_open)
                if problem:
                    why = _WHY.get(key, " (a run computes in float32)" if hi == FLOAT32_MAX and math.isfinite(item) else "")
                    raise SpecError(f"{where.rpartition(': ')[0]}: {problem}{why}")
    return out


# each number's lowest allowed value where it is not 0 (None: any finite number)
_LOWEST = {
    ("eval", "cellprob_threshold"): None,  # Cellpose's logit threshold: -6 (more cells) to 6
    ("data", "patch_size"): 16, ("data", "stride"): 1, ("model", "widths"): 1, ("train", "epochs"): 1,
    ("train", "batch_size"): 1, ("eval", "batch_size"): 1, ("redundancy", "bins"): 1, ("redundancy", "steps"): 1,
}
# a run computes in float32 (torch): a setting beyond its range overflows where it meets a tensor (train.lr = 1e300
# stopped a run with "value cannot be converted to type float without overflow"), so no float of a spec goes past it
FLOAT32_MAX = 3.4028234663852886e38
# numbers whose lowest value is itself refused
_OPEN_LOW = {("eval", "max_size_fraction")}
# each number's highest allowed value where it has one: (table, key) -> (highest, excluded)
_HIGHEST = {("train", "momentum"): (1, True), ("train", "warmup_epochs"): (1e6, False)}
# why a bound is where it is, added to the refusal
_WHY = {
    ("eval", "max_size_fraction"): " (mask reconstruction removes every mask larger than this fraction of a patch: 0 removes all)",
    ("train", "momentum"): " (SGD with momentum 1 or more never converges; Cellpose: 0.9)",
    ("train", "warmup_epochs"): " (longer than any run trains: Cellpose trains 500 epochs and warms up over 10)",
}


def with_skip_bad(spec: Spec) -> Spec:
    """The spec with ``skip_bad = true`` in every folder domain (``dqcl run ... --skip-bad``)."""
    domains = {n: replace(d, params={**d.params, "skip_bad": True}) if d.kind == "folder" else d for n, d in spec.domains.items()}
    return replace(spec, domains=domains)


def _check_name(name: Any, where: str, what: str) -> None:
    """Names are shown in tables and figures but never become paths: refuse the ones that could."""
    if not isinstance(name, str):
        raise SpecError(f"{where}: {what} must be text, got {type(name).__name__}")
    problem = name_problem(name)
    if problem:
        raise SpecError(f"{where}: {what} {quoted(name)!r} {problem}")


def _domain(name: str, table: Any, where: str, base: Path) -> DomainSpec:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table")
    params = dict(table)
    kind = params.pop("kind", name)
    if not isinstance(kind, str):
        raise SpecError(f"{where}.kind: expected the name of a domain kind, got {kind!r}")
    try:
        factory = DOMAINS.get(kind).factory
    except RegistryError as err:
        raise SpecError(f"{where}: {err}") from None
    accepted = {n for n, p in inspect.signature(factory).parameters.items() if n != "seed"}
    for key, value in params.items():
        if key not in accepted:
            raise unknown_key(where, key, accepted | {"kind"})
        default = inspect.signature(factory).parameters[key].default
        if not type_ok(value, default):
            raise SpecError(f"{where}.{key}: expected {type(default).__name__}, got {value!r}")
        bounds = getattr(factory, "bounds", {}).get(key)
        problem = out_of_range(key, value, *bounds) if bounds else None
        if problem:
            raise SpecError(f"{where}.{problem}")
    if kind == "folder":
        stated = params.get("diameter", 0)
        if 0 < stated < MIN_DIAMETER:
            raise SpecError(f"{where}.diameter: the objects' median diameter in px is at least {MIN_DIAMETER:.2f} (an object of "
                            f"one pixel) or 0 (measured from the masks), got {stated:g}")
        if "path" not in params:
            raise SpecError(f"{where}: a 'folder' domain needs path = \"...\"")
        params["path"] = resolve_inside(params["path"], base, f"{where}.path")
        for key in ("train_dir", "test_dir"):
            sub = Path(str(params.get(key, "x")))
            if sub.is_absolute() or ".." in sub.parts:
                raise SpecError(f"{where}.{key}: must be a folder inside the domain's path, got {params[key]!r}")
        params.setdefault("name", name)
        for key, default in (("resplit", False), ("holdout", 0.0)):  # defaults, left out: the run keys of specs without them stay
            if key in params and params[key] == default:  # types were checked above
                params.pop(key)
    return DomainSpec(name, kind, params)


def _strategy(label: str, table: Any, where: str, base: Path | None = None) -> StrategySpec:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table")
    params = dict(table)
    name = params.pop("strategy", label)
    if not isinstance(name, str):
        raise SpecError(f"{where}.strategy: expected the name of a registered strategy, got {name!r}")
    provenance = None
    if "tuned" in params:  # the values `dqcl tune` chose (its JSON result); a value given beside them would hide one
        from .tuned import read_tuned

        tuned = params.pop("tuned")
        if not isinstance(tuned, str):
            raise SpecError(f"{where}.tuned: expected the path of a dqcl tune result, got {quoted(repr(tuned))}")
        file = Path(resolve_inside(tuned, base or Path.cwd(), f"{where}.tuned"))
        chosen, provenance = read_tuned(file, label, name, f"{where}.tuned")
        both = sorted(set(chosen) & set(params))
        if both:
            raise SpecError(f"{where}: {', '.join(both)} given beside tuned = {quoted(repr(tuned))}, which chose it; give one")
        params.update(chosen)
    try:
        resolved = resolve_params(name, params, where)
    except RegistryError as err:
        raise SpecError(f"{where}: {err}") from None
    return StrategySpec(label, name, resolved, provenance)


NAMED_ORDERINGS = {
    "given": "the spec's domains in the order the spec lists them",
    "reverse": "the same, reversed",
    "all": "every permutation of the spec's domains (n! orderings)",
    "latin": "a Latin square: n orderings, each domain once in each position (cyclic shifts of the given order)",
    "balanced": "a balanced Latin square (Williams design): each domain once in each position and right after each "
                "other domain once (n orderings for even n, 2n for odd n)",
    "random:K[:SEED]": "K distinct orderings drawn at random (numpy's generator, SEED, default 0)",
}


def latin_square(names: list[str]) -> list[list[str]]:
    """n orderings: each domain once in each position (the given order and its cyclic shifts)."""
    n = len(names)
    return [[names[(i + j) % n] for j in range(n)] for i in range(n)]


def balanced_square(names: list[str]) -> list[list[str]]:
    """A Williams design: each domain once in each position and immediately after every other domain once
    (for an odd n, the square and its mirror: 2n orderings)."""
    n = len(names)
    first, lo, hi = [0], 1, n - 1
    while len(first) < n:  # 0, 1, n-1, 2, n-2, ...
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    rows = [[names[(x + i) % n] for x in first] for i in range(n)]
    return rows + [row[::-1] for row in rows] if n % 2 else rows


def _random_orderings(names: list[str], text: str, source: str) -> list[list[str]]:
    """``random:K[:SEED]``: K distinct orderings drawn with numpy's generator seeded by SEED (0)."""
    import numpy as np

    parts = text.split(":")
    try:
        k, seed = int(parts[1]), int(parts[2]) if len(parts) > 2 else 0
        if len(parts) > 3 or k < 1 or not 0 <= seed < 2**32:
            raise ValueError
    except (ValueError, IndexError):
        raise SpecError(f"{source}: study.orderings: {quoted(text)!r} is not random:K or random:K:SEED "
                        "(K >= 1 orderings, SEED in [0, 2^32))") from None
    total = math.factorial(len(names))
    if k > total:
        raise SpecError(f"{source}: study.orderings: {quoted(text)!r} asks for {k:,} distinct orderings of {len(names)} domains, "
                        f"which have {total:,}")
    if k > _max_runs():
        raise SpecError(f"{source}: study.orderings: {quoted(text)!r} is more than the {_max_runs():,} runs a study may have (DQCL_MAX_RUNS)")
    rng, seen = np.random.default_rng(seed), {}
    while len(seen) < k:
        order = tuple(names[i] for i in rng.permutation(len(names)))
        seen.setdefault(order, None)
    return [list(o) for o in seen]


def _max_runs() -> int:
    """The most runs one study may expand to (``DQCL_MAX_RUNS``, default 100,000): past it a typo
    (``orderings = "all"`` over a dozen domains) is refused in preflight instead of exhausting memory."""
    return int(env_number("DQCL_MAX_RUNS", 100_000, lo=1))


def _orderings(value: Any, domains: dict[str, DomainSpec], source: str) -> list[list[str]]:
    """Explicit lists of domain names, or a named set: 'given', 'reverse', 'all' (alone or inside the list).

    Named sets are enumerated only when asked for, and 'all' only after its count (n!) is known to fit."""
    import itertools

    names = list(domains)
    named = {"given": lambda: [names], "reverse": lambda: [names[::-1]],
             "all": lambda: [list(p) for p in itertools.permutations(names)],
             "latin": lambda: latin_square(names), "balanced": lambda: balanced_square(names)}
    items = value if isinstance(value, list) else [value]
    if not items:
        raise SpecError(f"{source}: study.orderings is empty; give lists of domain names or one of {', '.join(NAMED_ORDERINGS)}")
    if "all" in items and math.factorial(len(names)) > _max_runs():
        raise SpecError(f"{source}: study.orderings = 'all' over {len(names)} domains is {math.factorial(len(names)):,} "
                        f"orderings, more than the {_max_runs():,} runs a study may have (DQCL_MAX_RUNS); list the orderings wanted")
    out: list[list[str]] = []
    for order in items:
        if isinstance(order, str) and order.startswith("random:"):
            out += _random_orderings(names, order, source)
            continue
        if isinstance(order, str):
            if order not in named:
                raise SpecError(f"{source}: study.orderings: unknown named ordering {quoted(order)!r}{did_you_mean(order, named)}; "
                                f"known: {', '.join(NAMED_ORDERINGS)}")
            out += named[order]()
            continue
        if not isinstance(order, list) or not order or not all(isinstance(d, str) for d in order):
            raise SpecError(f"{source}: study.orderings: each ordering must be a non-empty list of domain names, got {quoted(repr(order))}")
        for d in order:
            if d not in domains:
                raise SpecError(f"{source}: study.orderings names unknown domain {quoted(d)!r}{did_you_mean(d, names)}; "
                                f"the spec's domains: {', '.join(names)}")
        if len(set(order)) != len(order):
            raise SpecError(f"{source}: study.orderings: {order} repeats a domain")
        out.append(order)
    # the same ordering twice would run the same runs twice under one key
    return [list(o) for o in dict.fromkeys(tuple(o) for o in out)]


def _memory(table: Any, where: str, train: TrainSpec, strategies: dict[str, StrategySpec], longest: int = 2) -> tuple[MemorySpec, ...]:
    """The budgets of a ``[memory]`` table: one per size (or rate) when it lists several, none the same
    budget as another (1 and 1.0, or a replay minibatch of 0 and of the batch size, are one budget).
    A budget must supply what every strategy of the spec draws from it each step (`_check_supply`);
    ``longest`` is the most domains an ordering of the spec holds."""
    from .schema import COMPUTE, PROTOCOLS
    from .strategies import strategy_entry

    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table")
    sweep = {k: table[k] for k in ("size", "rate", "replay_batch") if isinstance(table.get(k), list)}
    if len(sweep) > 1:
        raise SpecError(f"{where}: give a list (budgets to sweep) for one of size, rate or replay_batch, not {' and '.join(sweep)}")
    key, values = next(iter(sweep.items()), (None, [None]))
    if key is not None and (not values or len(set(map(repr, values))) != len(values)):
        raise SpecError(f"{where}.{key}: a list of budgets must be non-empty and repeat none, got {quoted(repr(values))}")
    budgets = []
    for value in values:
        one = _section(MemorySpec, {**table, **({key: value} if key else {})}, where)
        if one.size > 0 and one.rate > 0:
            raise SpecError(f"{where}: give size (patches in all) or rate (a fraction of each earlier domain), not both")
        if one.size == 0 and one.rate == 0:
            raise SpecError(f"{where}: a [memory] table needs size (patches in all) or rate (a fraction of each earlier domain)")
        if one.rate > 1:
            raise SpecError(f"{where}.rate: must be in (0, 1], got {one.rate:g}")
        if one.protocol not in PROTOCOLS:
            raise SpecError(f"{where}.protocol: must be one of {', '.join(PROTOCOLS)}, got {quoted(repr(one.protocol))}")
        if one.compute not in COMPUTE:
            raise SpecError(f"{where}.compute: must be one of {', '.join(COMPUTE)}, got {quoted(repr(one.compute))}")
        per_step = one.replay_batch or train.batch_size
        if one.compute == "matched" and per_step >= train.batch_size:
            raise SpecError(f"{where}.replay_batch: with compute = \"matched\" the memory samples take part of the batch, so "
                            f"they must be fewer than train.batch_size ({train.batch_size}); got {per_step}"
                            + ("" if one.replay_batch else " (0 means the batch size)"))
        same = next((b for b in budgets if _same_budget(b, one, train)), None)
        if same is not None:
            raise SpecError(f"{where}.{key}: {quoted(repr(values[len(budgets)]))} is the same budget as "
                            f"{quoted(repr(values[budgets.index(same)]))}; a list of budgets must repeat none")
        budgets.append(one)
    _check_supply(budgets, where, train, strategies, longest)
    for label, st in strategies.items():
        factory = strategy_entry(st.name).factory
        if getattr(factory, "memory", None) in (None, "all"):
            continue
        if budgets[0].protocol not in factory.protocols:
            raise SpecError(f"{where}.protocol: strategy '{label}' ({st.name}) replays by {' or '.join(factory.protocols)} "
                            f"only; this table asks for {budgets[0].protocol!r}")
        if factory.memory == "size" and any(b.rate > 0 for b in budgets):
            raise SpecError(f"{where}.rate: strategy '{label}' ({st.name}) keeps a fixed number of patches; give [memory] size")
    return tuple(budgets)


def _same_budget(a: MemorySpec, b: MemorySpec, train: TrainSpec) -> bool:
    """Whether two budgets are one: equal once a replay minibatch of 0 is read as the batch size it means."""
    return replace(a, replay_batch=a.replay_batch or train.batch_size) == replace(b, replay_batch=b.replay_batch or train.batch_size)


def _check_supply(budgets: list[MemorySpec], where: str, train: TrainSpec, strategies: dict[str, StrategySpec], longest: int) -> None:
    """Refuse a budget that cannot give a strategy of the spec the memory samples it takes every step
    (`dqcl.config.strategies.DRAWS`): a memory of fewer patches than its replay minibatch, or a
    minibatch smaller than the earlier domains a per-domain strategy (A-GEM, GEM) takes one of each
    of. Such a run would replay fewer or more samples than its budget says, and under compute
    matched would backpropagate other than the batch. What depends on the patch counts (a rate, or
    a domain smaller than its share) is checked when each run has drawn its data."""
    from .strategies import draws_of

    for b in budgets:
        per_step = b.replay_batch or train.batch_size
        for label, st in strategies.items():
            draws = draws_of(st.name, st.params)
            if draws is None or draws == "protocol" and b.protocol != "batch":
                continue
            if b.size > 0 and b.size < per_step:
                raise SpecError(f"{where}.replay_batch: strategy {quoted(label)!r} ({st.name}) takes {per_step} memory "
                                f"samples every step from a memory of {b.size} patch(es) (memory.size): every step would replay "
                                f"fewer than its budget says; give memory.size >= {per_step} or a smaller memory.replay_batch"
                                + ("" if b.replay_batch else " (0 means the batch size)"))
            if draws == "per_domain" and per_step < longest - 1:
                raise SpecError(f"{where}.replay_batch: strategy {quoted(label)!r} ({st.name}) takes at least one memory "
                                f"sample of each earlier domain every step: {longest - 1} at the last domain of a "
                                f"{longest}-domain ordering, more than the {per_step} per step the budget gives; give "
                                f"memory.replay_batch >= {longest - 1}")


def _check_run_count(spec: Spec) -> None:
    """Refuse a study of more runs than `_max_runs`, with the count, before any run is built."""
    r = spec.redundancy
    if r is None:
        count = len(spec.orderings) * len(spec.strategies) * len(spec.seeds) * len(spec.memory)
        what = f"{len(spec.orderings):,} orderings x {len(spec.strategies):,} strategies x {len(spec.seeds):,} seeds"
        what += f" x {len(spec.memory)} memory budgets" if len(spec.memory) > 1 else ""
    else:
        count = sum(1 if rate >= 1.0 else len(r.selectors) for rate in r.rates) * len(spec.seeds)
        what = f"{len(r.rates)} rates x {len(r.selectors)} selectors x {len(spec.seeds):,} seeds"
    if count > _max_runs():
        raise SpecError(f"{spec.source}: this study expands to {count:,} runs ({what}), more than the {_max_runs():,} "
                        "a study may have (DQCL_MAX_RUNS)")


def _redundancy(table: Any, where: str, domains: dict[str, DomainSpec]) -> RedundancySpec:
    r = _section(RedundancySpec, table, where)
    domain = r.domain or next(iter(domains))
    if domain not in domains:
        raise SpecError(f"{where}.domain: '{domain}' is not one of the spec's domains ({', '.join(domains)})")
    if len(set(r.rates)) != len(r.rates):
        raise SpecError(f"{where}.rates: a rate is repeated ({list(r.rates)})")
    if not r.rates or not all(0.0 < x <= 1.0 for x in r.rates):
        raise SpecError(f"{where}.rates: every rate must be in (0, 1], got {list(r.rates)}")
    for sel in r.selectors:
        if sel not in SELECTORS:
            raise SpecError(f"{where}.selectors: unknown selector '{sel}'; known: {', '.join(SELECTORS)}")
    if r.embedder not in EMBEDDERS:
        raise SpecError(f"{where}.embedder: unknown embedder '{r.embedder}'; known: {', '.join(EMBEDDERS)}")
    return RedundancySpec(**{**r.__dict__, "domain": domain})


def parse_spec(raw: dict[str, Any], source: str = "<spec>", base: Path | None = None) -> Spec:
    base = base or Path.cwd()
    for key in raw:
        if key not in _TOP_KEYS:
            raise unknown_key(source, key, _TOP_KEYS)
    study = raw.get("study", {})
    if not isinstance(study, dict):
        raise SpecError(f"{source}: [study] must be a table")
    for key in study:
        if key not in _STUDY_KEYS:
            raise unknown_key(f"{source}: study", key, _STUDY_KEYS)
    name = study.get("name", Path(source).stem)
    _check_name(name, f"{source}: study.name", "the study name")
    seeds = study.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SpecError(f"{source}: study.seeds must be a non-empty list of integers, got {seeds!r}")
    data_seed = study.get("data_seed", 0)
    if data_seed != PER_SEED and (not isinstance(data_seed, int) or isinstance(data_seed, bool)):
        hint = did_you_mean(data_seed, [PER_SEED]) if isinstance(data_seed, str) else ""
        raise SpecError(f"{source}: study.data_seed must be an integer or \"{PER_SEED}\" (each run's own seed), "
                        f"got {quoted(repr(data_seed))}{hint}")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{source}: study.seeds repeats a seed ({seeds}): each seed is one run")
    int_seeds = () if data_seed == PER_SEED else (("study.data_seed", data_seed),)
    for key, value in [*(("study.seeds", s) for s in seeds), *int_seeds]:
        problem = out_of_range(key, value, 0, SEED_MAX)  # numpy and torch take seeds in [0, 2^32)
        if problem:
            raise SpecError(f"{source}: {problem}")
    device = study.get("device", "auto")
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d{1,3})?", device):
        raise SpecError(f"{source}: study.device must be auto, cpu, cuda or cuda:N (N a GPU index), got {device!r}")

    dom_table = raw.get("domains", {})
    if not isinstance(dom_table, dict) or not dom_table:
        raise SpecError(f"{source}: [domains] must name at least one domain")
    for n in dom_table:
        _check_name(n, f"{source}: [domains]", "the domain name")
    domains = {n: _domain(n, t, f"{source}: domains.{n}", base) for n, t in dom_table.items()}

    orderings = _orderings(study.get("orderings", "given"), domains, source)
    redundancy = None
    if "redundancy" in raw:
        redundancy = _redundancy(raw["redundancy"], f"{source}: redundancy", domains)
    strat_table = raw.get("strategies", {"naive": {}} if redundancy else {})
    if not isinstance(strat_table, dict) or not strat_table:
        raise SpecError(f"{source}: [strategies] must name at least one strategy")
    for label in strat_table:
        _check_name(label, f"{source}: [strategies]", "the strategy label")
    strategies = {label: _strategy(label, t, f"{source}: strategies.{label}", base) for label, t in strat_table.items()}

    train = _section(TrainSpec, raw.get("train", {}), f"{source}: train")
    memory = (MemorySpec(),)
    if "memory" in raw:
        if redundancy is not None:
            raise SpecError(f"{source}: [memory] is for continual studies; a redundancy study keeps no memory")
        memory = _memory(raw["memory"], f"{source}: memory", train, strategies, max(len(o) for o in orderings))
    spec = Spec(
        name=str(name),
        seeds=tuple(seeds),
        orderings=tuple(tuple(o) for o in orderings),
        domains=domains,
        strategies=strategies,
        data=_section(DataSpec, raw.get("data", {}), f"{source}: data"),
        model=_section(ModelSpec, raw.get("model", {}), f"{source}: model"),
        train=train,
        eval=_section(EvalSpec, raw.get("eval", {}), f"{source}: eval"),
        output=_section(OutputSpec, raw.get("output", {}), f"{source}: output"),
        log=_section(LogSpec, raw.get("log", {}), f"{source}: log"),
        data_seed=data_seed,
        device=device,
        source=source,
        redundancy=redundancy,
        memory=memory,
    )
    _check_run_count(spec)
    if spec.data.patch_size % 8:
        raise SpecError(f"{source}: data.patch_size must be a multiple of 8 (CPnet halves it three times), got {spec.data.patch_size}")
    _check_diameter(spec, source)
    if len(spec.model.widths) != 4:
        raise SpecError(f"{source}: model.widths must be 4 positive integers, got {list(spec.model.widths)}")
    if spec.output.save_weights not in SAVE_WEIGHTS:
        raise SpecError(f"{source}: output.save_weights must be one of {', '.join(SAVE_WEIGHTS)}, got {spec.output.save_weights!r}")
    cache = confine_write(spec.data.cache_dir, base, f"{source}: data.cache_dir", "DQCL_CACHE_DIR")
    spec = replace(spec, data=replace(spec.data, cache_dir=cache))
    if spec.model.init:
        init = Path(resolve_inside(spec.model.init, base, f"{source}: model.init"))
        if not init.is_file():
            raise SpecError(f"{source}: model.init: {init}: no such file")
        spec = replace(spec, model=replace(spec.model, init=str(init)))
    if spec.model.norm not in NORMS:
        raise SpecError(f"{source}: model.norm must be one of {', '.join(NORMS)}, got {spec.model.norm!r}")
    _check_arch(spec, source)
    if not 0.0 <= spec.data.validation < 1.0:
        raise SpecError(f"{source}: data.validation must be a share of the training images in [0, 1), got {spec.data.validation:g}")
    if spec.train.schedule not in ("constant", "cosine", "step"):
        raise SpecError(f"{source}: train.schedule must be one of constant, cosine, step, got {quoted(repr(spec.train.schedule))}")
    if spec.train.fast not in ("auto", "on", "off", "layout"):
        raise SpecError(f"{source}: train.fast must be 'auto', 'on', 'off' or 'layout', got {spec.train.fast!r}")
    return spec


def _check_diameter(spec: Spec, source: str) -> None:
    """data.diameter at most the largest median object a patch holds and mask reconstruction keeps
    (`dqcl.data.scale.diameter_range`): objects larger are removed from every prediction. The smallest is
    checked in preflight, where the images are, so that its refusal can name a domain and what its images become."""
    d, e = spec.data, spec.eval
    _, hi = diameter_range(d.patch_size, e.min_size, e.max_size_fraction)
    if d.diameter <= hi:
        return
    why = (f"objects of that median diameter do not fit in a {d.patch_size} px patch" if hi >= d.patch_size else
           f"a median object of that diameter covers about {math.pi * d.diameter**2 / 4:,.3g} px, more than eval.max_size_fraction "
           f"= {e.max_size_fraction:g} of a {d.patch_size} px patch, and mask reconstruction removes such masks")
    raise SpecError(f"{source}: data.diameter = {d.diameter:g}: {why}, so most objects could never be found; set data.diameter "
                    f"to at most {math.floor(hi * 100) / 100:g} (Cellpose: 30 at 224 px) or 0 (images as they are), or "
                    "data.patch_size larger")


ARCHS = ("cpnet", "cpsam")


def _check_arch(spec: Spec, source: str) -> None:
    """model.arch and model.encoder: known values, and CPSAM's tile size (its position embeddings are fixed)."""
    from ..cpnet.cpsam import ENCODERS

    m = spec.model
    if m.arch not in ARCHS:
        raise SpecError(f"{source}: model.arch must be one of {', '.join(ARCHS)}, got {m.arch!r}")
    if m.encoder not in ENCODERS:
        raise SpecError(f"{source}: model.encoder must be one of {', '.join(ENCODERS)}, got {m.encoder!r}")
    if m.arch == "cpsam" and m.encoder == "vit_l" and spec.data.patch_size != 256:
        raise SpecError(f"{source}: model.arch = \"cpsam\" with the vit_l encoder takes Cellpose 4's 256 px tiles: "
                        f"set data.patch_size = 256 (got {spec.data.patch_size})")


def with_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str) -> dict[str, Any]:
    """``raw`` with ``TABLE.KEY=VALUE`` settings put in (``--set train.epochs=50``). VALUE is read as
    TOML (``50``, ``0.1``, ``true``, ``[16, 32, 64, 128]``, ``"text"``) or else taken as a string, so
    ``--set study.device=cuda`` needs no quotes; the result is checked like the file."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for item in overrides:
        key, eq, text = item.partition("=")
        path = key.strip().split(".")
        if not eq or not all(path):
            raise SpecError(f"--set {item!r}: expected TABLE.KEY=VALUE, e.g. train.epochs=50")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        table = out
        for part in path[:-1]:
            nxt = table.get(part)
            if nxt is None:
                nxt = table[part] = {}
            elif not isinstance(nxt, dict):
                raise SpecError(f"{source}: --set {key}: '{part}' is not a table")
            else:
                nxt = table[part] = dict(nxt)
            table = nxt
        table[path[-1]] = value
    return out


def load_spec(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Spec:
    """The spec in the TOML file ``path`` (None: the quick default) with ``overrides`` put in, checked key by key."""
    p = Path(path) if path is not None else default_spec_path()
    if not p.is_file():
        raise SpecError(f"{p}: no such spec file")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{p}: malformed TOML ({err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{p}: cannot read ({err})") from None
    return parse_spec(with_overrides(raw, overrides, str(p)), str(p), p.resolve().parent)
