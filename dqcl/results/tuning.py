"""Tuned beside untuned: for every strategy some study ran at values `dqcl tune` chose, each cell of that
strategy at the same ordering and memory budget in any study of the store, tuned or not, one row each.

A row says the study, the label, the values the runs trained at (for the parameters the tuning searched:
the strategy's own, and the learning rate, the spec's ``[train] lr`` where a strategy set none), how they
were chosen (trials per strategy, validation share, the tuning file) and the protocol each study trained
under (each experience's steps, the learning-rate schedule), then the final ACC and forgetting over its seeds.
The rows stand side by side and are never pooled or subtracted: where the studies' protocols differ (as
budget_baselines' 250 constant steps and budget_tuned's 1,000 cosine ones do), a gap between them is the
tuning and the protocol together. The protocol column gives the steps and the schedule only; each study's
own tables and Data line give the rest.

The grid behind the values (`trial_section`): a tuning file given to ``dqcl leaderboard build --tuned``,
checked against the runs that took its values, shown trial by trial.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from ..core.text import lone_surrogate
from ..errors import DqclError
from .entries import budget_text
from .stats import fmt, summarise
from .tables import _budget_key, _value, trained_params

__all__ = ["TRIAL_HEADERS", "TUNING_HEADERS", "read_trials", "trial_section", "tuning_table"]

Name = Callable[[Any], str]

TUNING_HEADERS = ["strategy", "ordering", "memory", "study", "label", "values", "chosen", "protocol", "n",
                  "ACC [95 % CI]", "Forgetting [95 % CI]"]


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _protocol(e: dict[str, Any], name: Name) -> str:
    """"1,000 + 1,000 steps, cosine": each experience's steps (joint's one experience: "2,000 steps")."""
    steps = e.get("steps")
    per = [s for s in steps if _num(s)] if isinstance(steps, list) else []
    epochs = e.get("epochs")
    counted = (" + ".join(f"{s:,}" for s in per) + " steps" if per
               else f"{epochs:,} epoch{'' if epochs == 1 else 's'} per experience" if _num(epochs) else "steps not recorded")
    return f"{counted}, {name(e.get('schedule') or 'constant')}"


def tuning_table(rows: list[dict[str, Any]], metric: str = "ap50", name: Name = str) -> tuple[list[str], list[list]] | None:
    """(headers, rows) of the tuned-beside-untuned table from leaderboard entries (continual runs that kept their
    protocol), or None where no run's values were tuned."""
    mine = [e for e in rows if e["metric"] == metric and e.get("selector") is None]
    space: dict[str, set[str]] = defaultdict(set)  # strategy -> the parameters some tuning of it searched
    for e in mine:
        t = e.get("tuned")
        if isinstance(t, dict) and isinstance(t.get("space"), dict) and t["space"]:
            space[e["strategy_name"]] |= {str(k) for k in t["space"]}
    if not space:
        return None
    cells: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for e in mine:
        if e["strategy_name"] in space:
            # a cell: its strategy, ordering, budget, study and label, and how its values were chosen (a label stored
            # once tuned and once by hand is two rows, never one)
            cells[(e["strategy_name"], tuple(e["ordering"]), _budget_key(e), e["study"], e["strategy"], _how(e))].append(e)
    where_tuned = {k[:3] for k in cells if k[5]}
    where_untuned = {k[:3] for k in cells if not k[5]}
    table = []  # per strategy, ordering and budget: the untuned cells, then the tuned ones
    for key in sorted(cells, key=lambda k: (str(k[0]), k[1], json.dumps(k[2]), bool(k[5]), str(k[3]), str(k[4]), k[5])):
        strategy, ordering, budget, study, label, _ = key
        if key[:3] not in where_tuned or key[:3] not in where_untuned:
            continue  # nothing to stand beside: tuned with no untuned cell of the same strategy, ordering and budget
        es = cells[key]
        first = es[0]
        params = trained_params(first)
        values = ", ".join(f"{name(k)} {_value(params[k], name) if k in params else 'its default'}" for k in sorted(space[strategy]))
        t = first.get("tuned") if isinstance(first.get("tuned"), dict) else None
        chosen = (f"tuned: {_value(t.get('trials'), name)} trials, {_value(t.get('validation'), name)} validation share, "
                  f"{name(t.get('file'))}" if t else "untuned")
        memory = budget_text(first["memory"], short=True) if first.get("memory") else "—"
        table.append([name(strategy), " → ".join(name(d) for d in ordering), name(memory), name(study), name(label), values,
                      chosen, _protocol(first, name), len({e["seed"] for e in es}), fmt(summarise([e["acc"] for e in es])),
                      fmt(summarise([e["forgetting"] for e in es if e.get("forgetting") is not None]))])
    return (TUNING_HEADERS, table) if table else None


def _how(e: dict[str, Any]) -> str:
    """"" for an untuned run; else its tuning's provenance as text (one tuning file, one cell)."""
    t = e.get("tuned")
    return json.dumps({k: t.get(k) for k in ("file", "sha256", "trials", "validation")}, sort_keys=True, default=str) if isinstance(t, dict) else ""


TRIAL_HEADERS = ["strategy", "trial", "state", "values", "validation ACC", "chosen"]
_TUNED_LIMIT = 64 * 2**20  # bytes: a tuning result of thousands of trials is a few MB


def read_trials(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A `dqcl tune` result for the leaderboard's grid, checked against the store: some run of ``rows`` took its
    values (the SHA-256 its runs recorded); else, or where it is no tuning result, a one-line `DqclError`."""
    path = Path(path)
    try:
        if not path.is_file():
            raise ValueError("not a file")
        if path.stat().st_size > _TUNED_LIMIT:
            raise ValueError(f"{path.stat().st_size:,} bytes, more than any tuning result holds ({_TUNED_LIMIT:,})")
        raw = path.read_bytes()
        doc = json.loads(raw.decode("utf-8"))
        if lone_surrogate(json.dumps(doc, ensure_ascii=False)):
            raise ValueError("it holds a lone surrogate (\\ud800 to \\udfff), which no page or table can show")
        if not isinstance(doc, dict) or doc.get("dqcl_tuning") != 1 or not isinstance(doc.get("strategies"), dict):
            raise ValueError("not a dqcl tuning result")
    except RecursionError:  # the parser recurses once per level: a file of nested brackets exhausts the stack
        raise DqclError(f"--tuned {path}: not a dqcl tuning result (nested too deeply)") from None
    except (OSError, ValueError) as err:
        raise DqclError(f"--tuned {path}: not a dqcl tuning result ({err})") from None
    sha = hashlib.sha256(raw).hexdigest()[:16]
    if not any(isinstance(e.get("tuned"), dict) and e["tuned"].get("sha256") == sha for e in rows):
        raise DqclError(f"--tuned {path}: no run of the store took its values (its SHA-256 begins {sha}); "
                        "give the tuning file the runs were made with")
    return {"file": Path(path).name, "sha256": sha, "doc": doc}


def trial_section(tuning: dict[str, Any], name: Name = str) -> tuple[str, str, list[str], list[list]]:
    """(title, how, headers, rows) of one tuning file's grid: every trial of every strategy with its values and
    validation ACC, the chosen values marked. Every text from the file is shown by ``name``."""
    doc = tuning["doc"]
    title = f"Tuning trials: {name(tuning['file'])} (SHA-256 {tuning['sha256']})"
    orderings = doc.get("orderings") if isinstance(doc.get("orderings"), list) else []
    shown = "; ".join(" → ".join(name(d) for d in o) for o in orderings if isinstance(o, list)) or "not recorded"
    how = (f"Study {name(doc.get('study'))} of {name(doc.get('spec'))}: {_value(doc.get('trials_per_strategy'), name)} trials per "
           f"strategy, a {_value(doc.get('validation'), name)} validation share of each domain's training images, seeds "
           f"{name(json.dumps(doc.get('seeds'), default=str))}, orderings {shown}. Objective: {name(doc.get('objective'))}. "
           f"Sampler: {name(doc.get('sampler'))}.")
    table = []
    for label, entry in sorted(doc["strategies"].items(), key=lambda kv: str(kv[0])):
        if not isinstance(entry, dict):
            continue
        best = entry.get("best") if isinstance(entry.get("best"), dict) else {}
        trials = entry.get("trials") if isinstance(entry.get("trials"), list) else []
        marked = False
        for t in trials:
            if not isinstance(t, dict):
                continue
            params = t.get("params") if isinstance(t.get("params"), dict) else {}
            values = ", ".join(f"{name(k)} {_value(v, name)}" for k, v in sorted(params.items(), key=lambda kv: str(kv[0])))
            value, state = t.get("value"), t.get("state")
            try:
                score = f"{float(value):.3f}" if _num(value) else "—"
            except OverflowError:
                score = "—"
            if score != "—" and state == "pruned":
                score += " (pruned: the orderings run before)"  # Optuna's last intermediate value, not the whole objective
            # the trial whose values were chosen: the first one (a repeat of the same values, `"repeat": true`, is not)
            chosen = bool(params) and params == best and not t.get("repeat") and not marked
            marked = marked or chosen
            table.append([name(label), _value(t.get("number"), name), name(state) + (" (repeat)" if t.get("repeat") is True else ""),
                          values, score, "chosen" if chosen else ""])
    return title, how, TRIAL_HEADERS, table
