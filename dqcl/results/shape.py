"""Shape checks for results written by someone else: a store's run rows and a leaderboard.json's entries.

A store or a leaderboard.json may come from anyone (a colleague, a download, a hand edit), so
every field the results code reads from one is checked here, once, as it is read; the code
after that may index and do arithmetic without guarding each access.

One bad row refuses the whole read with a `StoreError` (one line: the file, the row's run key
or index, the field and what is wrong), rather than being skipped with a warning: a table that
quietly leaves a run out would be silently wrong, and the message names the row so that it can
be deleted or the file restored from a copy.

What a run row must hold (T = the number of domains in ``config.ordering``):

- ``config``: ``study``, ``strategy.label`` and ``strategy.name`` non-empty strings (every string
  dqcl shows, these among them, holds no lone surrogate, which no UTF-8 file can hold),
  ``strategy.params`` an object (its ``rate``, if set, a finite number), ``ordering`` a non-empty
  list of non-empty strings, ``seed`` an integer in [0, 2^32); optional ``subset`` (an object with
  a ``selector`` string and a ``rate`` in [0, 1]), ``version`` (a string), ``data_manifests``
  (domain -> manifest strings, as pairs or an object) and ``memory`` (an object: ``size`` and
  ``replay_batch`` integers >= 0, ``rate`` a number in [0, 1], ``protocol`` and ``compute``
  strings, each may be left out);
- ``result.R``: for every metric, T rows of T finite scores in [0, 1] (one row where the strategy
  trains once on every domain, as joint does; never for naive, cumulative, replay or dq_replay,
  whose rows the claims read one by one); every metric with the same number of rows;
- ``result.baseline``: for every metric, T scores in [0, 1], each may be null or NaN (a
  redundancy run has no random-init scores: null, NaN in stores written before null was);
- ``result.timings``: ``train_s`` a list of finite seconds >= 0, ``total_s`` finite seconds >= 0;
- optional fields, each null or of its type: ``subset.size``, ``images_seen``, ``attempts`` and
  ``steps`` integers >= 0; ``device``, ``executor``, ``model_sha256`` and ``versions.dqcl_commit``
  strings; ``peak_memory_mb.host/gpu`` finite numbers >= 0; ``curve`` a list of objects whose
  values are all numbers (under keys other than study, strategy, ordering, seed and run, the
  columns load_curves adds) or null (a number that was not finite), with an integer ``experience``
  and ``steps`` and a ``loss`` (null, or in older stores NaN or infinite, when training diverged); ``norm_swap`` two objects of every metric's non-empty list of
  finite numbers; ``compute`` an object of counts (``steps``, ``forward``, ``backward``,
  ``step_forward``, ``step_backward`` integers >= 0, ``per_step`` two of them, ``samples_per_step``
  a number in [0, 2^63]); ``memory`` an object (``budget``, ``protocol`` and ``compute`` strings,
  ``size``, ``replay_batch`` and ``max_held`` integers >= 0, ``rate`` a number in [0, 1], ``held``
  a list of integers >= 0 or null, ``old_share`` a list of numbers in [0, 1] or null); ``data`` an object of domain -> object (``train_hash`` and
  ``test_hash`` strings, ``train_patches``, ``test_patches``, ``test_objects`` and ``test_in_train``
  integers >= 0);
- nothing nested deeper than `MAX_DEPTH` levels.

Across rows: the runs of one study, ordering and strategy label have R matrices of the same
number of rows (the R figure averages them).

A leaderboard.json is a list of entries, each an object whose columns to group and filter by are
set: ``study``, ``strategy`` and ``metric`` non-empty strings, ``ordering`` a non-empty list of
non-empty strings (or one string), ``seed`` an integer in [0, 2^32); its ACC/BWT/forgetting/FWT/
plasticity numbers or null, and ``R`` and ``baseline``, if set, lists (of lists) of numbers or null.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from ..core.text import lone_surrogate, one_line
from ..errors import StoreError
from ..evaluation.metrics import METRICS
from .cl_metrics import CL_METRICS

__all__ = ["MAX_DEPTH", "SEED_LIMIT", "read_run", "check_run", "check_same_shapes", "load_entries", "check_entry"]

MAX_DEPTH = 32  # real rows nest 5 levels; far below Python's recursion limit for what reads them later
SEED_LIMIT = 2**32  # numpy's and torch's seeds
_INT_LIMIT = 2**63  # counts and step numbers: beyond this they stop being numbers a float or a C long can hold
_SLACK = 1e-6  # scores are means of ratios in [0, 1]; a rounding error above 1 is still a score
_SHOW = 80  # characters of a quoted value in a message
_CURVE_IDENT = ("study", "strategy", "ordering", "seed", "run")  # the columns `dqcl.load_curves` adds to each curve row
_ROW_BY_ROW = ("naive", "cumulative", "replay", "dq_replay")  # the claims read R[1][...] of these: never one row


class _Bad(ValueError):
    """What is wrong with one field; the caller adds the file and the row."""


# ---- messages ------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as JSON, short: at most about `_SHOW` characters, containers described, not printed."""
    if isinstance(value, dict):
        keys = ", ".join(json.dumps(str(k), ensure_ascii=False) for k in list(value)[:4])
        return f"an object with keys {keys}{', ...' if len(value) > 4 else ''}" if value else "an empty object"
    if isinstance(value, list):
        return f"a list of {_count(len(value), 'item')}" if value else "an empty list"
    try:  # a long string: only its start is escaped, not all of it
        text = json.dumps(value[: _SHOW + 1] if isinstance(value, str) else value, ensure_ascii=False)
    except (TypeError, ValueError):  # bytes from a foreign column; an int past Python's digit limit
        text = f"a {type(value).__name__}"
    return text if len(text) <= _SHOW else text[: _SHOW - 3] + "..."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _bad(path: str, value: Any, want: str) -> _Bad:
    return _Bad(f"{path} is {_show(value)}, expected {want}")


# ---- field checks: those of containers return what they checked -------------------------


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(path, value, "an object")
    return value


def _list(value: Any, path: str, want: str = "a list", nonempty: bool = False) -> list[Any]:
    if not isinstance(value, list) or (nonempty and not value):
        raise _bad(path, value, want)
    return value


def _text(value: Any, path: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not (value or optional):
        raise _bad(path, value, "a string" if optional else "a non-empty string")
    bad = lone_surrogate(value)
    if bad is not None:  # a JSON escape such as \ud800: no output file (UTF-8) could hold it
        raise _Bad(f"{path} holds U+{ord(bad):04X}, a lone surrogate, expected text")


def _float(value: Any) -> float | None:
    """``value`` as a float when it is a JSON number a float can hold (a bool is not one), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _number(value: Any, path: str, lo: float = -math.inf, hi: float = math.inf, optional: bool = False,
            finite: bool = True) -> None:
    if optional and value is None:
        return
    x = _float(value)
    if x is None or (finite and not math.isfinite(x)) or (math.isfinite(x) and not lo <= x <= hi):
        bounds = "" if (lo, hi) == (-math.inf, math.inf) else f" in [{lo:g}, {hi:g}]"
        raise _bad(path, value, f"{'a finite' if finite else 'a'} number{bounds}")


def _int(value: Any, path: str, lo: int = 0, hi: int = _INT_LIMIT, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value < hi:
        raise _bad(path, value, f"an integer in [{lo}, {hi})")


def _score(value: Any, path: str, missing_ok: bool = False) -> None:
    x = _float(value)
    if missing_ok and (value is None or (x is not None and math.isnan(x))):
        return
    if x is None or not math.isfinite(x) or not -_SLACK <= x <= 1 + _SLACK:
        raise _bad(path, value, "a finite score in [0, 1]" + (" or null" if missing_ok else ""))


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels; a loop, not recursion."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                return True
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


def _parse(text: Any, what: str) -> Any:
    """JSON text parsed, at most `MAX_DEPTH` levels deep."""
    try:
        value = json.loads(text)
    except RecursionError:  # the C parser recurses once per level: tens of thousands of '[' exhaust the stack
        raise _Bad(f"{what} is nested too deeply (more than {MAX_DEPTH} levels)") from None
    except (TypeError, ValueError) as err:
        raise _Bad(f"{what} is not valid JSON ({err})") from None
    if _too_deep(value):
        raise _Bad(f"{what} is nested too deeply (more than {MAX_DEPTH} levels)")
    return value


# ---- a store's run rows --------------------------------------------------------------------


def _refuse(where: str | Path, key: Any, problem: str) -> StoreError:
    return StoreError(one_line(f"{where}: run {_show(key)}: {problem}; delete that run or restore the store from a copy"))


def read_run(key: Any, config: Any, result: Any, where: str | Path) -> dict[str, Any]:
    """The run row ``key`` of store ``where`` from its stored JSON texts, checked (`check_run`);
    anything wrong with it is a one-line `StoreError` naming the store and the run."""
    try:
        run = {"key": key, "config": _parse(config, "its stored config"), "result": _parse(result, "its stored result")}
    except _Bad as err:
        raise _refuse(where, key, str(err)) from None
    check_run(run, where)
    return run


def check_run(run: dict[str, Any], where: str | Path) -> None:
    """Refuse (`StoreError`, one line) a run row ``{"key", "config", "result"}`` of the wrong shape
    (see the module's docstring for what it must hold)."""
    try:
        if not isinstance(run.get("key"), str) or not run["key"]:
            raise _Bad("its key is not a non-empty string")
        if _too_deep(run.get("config")) or _too_deep(run.get("result")):
            raise _Bad(f"it is nested too deeply (more than {MAX_DEPTH} levels)")
        cfg = _check_config(run.get("config"))
        _check_result(run.get("result"), cfg)
    except _Bad as err:
        raise _refuse(where, run.get("key"), str(err)) from None


def _check_config(cfg: Any) -> dict[str, Any]:
    _obj(cfg, "config")
    _text(cfg.get("study"), "config.study")
    strategy = _obj(cfg.get("strategy"), "config.strategy")
    _text(strategy.get("label"), "config.strategy.label")
    _text(strategy.get("name"), "config.strategy.name")
    params = _obj(strategy.get("params"), "config.strategy.params")
    _number(params.get("rate"), "config.strategy.params.rate", optional=True)  # the replay figures plot it
    for i, domain in enumerate(_list(cfg.get("ordering"), "config.ordering", "a non-empty list of domain names", nonempty=True)):
        _text(domain, f"config.ordering[{i}]")
    _int(cfg.get("seed"), "config.seed", 0, SEED_LIMIT)
    if cfg.get("subset") is not None:
        subset = _obj(cfg["subset"], "config.subset")
        _text(subset.get("selector"), "config.subset.selector")
        _number(subset.get("rate"), "config.subset.rate", 0.0, 1.0)
    _text(cfg.get("version"), "config.version", optional=True)
    if cfg.get("train") is not None:  # the rate-or-count claim reads the batch size
        _int(_obj(cfg["train"], "config.train").get("batch_size"), "config.train.batch_size", 1, optional=True)
    _check_manifests(cfg.get("data_manifests"))
    if cfg.get("memory") is not None:
        memory = _obj(cfg["memory"], "config.memory")
        for name in ("size", "replay_batch"):
            _int(memory.get(name), f"config.memory.{name}", optional=True)
        _number(memory.get("rate"), "config.memory.rate", 0.0, 1.0, optional=True)
        for name in ("protocol", "compute"):
            _text(memory.get(name), f"config.memory.{name}", optional=True)
    return cfg


def _check_manifests(manifests: Any) -> None:
    """Domain -> manifest strings, as [domain, manifest] pairs (what a run writes) or an object."""
    if isinstance(manifests, dict):
        for domain, manifest in manifests.items():
            _text(domain, "config.data_manifests (a domain)")
            _text(manifest, f"config.data_manifests.{domain}")
        return
    if manifests is None:
        return
    for i, pair in enumerate(_list(manifests, "config.data_manifests", "a list of [domain, manifest] pairs")):
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(s, str) for s in pair):
            raise _bad(f"config.data_manifests[{i}]", pair, "a [domain, manifest] pair of strings")
        for j, s in enumerate(pair):
            _text(s, f"config.data_manifests[{i}][{j}]")


def _check_result(res: Any, cfg: dict[str, Any]) -> None:
    _obj(res, "result")
    _check_scores(res, len(cfg["ordering"]), cfg["strategy"]["name"] not in _ROW_BY_ROW)
    timings = _obj(res.get("timings"), "result.timings")
    for i, s in enumerate(_list(timings.get("train_s"), "result.timings.train_s", "a list of seconds")):
        _number(s, f"result.timings.train_s[{i}]", 0.0)
    _number(timings.get("total_s"), "result.timings.total_s", 0.0)
    if res.get("subset") is not None:
        _int(_obj(res["subset"], "result.subset").get("size"), "result.subset.size", optional=True)
    for name in ("images_seen", "attempts"):
        _int(res.get(name), f"result.{name}", optional=True)
    for name in ("device", "executor", "model_sha256"):
        _text(res.get(name), f"result.{name}", optional=True)
    if res.get("peak_memory_mb") is not None:
        peak = _obj(res["peak_memory_mb"], "result.peak_memory_mb")
        for name in ("host", "gpu"):
            _number(peak.get(name), f"result.peak_memory_mb.{name}", 0.0, optional=True)
    if res.get("versions") is not None:
        _text(_obj(res["versions"], "result.versions").get("dqcl_commit"), "result.versions.dqcl_commit", optional=True)
    if res.get("steps") is not None:
        for i, n in enumerate(_list(res["steps"], "result.steps", "a list of step counts")):
            _int(n, f"result.steps[{i}]")
    if res.get("curve") is not None:
        for i, row in enumerate(_list(res["curve"], "result.curve", "a list of epochs")):
            _check_epoch(row, f"result.curve[{i}]")
    if res.get("norm_swap"):
        _check_swap(res["norm_swap"])
    if res.get("compute") is not None:
        _check_compute(res["compute"])
    if res.get("memory") is not None:
        _check_memory(res["memory"])
    if res.get("data") is not None:
        for domain, record in _obj(res["data"], "result.data").items():
            _text(domain, "result.data (a domain)")
            path = f"result.data[{_show(domain)}]"
            record = _obj(record, path)
            for name in ("train_hash", "test_hash"):
                _text(record.get(name), f"{path}.{name}", optional=True)
            for name in ("train_patches", "test_patches", "test_objects", "test_in_train"):
                _int(record.get(name), f"{path}.{name}", optional=True)


def _check_compute(compute: Any) -> None:
    """The samples a run forwarded and backpropagated (`dqcl.train.plugins.ComputeCount`)."""
    compute = _obj(compute, "result.compute")
    for name in ("steps", "forward", "backward", "step_forward", "step_backward", "reference_backward"):
        _int(compute.get(name), f"result.compute.{name}", optional=True)
    if compute.get("per_step") is not None:
        per_step = _list(compute["per_step"], "result.compute.per_step", "a list of 2 sample counts")
        if len(per_step) != 2:
            raise _bad("result.compute.per_step", per_step, "a list of 2 sample counts")
        for i, n in enumerate(per_step):
            _int(n, f"result.compute.per_step[{i}]")
    _number(compute.get("samples_per_step"), "result.compute.samples_per_step", 0.0, _INT_LIMIT, optional=True)


def _check_memory(memory: Any) -> None:
    """The memory budget a run obeyed and the patches it held (`dqcl.train.run._memory_record`)."""
    memory = _obj(memory, "result.memory")
    for name in ("budget", "protocol", "compute"):
        _text(memory.get(name), f"result.memory.{name}", optional=True)
    for name in ("size", "replay_batch", "max_held"):
        _int(memory.get(name), f"result.memory.{name}", optional=True)
    _number(memory.get("rate"), "result.memory.rate", 0.0, 1.0, optional=True)
    if memory.get("held") is not None:
        for i, n in enumerate(_list(memory["held"], "result.memory.held", "a list of patch counts")):
            _int(n, f"result.memory.held[{i}]", optional=True)
    if memory.get("old_share") is not None:
        for i, x in enumerate(_list(memory["old_share"], "result.memory.old_share", "a list of shares")):
            _number(x, f"result.memory.old_share[{i}]", 0.0, 1.0, optional=True)


def _check_scores(res: dict[str, Any], t: int, one_row_ok: bool) -> None:
    """R and baseline of every metric, T scores wide; R with the same number of rows for every metric."""
    R = _obj(res.get("R"), "result.R")
    baseline = _obj(res.get("baseline"), "result.baseline")
    heights = set()
    for metric in METRICS:
        heights.add(_check_matrix(R.get(metric), f"result.R.{metric}", t, one_row_ok))
        row = _list(baseline.get(metric), f"result.baseline.{metric}", f"a list of {t} scores")
        if len(row) != t:
            raise _Bad(f"result.baseline.{metric} has {_count(len(row), 'score')}, expected {t} (one per domain of config.ordering)")
        for j, v in enumerate(row):
            _score(v, f"result.baseline.{metric}[{j}]", missing_ok=True)
    if len(heights) > 1:
        raise _Bad(f"result.R has matrices of {' and '.join(map(str, sorted(heights)))} rows; every metric's must have as many")


def _check_matrix(R: Any, path: str, t: int, one_row_ok: bool) -> int:
    """A T x T (or, where ``one_row_ok``, 1 x T) matrix of scores; returns its number of rows."""
    want = f"{t} rows of {t} scores" + (" (or one row)" if one_row_ok and t > 1 else "")
    rows = _list(R, path, f"a list of {want}", nonempty=True)
    if len(rows) != t and not (one_row_ok and len(rows) == 1):
        raise _Bad(f"{path} has {_count(len(rows), 'row')}, expected {want}: one per domain of config.ordering")
    for i, row in enumerate(rows):
        if len(_list(row, f"{path}[{i}]", f"a list of {t} scores")) != t:
            raise _Bad(f"{path}[{i}] has {_count(len(row), 'score')}, expected {t} (one per domain of config.ordering)")
        for j, v in enumerate(row):
            _score(v, f"{path}[{i}][{j}]")
    return len(rows)


def _check_epoch(row: Any, path: str) -> None:
    """One training-curve row: numbers only (they become columns of `dqcl.load_curves`)."""
    for name, v in _obj(row, path).items():
        _text(name, f"{path} (a key)")
        if name in _CURVE_IDENT:  # load_curves puts these beside each row: a row's own would relabel the run
            raise _Bad(f"{path} has the key {_show(name)}, which names the run, not a number of its training")
        _number(v, f"{path}.{name}", finite=False, optional=True)  # null: not finite (the store writes no NaN)
    _int(row.get("experience"), f"{path}.experience")
    _int(row.get("steps"), f"{path}.steps")
    if "loss" not in row:
        raise _Bad(f"{path} has no loss")
    _number(row.get("loss"), f"{path}.loss", finite=False, optional=True)  # null, NaN or infinite: a diverged run, flagged


def _check_swap(swap: Any) -> None:
    for part in ("new_weights_old_stats", "old_weights_new_stats"):
        scores = _obj(_obj(swap, "result.norm_swap").get(part), f"result.norm_swap.{part}")
        for metric in METRICS:
            path = f"result.norm_swap.{part}.{metric}"
            for j, v in enumerate(_list(scores.get(metric), path, "a non-empty list of scores", nonempty=True)):
                _number(v, f"{path}[{j}]")


def check_same_shapes(runs: Iterable[dict[str, Any]], where: str | Path) -> None:
    """Refuse runs of one study, ordering and strategy label whose R matrices differ in rows
    (each run already passed `check_run`): the R figure averages them."""
    seen: dict[tuple, tuple[Any, int]] = {}
    for run in runs:
        cfg = run["config"]
        cell = (cfg["study"], tuple(cfg["ordering"]), cfg["strategy"]["label"])
        rows = len(run["result"]["R"][METRICS[0]])
        first = seen.setdefault(cell, (run["key"], rows))
        if first[1] != rows:
            raise _refuse(where, run["key"], f"its R matrices have {_count(rows, 'row')} but those of run {_show(first[0])}, "
                                             f"of the same study, ordering and strategy label, have {first[1]}")


# ---- a leaderboard.json's entries ----------------------------------------------------------


def load_entries(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a published ``leaderboard.json``, each checked (`check_entry`); a file that
    cannot be read, is not JSON, or holds anything else is a one-line `StoreError` naming it."""
    import stat

    from ..core.provenance import max_file_bytes

    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO would wait for a writer forever, /dev/zero never ends
            raise StoreError(one_line(f"{path}: not a readable leaderboard.json: not a regular file"))
        if st.st_size > max_file_bytes():
            raise StoreError(one_line(f"{path}: not a readable leaderboard.json: {st.st_size:,} bytes, over dqcl's limit of "
                                      f"{max_file_bytes():,} per file (raise it with DQCL_MAX_FILE_BYTES)"))
        rows = _parse(path.read_bytes(), "its text")
    except OSError as err:
        raise StoreError(one_line(f"{path}: not a readable leaderboard.json ({err})")) from None
    except _Bad as err:
        raise StoreError(one_line(f"{path}: not a readable leaderboard.json: {err}")) from None
    if not isinstance(rows, list):
        raise StoreError(one_line(f"{path}: not a leaderboard.json: it holds {_show(rows)}, not a list of entries"))
    for i, row in enumerate(rows):
        check_entry(row, i, path)
    return rows


def check_entry(row: Any, index: int, where: str | Path) -> None:
    """Refuse (`StoreError`, one line) a leaderboard.json entry whose columns to group and filter by
    (study, strategy, ordering, seed, metric) or whose numbers are not what `entries` writes."""
    try:
        _obj(row, "the entry")
        for name in ("study", "strategy", "metric"):
            _text(row.get(name), name)
        if not isinstance(row.get("ordering"), str):
            for i, domain in enumerate(_list(row.get("ordering"), "ordering", "a non-empty list of domain names", nonempty=True)):
                _text(domain, f"ordering[{i}]")
        _int(row.get("seed"), "seed", 0, SEED_LIMIT)
        for name in CL_METRICS:
            _number(row.get(name), name, optional=True, finite=False)  # NaN where a run had no score
        if row.get("R") is not None:
            for i, scores in enumerate(_list(row["R"], "R", "a list of rows of scores")):
                _numbers_or_null(scores, f"R[{i}]")
        if row.get("baseline") is not None:
            _numbers_or_null(row["baseline"], "baseline")
    except _Bad as err:
        raise StoreError(one_line(f"{where}: entry {index}: {err}")) from None


def _numbers_or_null(values: Any, path: str) -> None:
    for j, v in enumerate(_list(values, path, "a list of scores")):
        _number(v, f"{path}[{j}]", optional=True, finite=False)
