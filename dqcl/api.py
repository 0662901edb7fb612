"""The Python API for notebooks: load stored results as a DataFrame, run a spec; and, for Avalanche
users, a spec's domains as Avalanche experience streams with the network, loss and scores to train
and rank any Avalanche strategy on them (`benchmark`, `network`, `loss`, `scores`, `evaluator`)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

from .results.store import DEFAULT_STORE

__all__ = ["load_results", "load_curves", "run", "update", "benchmark", "network", "loss", "scores", "evaluator"]


def _rows(source: str | Path, study: str | None, split_protocols: bool = False) -> list[dict[str, Any]]:
    """Leaderboard entries from a results store, or from a published ``leaderboard.json``; either
    is checked for shape as it is read (`dqcl.results.shape`), so whatever a file holds, what
    goes wrong is a `StoreError`."""
    from .results.leaderboard import entries
    from .results.shape import load_entries
    from .results.store import Store

    path = Path(source)
    if path.suffix == ".json":
        return [r for r in load_entries(path) if study is None or r["study"] == study]
    with Store(path, readonly=True) as s:
        return entries(s, study, split_protocols)


def load_results(source: str | Path = DEFAULT_STORE, study: str | None = None, split_protocols: bool = False):
    """One row per stored run x metric: study, strategy, ordering ("cyto>histo"), seed, metric,
    ACC/BWT/forgetting/FWT/plasticity, R and baseline (nested lists), params (text), cost and provenance.

    ``source`` is a results store or a published ``leaderboard.json``. The columns to group and
    filter by hold hashable values, so ``df.groupby(["strategy", "ordering"])`` works as is.
    Anything a file can hold that is not a dqcl store or leaderboard (missing, a folder, another
    format, another application's database, JSON of the wrong shape) raises `dqcl.errors.StoreError`.

    From a store: a study whose runs differ in their protocol (`dqcl.config.protocol`) raises
    `dqcl.errors.ProtocolError`, or with ``split_protocols`` comes as one study per protocol; the
    ``broken`` column says why a run broke its protocol (None where it kept it): leave those rows out
    of any comparison (the leaderboard does).
    """
    import json

    import pandas as pd

    rows = _rows(source, study, split_protocols)
    for r in rows:
        r["ordering"] = ">".join(r["ordering"]) if isinstance(r["ordering"], list) else r["ordering"]
        r["params"] = json.dumps(r.get("params", {}), sort_keys=True) if not isinstance(r.get("params"), str) else r["params"]
        r["data_manifests"] = json.dumps(r.get("data_manifests", {}), sort_keys=True)
    return pd.DataFrame(rows)


def load_curves(store: str | Path = DEFAULT_STORE, study: str | None = None):
    """The training curves: one row per (run, experience, epoch) with the mean loss, learning rate,
    images and steps so far, beside the run's study, strategy, ordering ("cyto>histo") and seed.

    ``store`` is a results store (a leaderboard.json holds no curves); what cannot be read as one
    raises `dqcl.errors.StoreError`."""
    import pandas as pd

    from .errors import StoreError
    from .results.store import Store

    if Path(store).suffix == ".json":
        raise StoreError(f"{store}: a leaderboard.json holds no training curves; give load_curves the results store it was built from")
    out = []
    with Store(store, readonly=True) as s:
        for run in s.runs(study):
            cfg = run["config"]
            ident = {"study": cfg["study"], "strategy": cfg["strategy"]["label"], "ordering": ">".join(cfg["ordering"]),
                     "seed": cfg["seed"], "run": run["key"]}
            out += [{**ident, **row} for row in run["result"].get("curve") or []]
    return pd.DataFrame(out)


def run(
    spec: str | Path | dict[str, Any] | None = None,
    store: str | Path = DEFAULT_STORE,
    progress: bool = True,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    num_gpus: float | None = None,
    skip_bad: bool = False,
):
    """Run a spec (a TOML path, a dict in the TOML's shape, or None for the quick default); returns the summary.

    The options are those of ``dqcl run benchmark``, and the checks are the same: a redundancy
    spec (one with a ``[redundancy]`` table) runs as ``dqcl run redundancy`` does.
    """
    from .study.executors import ExecutorOptions
    from .study.run import run_spec

    return run_spec(
        spec, store=store, redundancy=None, skip_bad=skip_bad, progress=progress,
        executor=ExecutorOptions(name=executor, workers=workers, address=address, num_gpus=num_gpus),
        say=print,
    )


# ---- streams for Avalanche users ---------------------------------------------------------------


def update(model: str | Path, old: str | Path, new: str | Path, out: str | Path, **options) -> dict[str, Any]:
    """Update a Cellpose ``model`` file on the image/mask pairs of folder ``new`` while replaying a DQ-selected
    share of folder ``old`` (the images it knows), write the updated model to ``out`` (Cellpose's format, the
    input's diameter) and return the report: per method, AP@0.5 on the old and new held-out images before and
    after, the forgetting and the training seconds. ``dqcl update`` on the command line; the options
    (``replay``, ``strategy``, ``steps``, ``compare``, ``report``, ``store``, ...) are
    `dqcl.study.update.update_model`'s."""
    from .study.update import update_model

    return update_model(model, old, new, out, **options)


def _parsed(spec):
    """A `Spec` from a spec TOML path, a dict in the TOML's shape, or a parsed `Spec`. A dict may
    leave out [strategies]: the streams, the network and the scores use none."""
    from .config.parse import load_spec, parse_spec
    from .config.schema import Spec
    from .errors import SpecError

    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        return parse_spec(spec if "strategies" in spec or "redundancy" in spec else {**spec, "strategies": {"naive": {}}}, "<dict>")
    if isinstance(spec, (str, Path)):
        return load_spec(spec)
    raise SpecError(f"expected a spec: a TOML path, a dict in the TOML's shape or a parsed Spec, got {type(spec).__name__}")


def _ordering(spec, ordering: str | Sequence[str] | None) -> tuple[str, ...]:
    from .core.text import quoted
    from .core.validation import did_you_mean
    from .errors import SpecError

    if ordering is None:
        return tuple(spec.orderings[0])
    order = ordering.split(">") if isinstance(ordering, str) else ordering
    if not isinstance(order, (list, tuple)) or not order or not all(isinstance(d, str) for d in order):
        raise SpecError(f"{spec.source}: ordering must be a non-empty list of domain names (or 'a>b'), got {quoted(repr(ordering))}")
    names = list(spec.domains)
    for d in order:
        if d not in spec.domains:
            raise SpecError(f"{spec.source}: ordering names unknown domain {quoted(d)!r}{did_you_mean(d, names)}; "
                            f"the spec's domains: {', '.join(names)}")
    if len(set(order)) != len(order):
        raise SpecError(f"{spec.source}: ordering {list(order)} repeats a domain")
    return tuple(order)


def _run_config(spec: str | Path | dict[str, Any], ordering: str | Sequence[str] | None = None, seed: int = 0):
    """The `RunConfig` a dqcl run of ``spec`` over ``ordering`` with run seed ``seed`` has (its first
    strategy and memory budget: the data does not depend on them)."""
    from dataclasses import replace

    from .config.expand import expand
    from .config.parse import SEED_MAX
    from .errors import SpecError

    parsed = _parsed(spec)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise SpecError(f"{parsed.source}: seed must be an integer from 0 to {SEED_MAX}, got {seed!r}")
    order = _ordering(parsed, ordering)
    first = next(iter(parsed.strategies.items()))
    return expand(replace(parsed, orderings=(order,), seeds=(seed,), strategies=dict([first]), redundancy=None))[0]


def benchmark(spec: str | Path | dict[str, Any], ordering: str | Sequence[str] | None = None, seed: int = 0):
    """A spec's domains as an Avalanche benchmark (a ``CLScenario``): experience i of
    ``train_stream`` is the training patches of ``ordering[i]``; ``test_stream`` holds every
    domain's test patches in the same order.

    ``spec`` is a spec TOML path or a dict in the TOML's shape (a dict may leave out
    [strategies]); ``ordering`` is a list of the spec's domain names (or ``"cyto>histo"``), by
    default the spec's first ordering; ``seed`` is a run seed. The patches are those a dqcl run
    of that ordering and seed trains and is scored on: the same images (the data seed follows
    the spec's ``study.data_seed``: under ``"per_seed"`` each seed draws its own), rescaling,
    patches and Cellpose flow targets (cached on disk under ``data.cache_dir``).

    Each item is ``(image, target, task label 0)``: image (1, H, W) float32, target (4, H, W) in
    Cellpose's layout (labels, cell probability, Y flow, X flow). Train on them with `network`
    and `loss`, and score with `scores` and `evaluator`: Avalanche's default evaluator measures
    classification accuracy, which means nothing for these targets. A spec path that does not
    exist or an ordering naming an unknown domain raises `dqcl.errors.SpecError`; a domain that
    cannot be read, `dqcl.errors.DataError`.
    """
    from .data.streams import make_benchmark
    from .train.run import prepare_domain

    cfg = _run_config(spec, ordering, seed)
    prepared = [prepare_domain(ds, cfg) for ds in cfg.domains]
    return make_benchmark([p[0] for p in prepared], [p[1] for p in prepared])


def network(spec: str | Path | dict[str, Any] | None = None):
    """The network a dqcl run of ``spec`` trains (a ``torch.nn.Module``): Cellpose 3's CPnet with
    the spec's ``[model]`` widths and normalisation and its ``[data]`` diameter, or with
    ``arch = "cpsam"`` Cellpose 4's CPSAM structure with its ``encoder`` (tiles of the patch size),
    started from ``[model] init`` where the spec names a file. Input (B, 1, H, W); output
    (B, 3, H, W): Y flow, X flow, cell-probability logit. Seed torch first (``torch.manual_seed``)
    for a repeatable start. ``None``: Cellpose's own widths."""
    from .cpnet.model import CellposeNet, build_network, load_init
    from .errors import DqclError

    if spec is None:
        return CellposeNet()
    parsed = _parsed(spec)
    if parsed.model.arch == "cpsam":
        from .study.preflight import require_cellpose4

        require_cellpose4(parsed)
    model = build_network(parsed.model, parsed.data)
    if parsed.model.init:
        from .study.sizes import diameter_limits

        try:
            load_init(model, parsed.model.init, spec_diameter=parsed.data.diameter, diameters=diameter_limits(parsed))
        except ValueError as err:
            raise DqclError(f"{parsed.source}: model.init: {err}") from None
    return model


def loss(pred, target):
    """Cellpose's training loss, as every dqcl run uses it: MSE(predicted flows, 5 x true flows) / 2
    + BCE-with-logits(cell probability); ``pred`` is the network's output, ``target`` the stream's.
    Pass it as an Avalanche strategy's ``criterion``."""
    from .cpnet.model import cellpose_loss

    return cellpose_loss(pred, target)


@functools.cache
def _scores_type():
    """`Scores`, made on first use: its base class is an Avalanche metric, and importing this module
    must not import Avalanche (``dqcl.load_results`` stays light)."""
    from .evaluation.metrics import METRICS
    from .evaluation.scores import SegmentationScores

    class Scores(SegmentationScores):
        """dqcl's scores as an Avalanche metric: every ``strategy.eval(stream)`` adds one row, the
        mean score of each experience it scored (`dqcl.evaluation.metrics.METRICS`); `R` reads them."""

        def __init__(self, settings) -> None:
            super().__init__(settings)
            self.rows: list[dict[int, dict[str, float]]] = []
            self._scored: list[int] = []

        def before_eval(self, strategy) -> None:
            self._scored = []

        def after_eval_exp(self, strategy):
            out = super().after_eval_exp(strategy)
            self._scored.append(strategy.experience.current_experience)
            return out

        def after_eval(self, strategy) -> None:
            if self._scored:
                self.rows.append({j: dict(self.scores[j]) for j in sorted(set(self._scored))})

        def R(self, metric: str = "ap50") -> list[list[float]]:
            """One row per ``strategy.eval`` call, in order; in each, the score of every experience
            that call scored, by experience id. Evaluating the whole test stream after training
            each experience gives R[i][j] = score on domain j after training experience i."""
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
            return [[row[j][metric] for j in sorted(row)] for row in self.rows]

    Scores.__module__ = __name__
    return Scores


def scores(spec: str | Path | dict[str, Any] | None = None):
    """dqcl's metrics for an Avalanche strategy: an Avalanche ``PluginMetric`` that turns the
    network's outputs on each test experience into Cellpose masks (with the spec's ``[eval]``
    settings; ``None``: Cellpose's) and averages pixel and instance scores per experience (IoU,
    Dice, AP at IoU 0.5/0.75/0.9, PQ, AJI, ...: `dqcl.evaluation.metrics.METRICS`).

    Give it to `evaluator`; after training, ``.R("ap50")`` is the score matrix, one row per
    ``strategy.eval`` call, and ``.rows`` holds every metric."""
    from .cpnet.masks import MaskSettings

    return _scores_type()(MaskSettings() if spec is None else _parsed(spec).eval)


def evaluator(scores, loggers: Sequence[Any] = ()):
    """An Avalanche ``EvaluationPlugin`` scoring with ``scores`` (from `scores`), for a strategy's
    ``evaluator=`` argument: never Avalanche's default, whose accuracy assumes classes. With
    ``loggers`` (Avalanche loggers) it also reports the training loss to them."""
    import warnings

    from .evaluation.scores import make_evaluator

    with warnings.catch_warnings():  # Avalanche warns when no logger is given: the scores are read from `scores`
        warnings.filterwarnings("ignore", message="No loggers specified")
        return make_evaluator(scores, list(loggers))
