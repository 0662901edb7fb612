"""Benchmark specs: TOML files, checked key by key, expanded into runs.

A spec names domains, orderings of them, strategies and seeds, plus the data, model,
training and evaluation settings shared by every run. `load_spec` reports the first
problem as one `SpecError` line naming the file and key; `expand` yields one `RunConfig`
per ordering x strategy x seed, each with a content hash of everything that decides its
result.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import __version__
from .provenance import domain_manifest
from .domains import DOMAINS
from .errors import RegistryError, SpecError

__all__ = [
    "DataSpec", "ModelSpec", "TrainSpec", "EvalSpec", "DomainSpec", "StrategySpec", "RedundancySpec", "Subset",
    "Spec", "RunConfig",
    "load_spec", "parse_spec", "expand", "default_spec_path",
]


@dataclass(frozen=True)
class DataSpec:
    patch_size: int = 224  # square patch side in pixels (the paper: 224)
    stride: int = 112  # patch grid step (the paper: 112)
    pad: bool = False  # pad images smaller than a patch instead of refusing them
    cache_dir: str = ".dqcl_cache"  # flow targets cached here, by mask content


@dataclass(frozen=True)
class ModelSpec:
    widths: tuple[int, ...] = (32, 64, 128, 256)  # CPnet feature widths (Cellpose: 32, 64, 128, 256)


@dataclass(frozen=True)
class TrainSpec:
    epochs: int = 100  # epochs per experience
    batch_size: int = 8
    lr: float = 0.1  # SGD learning rate (Cellpose/paper: 0.1... 0.2)
    momentum: float = 0.9
    weight_decay: float = 1e-5
    augment: bool = True  # random flips and 90-degree rotations
    warmup_epochs: float = 1.0  # linear learning-rate warm-up at the start of every experience (Cellpose: 10)
    fast: str = "auto"  # channels-last + bf16 autocast + pinned memory: "on", "off", "auto" (on for a GPU)
    compile: bool = False  # torch.compile the network (minutes of compiling, then faster steps on a GPU)
    loader_workers: int = 0  # DataLoader worker processes for training batches


@dataclass(frozen=True)
class EvalSpec:
    batch_size: int = 32
    flow_threshold: float = 0.4
    cellprob_threshold: float = 0.0
    niter: int = 200  # flow-following steps in compute_masks
    min_size: int = 15  # smallest predicted mask kept, in pixels


@dataclass(frozen=True)
class RedundancySpec:
    """Train from scratch on subsets of one domain chosen by each selector at each rate."""

    domain: str = ""  # the spec's domain to subsample (default: its only/first domain)
    rates: tuple[float, ...] = (0.01, 0.05, 0.1, 0.3, 0.5, 1.0)
    selectors: tuple[str, ...] = ("mmv", "graphcut", "random", "kcenter")
    bins: int = 10
    embedder: str = "stats"  # stats | mae | style (style: a checkpoint is needed)
    embedder_weights: str = ""  # MAE weights file, or the CellposeNet checkpoint for 'style'
    steps: int = 60  # optimiser steps per run, the same for every subset size


@dataclass(frozen=True)
class Subset:
    """The training subset of a redundancy run."""

    selector: str
    rate: float
    bins: int
    embedder: str
    embedder_weights: str
    steps: int


@dataclass(frozen=True)
class DomainSpec:
    name: str
    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class StrategySpec:
    label: str  # the name shown in tables (the table key in the spec)
    name: str  # the registered strategy
    params: dict[str, Any]


@dataclass(frozen=True)
class Spec:
    name: str
    seeds: tuple[int, ...]
    orderings: tuple[tuple[str, ...], ...]
    domains: dict[str, DomainSpec]
    strategies: dict[str, StrategySpec]
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    eval: EvalSpec = EvalSpec()
    data_seed: int = 0
    device: str = "auto"
    source: str = "<spec>"
    redundancy: RedundancySpec | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs; `key` hashes all of it."""

    study: str
    strategy: StrategySpec
    ordering: tuple[str, ...]
    seed: int
    domains: tuple[DomainSpec, ...]
    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    eval: EvalSpec
    data_seed: int
    device: str
    version: str = __version__
    subset: Subset | None = None
    data_manifests: tuple[tuple[str, str], ...] = ()  # (domain, manifest hash), see dqcl.provenance
    key: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("key")
        if d["subset"] is None:
            d.pop("subset")  # keeps the keys of continual runs as they were
        d["data"].pop("cache_dir")  # where the cache lives does not change a result
        return d


def default_spec_path() -> Path:
    return Path(__file__).resolve().parent.parent / "benchmarks" / "quick.toml"


_STUDY_KEYS = {"name", "seeds", "orderings", "data_seed", "device"}
_TOP_KEYS = {"study", "data", "model", "train", "eval", "domains", "strategies", "redundancy"}


def unknown_key(where: str, key: str, known: set[str] | list[str]) -> SpecError:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return SpecError(f"{where}: unknown key '{key}'{hint}; expected one of: {', '.join(sorted(known)) or 'none (it takes no keys)'}")


def type_ok(value: Any, default: Any) -> bool:
    """Whether a TOML value fits the type of a parameter's default (ints pass for floats, bools never for numbers)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, tuple):
        return isinstance(value, list) and (not default or all(type_ok(v, default[0]) for v in value))
    return True


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
            raise SpecError(f"{where}.{key}: expected {type(default).__name__}, got {value!r}")
        if isinstance(default, tuple):
            values[key] = tuple(float(v) if default and isinstance(default[0], float) else v for v in value)
        else:
            values[key] = float(value) if isinstance(default, float) else value
    out = cls(**values)
    for f in fields(cls):
        v = getattr(out, f.name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
            raise SpecError(f"{where}.{f.name}: must not be negative, got {v}")
    return out


def with_skip_bad(spec: Spec) -> Spec:
    """The spec with ``skip_bad = true`` in every folder domain (``dqcl run ... --skip-bad``)."""
    from dataclasses import replace

    domains = {n: replace(d, params={**d.params, "skip_bad": True}) if d.kind == "folder" else d for n, d in spec.domains.items()}
    return replace(spec, domains=domains)


def resolve_inside(value: str, base: Path, where: str) -> str:
    """A spec's path, resolved. An absolute path is the user's own choice; a relative one must stay
    inside the spec's folder or the working directory (after following links), so a spec from
    elsewhere cannot point dqcl at files its user never named."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p.resolve())
    resolved = (base / p).resolve()
    if not any(resolved.is_relative_to(root) for root in (base.resolve(), Path.cwd().resolve())):
        raise SpecError(
            f"{where}: '{value}' leads outside the spec's folder and the working directory (to {resolved}); "
            "write an absolute path if that is meant"
        )
    return str(resolved)


def _domain(name: str, table: Any, where: str, base: Path) -> DomainSpec:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table")
    params = dict(table)
    kind = params.pop("kind", name)
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
    if kind == "folder":
        if "path" not in params:
            raise SpecError(f"{where}: a 'folder' domain needs path = \"...\"")
        params["path"] = resolve_inside(params["path"], base, f"{where}.path")
        for key in ("train_dir", "test_dir"):
            sub = Path(str(params.get(key, "x")))
            if sub.is_absolute() or ".." in sub.parts:
                raise SpecError(f"{where}.{key}: must be a folder inside the domain's path, got {params[key]!r}")
        params.setdefault("name", name)
    return DomainSpec(name, kind, params)


def _strategy(label: str, table: Any, where: str) -> StrategySpec:
    from .strategy import resolve_params

    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table")
    params = dict(table)
    name = params.pop("strategy", label)
    try:
        resolved = resolve_params(name, params, where)
    except RegistryError as err:
        raise SpecError(f"{where}: {err}") from None
    return StrategySpec(label, name, resolved)


NAMED_ORDERINGS = {
    "given": "the spec's domains in the order the spec lists them",
    "reverse": "the same, reversed",
    "all": "every permutation of the spec's domains (n! orderings)",
}


def _orderings(value: Any, domains: dict[str, DomainSpec], source: str) -> list[list[str]]:
    """Explicit lists of domain names, or a named set: 'given', 'reverse', 'all' (alone or inside the list)."""
    import itertools

    names = list(domains)
    named = {"given": [names], "reverse": [names[::-1]], "all": [list(p) for p in itertools.permutations(names)]}
    items = value if isinstance(value, list) else [value]
    if not items:
        raise SpecError(f"{source}: study.orderings is empty; give lists of domain names or one of {', '.join(NAMED_ORDERINGS)}")
    out: list[list[str]] = []
    for order in items:
        if isinstance(order, str):
            if order not in named:
                close = difflib.get_close_matches(order, list(named), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise SpecError(f"{source}: study.orderings: unknown named ordering '{order}'{hint}; known: {', '.join(NAMED_ORDERINGS)}")
            out += named[order]
            continue
        if not isinstance(order, list) or not order or not all(isinstance(d, str) for d in order):
            raise SpecError(f"{source}: study.orderings: each ordering must be a non-empty list of domain names, got {order!r}")
        for d in order:
            if d not in domains:
                close = difflib.get_close_matches(d, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise SpecError(f"{source}: study.orderings names unknown domain '{d}'{hint}; the spec's domains: {', '.join(names)}")
        if len(set(order)) != len(order):
            raise SpecError(f"{source}: study.orderings: {order} repeats a domain")
        out.append(order)
    # the same ordering twice would run the same runs twice under one key
    return [list(o) for o in dict.fromkeys(tuple(o) for o in out)]


def _redundancy(table: Any, where: str, domains: dict[str, DomainSpec]) -> RedundancySpec:
    from .dq import SELECTORS
    from .embed import EMBEDDERS

    r = _section(RedundancySpec, table, where)
    domain = r.domain or next(iter(domains))
    if domain not in domains:
        raise SpecError(f"{where}.domain: '{domain}' is not one of the spec's domains ({', '.join(domains)})")
    if not r.rates or not all(0.0 < x <= 1.0 for x in r.rates):
        raise SpecError(f"{where}.rates: every rate must be in (0, 1], got {list(r.rates)}")
    for sel in r.selectors:
        if sel not in SELECTORS:
            raise SpecError(f"{where}.selectors: unknown selector '{sel}'; known: {', '.join(SELECTORS)}")
    if r.embedder not in EMBEDDERS:
        raise SpecError(f"{where}.embedder: unknown embedder '{r.embedder}'; known: {', '.join(EMBEDDERS)}")
    if r.bins < 1 or r.steps < 1:
        raise SpecError(f"{where}: bins and steps must be >= 1")
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
    seeds = study.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SpecError(f"{source}: study.seeds must be a non-empty list of integers, got {seeds!r}")
    data_seed = study.get("data_seed", 0)
    if not isinstance(data_seed, int):
        raise SpecError(f"{source}: study.data_seed must be an integer")
    device = study.get("device", "auto")
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise SpecError(f"{source}: study.device must be auto, cpu or cuda[:N], got {device!r}")

    dom_table = raw.get("domains", {})
    if not isinstance(dom_table, dict) or not dom_table:
        raise SpecError(f"{source}: [domains] must name at least one domain")
    domains = {n: _domain(n, t, f"{source}: domains.{n}", base) for n, t in dom_table.items()}

    orderings = _orderings(study.get("orderings", "given"), domains, source)
    redundancy = None
    if "redundancy" in raw:
        redundancy = _redundancy(raw["redundancy"], f"{source}: redundancy", domains)
    strat_table = raw.get("strategies", {"naive": {}} if redundancy else {})
    if not isinstance(strat_table, dict) or not strat_table:
        raise SpecError(f"{source}: [strategies] must name at least one strategy")
    strategies = {label: _strategy(label, t, f"{source}: strategies.{label}") for label, t in strat_table.items()}

    spec = Spec(
        name=str(name),
        seeds=tuple(seeds),
        orderings=tuple(tuple(o) for o in orderings),
        domains=domains,
        strategies=strategies,
        data=_section(DataSpec, raw.get("data", {}), f"{source}: data"),
        model=_section(ModelSpec, raw.get("model", {}), f"{source}: model"),
        train=_section(TrainSpec, raw.get("train", {}), f"{source}: train"),
        eval=_section(EvalSpec, raw.get("eval", {}), f"{source}: eval"),
        data_seed=data_seed,
        device=device,
        source=source,
        redundancy=redundancy,
    )
    if spec.data.patch_size < 16 or spec.data.stride < 1:
        raise SpecError(f"{source}: data.patch_size must be >= 16 and data.stride >= 1")
    if len(spec.model.widths) != 4 or min(spec.model.widths) < 1:
        raise SpecError(f"{source}: model.widths must be 4 positive integers, got {list(spec.model.widths)}")
    if spec.train.epochs < 1 or spec.train.batch_size < 1 or spec.eval.batch_size < 1:
        raise SpecError(f"{source}: train.epochs, train.batch_size and eval.batch_size must be >= 1")
    if spec.train.fast not in ("auto", "on", "off"):
        raise SpecError(f"{source}: train.fast must be 'auto', 'on' or 'off', got {spec.train.fast!r}")
    return spec


def load_spec(path: str | Path | None = None) -> Spec:
    p = Path(path) if path is not None else default_spec_path()
    if not p.is_file():
        raise SpecError(f"{p}: no such spec file")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{p}: malformed TOML ({err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{p}: cannot read ({err})") from None
    return parse_spec(raw, str(p), p.resolve().parent)


def _hash(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=list).encode()).hexdigest()[:24]


def _run(spec: Spec, strategy: StrategySpec, order: tuple[str, ...], seed: int, subset: Subset | None = None) -> RunConfig:
    cfg = RunConfig(
        study=spec.name,
        strategy=strategy,
        ordering=order,
        seed=seed,
        domains=tuple(spec.domains[d] for d in order),
        data=spec.data,
        model=spec.model,
        train=spec.train,
        eval=spec.eval,
        data_seed=spec.data_seed,
        device=spec.device,
        subset=subset,
        data_manifests=tuple((d, domain_manifest(spec.domains[d].kind, spec.domains[d].params)) for d in order),
    )
    return RunConfig(**{**cfg.__dict__, "key": _hash(cfg.to_dict())})


def expand(spec: Spec) -> list[RunConfig]:
    """One run per ordering x strategy x seed (or per selector x rate x seed for a redundancy study)."""
    r = spec.redundancy
    if r is None:
        return [_run(spec, strat, order, seed) for order in spec.orderings for strat in spec.strategies.values() for seed in spec.seeds]
    runs = []
    for rate in r.rates:
        # at rate 1 every selector keeps everything: one run, labelled 'all'
        for sel in ("all",) if rate >= 1.0 else r.selectors:
            subset = Subset(sel, float(rate), r.bins, r.embedder, r.embedder_weights, r.steps)
            runs += [_run(spec, StrategySpec(sel, "naive", {}), (r.domain,), seed, subset) for seed in spec.seeds]
    return runs
