"""`dqcl tune`: every strategy of a spec at its best settings, found with the same trial budget for all.

For each strategy (label) of the spec an Optuna study (TPE sampler seeded by the trials already done, median pruning)
searches its own hyperparameters (`register_strategy(search=...)`, log scale) and its learning rate
(`LR_SEARCH`, every strategy, naive included), ``trials`` trials each. A trial is the spec's runs of
that strategy at the trial's values, over its orderings and seeds, run through dqcl's executors
(local, process, Ray) into a tuning store; its value is their mean final ACC (AP@0.5) **on a
validation split held out of each domain's training images** (``data.validation``, whole images,
drawn with the data seed: `dqcl.train.run.validation_split`), never on a test image: a spec whose
``data.validation`` is 0 is refused. After each ordering the trial reports the mean so far, so a
trial that trails the median of the trials before it stops early (pruned).

Resumable: the Optuna storage (SQLite beside the tuning store by default, or any database URL) keeps
the trials done, the tuning store the runs; rerunning the command goes on to the budget, which counts
each set of values once (a resumed sampler is seeded by the trials already there, so it draws new values). The result
is a JSON file: per strategy its search space, the chosen values, the best validation ACC and every
trial's values, state and score, with the spec's digest and the budget. A spec takes it with
``tuned = "FILE"`` in a strategy's table (`dqcl.config.parse`).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import DqclError, SpecError

__all__ = ["TuneSummary", "tune_spec", "DEFAULT_TUNING_STORE"]

DEFAULT_TUNING_STORE = "results/tuning.sqlite"


@dataclass(frozen=True)
class TuneSummary:
    out: Path
    strategies: dict[str, dict[str, Any]]  # label -> {"best": values, "value": ACC, "trials": n, "pruned": n}


def _raw_spec(spec: str | Path, overrides: tuple[str, ...], validation: float | None) -> tuple[dict[str, Any], Path]:
    from ..config.parse import with_overrides

    path = Path(spec)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read ({err})") from None
    sets = tuple(overrides) + ((f"data.validation={validation!r}",) if validation is not None else ())
    return with_overrides(raw, sets, str(path)), path


def _space(name: str) -> dict[str, tuple[float, float]]:
    from ..config.strategies import LR_SEARCH, strategy_entry

    return {"lr": LR_SEARCH, **getattr(strategy_entry(name).factory, "search", {})}


def _trial_runs(raw: dict[str, Any], label: str, table: dict[str, Any], values: dict[str, float], ordering: list[str]) -> dict:
    """The spec of one trial's runs over one ordering: only this strategy, at the trial's values."""
    out = json.loads(json.dumps(raw))
    out.setdefault("study", {})["name"] = f"{out.get('study', {}).get('name', 'study')}-tuning"
    out["study"]["orderings"] = [ordering]
    out["strategies"] = {label: {**{k: v for k, v in table.items() if k != "tuned"}, **values}}
    return out


def _distinct(trials) -> list:
    """The finished trials that count toward the budget: not failed, and each set of values once (the first
    trial that tried it); a repeat found its runs stored and would otherwise count without training."""
    seen: set[tuple] = set()
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        if not t.state.is_finished() or t.state.name == "FAIL":
            continue
        values = tuple(sorted((k, float(f"{v:.12g}")) for k, v in t.params.items()))
        if values not in seen:
            seen.add(values)
            out.append(t)
    return out


def _acc(store, keys: list[str]) -> list[float]:
    """Final mean AP@0.5 over the domains (ACC) of the stored runs ``keys``."""
    got = {}
    for run in store.runs():
        if run["key"] in keys:
            R = run["result"]["R"]["ap50"]
            got[run["key"]] = sum(R[-1]) / len(R[-1])
    return [got[k] for k in keys if k in got]


def tune_spec(
    spec: str | Path, *, store: str | Path = DEFAULT_TUNING_STORE, out: str | Path, trials: int = 20,
    storage: str | None = None, validation: float | None = None, overrides: tuple[str, ...] = (),
    executor=None, progress: bool = False, say: Callable[[str], None] = lambda msg: None,
    only: tuple[str, ...] = (),
) -> TuneSummary:
    """Tune every strategy of ``spec`` with ``trials`` trials each (see the module's docstring) and write the
    chosen values to ``out``; returns what was chosen. ``only`` names the strategies (labels) to tune, for
    tuning a spec's strategies in parallel on several machines: each tuner sees the others' trials through the
    shared Optuna storage, and a last run without ``only`` finds every budget spent and writes the whole file."""
    import optuna

    from ..config.expand import expand
    from ..config.parse import parse_spec
    from ..core.atomic import write_text
    from ..core.outputs import Kind, check_output
    from ..core.version import __version__
    from ..results.store import Store
    from .executors import ExecutorOptions
    from .run import run_spec

    if trials < 1:
        raise DqclError(f"--trials must be at least 1, got {trials}")
    raw, path = _raw_spec(spec, overrides, validation)
    parsed = parse_spec(raw, str(path), path.resolve().parent)
    if parsed.redundancy is not None:
        raise SpecError(f"{path}: a redundancy study has no strategies to tune")
    if parsed.data.validation <= 0:
        raise SpecError(f"{path}: data.validation is 0: tuning would score the test images; set it (or --validation) to the "
                        "share of each domain's training images to hold out, e.g. 0.25")
    unknown = [label for label in only if label not in parsed.strategies]
    if unknown:
        raise SpecError(f"{path}: no strategy {unknown[0]!r} to tune (the spec has {', '.join(parsed.strategies)})")
    out = Path(out)
    check_output(out, Kind("a tuning result dqcl wrote", lambda p: p.read_bytes()[:32].startswith(b'{\n "dqcl_tuning"')),
                 reading=[(path, "the spec"), (store, "the tuning store")])
    storage = storage or f"sqlite:///{Path(store).resolve().parent / 'optuna.sqlite'}"
    Path(store).parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    executor = executor or ExecutorOptions()
    orderings = [list(o) for o in parsed.orderings]
    chosen: dict[str, dict[str, Any]] = {}
    report: dict[str, Any] = {}
    for label, st in parsed.strategies.items():
        if only and label not in only:
            continue
        space = _space(st.name)
        table = dict((raw.get("strategies") or {}).get(label) or {})
        table.setdefault("strategy", st.name)
        study = optuna.create_study(
            study_name=f"{parsed.name}/{label}", storage=storage, direction="maximize", load_if_exists=True,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
        )
        for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # a killed earlier tuner's trial
        # seeded by the trials already there: a sampler seeded alike on every resume would draw the first values
        # again (their runs are stored, so they would "finish" at once and eat the budget)
        study.sampler = optuna.samplers.TPESampler(seed=len(study.get_trials(deepcopy=False)))
        done = lambda: _distinct(study.get_trials(deepcopy=False))  # noqa: E731
        while len(done()) < trials:
            trial = study.ask()
            values = {k: trial.suggest_float(k, lo, hi, log=True) for k, (lo, hi) in space.items()}
            accs: list[float] = []
            pruned = False
            for step, ordering in enumerate(orderings):
                sub = parse_spec(_trial_runs(raw, label, table, values, ordering), str(path), path.resolve().parent)
                run_spec(sub, store=store, executor=executor, progress=progress)
                keys = [cfg.key for cfg in expand(sub)]
                with Store(store, readonly=True) as s:
                    accs += _acc(s, keys)
                trial.report(sum(accs) / len(accs), step)
                if trial.should_prune() and step < len(orderings) - 1:
                    pruned = True
                    break
            if pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, sum(accs) / len(accs))
            say(f"{label}: trial {trial.number} {'pruned' if pruned else f'ACC {sum(accs) / len(accs):.3f}'} at "
                + ", ".join(f"{k}={v:.3g}" for k, v in values.items()))
        counted = {t.number for t in done()}
        trials_table = [{"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params,
                         **({} if t.number in counted or t.state.name == "FAIL" else {"repeat": True})}
                        for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        best = study.best_trial
        chosen[label] = {"best": dict(best.params), "value": best.value, "trials": len(done()),
                         "pruned": sum(1 for t in trials_table if t["state"] == "pruned")}
        report[label] = {"strategy": st.name, "space": {k: list(v) for k, v in space.items()}, "best": dict(best.params),
                         "validation_acc": best.value, "trials": trials_table}
    doc = {"dqcl_tuning": 1, "spec": path.name, "spec_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
           "study": parsed.name, "trials_per_strategy": trials, "validation": parsed.data.validation,
           "seeds": list(parsed.seeds), "orderings": orderings, "objective": "mean final AP@0.5 over the domains (ACC) "
           "on a validation split of each domain's training images, over the spec's orderings and seeds",
           "sampler": "optuna TPE, seeded by the trials already in the study (0 when never interrupted); its first 10 "
           "trials are random draws (Optuna's start-up), median pruning after 3 trials where a spec has 2+ orderings", "dqcl": __version__, "strategies": report}
    write_text(out, json.dumps(doc, indent=1, sort_keys=False) + "\n")
    return TuneSummary(out, chosen)
