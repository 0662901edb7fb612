"""`check_strategy`: the contract every registered strategy meets (scikit-learn's check_estimator idea).

Each check is a function ``check(name, workdir)`` that raises AssertionError with a message a
strategy author can act on. `tests/test_strategies.py` runs every check on every registered
strategy, one test id each; a third party can call `check_strategy("mine", tmp)` on its own.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import SpecError

__all__ = ["CHECKS", "check_strategy", "tiny_spec"]

_TINY = {
    "study": {"name": "contract", "seeds": [0], "orderings": [["cyto", "histo"]], "device": "cpu"},
    "data": {"patch_size": 48, "stride": 48},
    "domains": {"cyto": {"n_train": 2, "n_test": 1, "size": 96}, "histo": {"n_train": 2, "n_test": 1, "size": 96}},
    "model": {"widths": [8, 16, 32, 64]},
    "train": {"epochs": 1, "batch_size": 4},
    "eval": {"niter": 50},
}
_RESULTS: dict[tuple[str, str], dict[str, Any]] = {}


def tiny_spec(name: str, workdir: Path, params: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = json.loads(json.dumps(_TINY))
    raw["data"]["cache_dir"] = str(Path(workdir) / "cache")
    raw["strategies"] = {name: dict(params or {})}
    return raw


def _config(name: str, workdir: Path, params: dict[str, Any] | None = None):
    from .config.expand import expand
    from .config.parse import parse_spec

    (cfg,) = expand(parse_spec(tiny_spec(name, workdir, params)))
    return cfg


def _signature(x) -> bytes:
    """A patch's pixel values, sorted: the same for every flip and rotation of it (training augments)."""
    return hashlib.sha256(np.sort(np.asarray(x, np.float32).ravel()).tobytes()).digest()


def _probe(first_domain: set[bytes]):
    """An Avalanche plugin that watches the second experience: steps whose loss exceeds the task
    loss (a penalty), and training forward passes that see a patch of the first domain (a memory)."""
    from avalanche.core import SupervisedPlugin

    class Probe(SupervisedPlugin):
        def __init__(self) -> None:
            super().__init__()
            self.penalty_steps = 0
            self.memory_patches = 0
            self.distinct: set[bytes] = set()  # the first domain's patches seen, each once
            self._hook = None

        def _seen(self, module, args) -> None:
            if module.training:
                signatures = [_signature(x.detach().cpu()) for x in args[0]]
                seen = [sig for sig in signatures if sig in first_domain]
                self.memory_patches += len(seen)
                self.distinct.update(seen)

        def before_training_exp(self, strategy, **kwargs) -> None:
            if strategy.clock.train_exp_counter == 1:
                self._hook = strategy.model.register_forward_pre_hook(self._seen)

        def before_backward(self, strategy, **kwargs) -> None:
            if strategy.clock.train_exp_counter == 1:
                task = strategy._criterion(strategy.mb_output, strategy.mb_y)
                if float(strategy.loss) > float(task) * (1 + 1e-6):
                    self.penalty_steps += 1

        def after_training_exp(self, strategy, **kwargs) -> None:
            if self._hook is not None:
                self._hook.remove()
                self._hook = None

    return Probe()


def _run(name: str, workdir: Path, memory: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tiny two-experience run, once per strategy, folder and ``[memory]`` table (several checks
    read it), watched by a probe that only observes (the determinism and resume checks compare it
    with unwatched runs)."""
    from .config.expand import expand
    from .config.parse import parse_spec
    from .train.run import prepare_domain, run_one

    key = (name, str(workdir), json.dumps(memory, sort_keys=True))
    if key not in _RESULTS:
        if memory is None:
            cfg = _config(name, workdir)
        else:
            (cfg,) = expand(parse_spec({**tiny_spec(name, workdir), "memory": memory}))
        train, _ = prepare_domain(cfg.domains[0], cfg)
        probe = _probe({_signature(x) for x in train.images})
        result = run_one(cfg, probes=(probe,))
        _RESULTS[key] = {**result, "first_domain_patches": len(train),
                         "probe": {"penalty_steps": probe.penalty_steps, "memory_patches": probe.memory_patches,
                                   "distinct": len(probe.distinct)}}
    return _RESULTS[key]


def _budget_table(name: str, size: int) -> dict[str, Any]:
    """A ``[memory]`` table the strategy accepts: ``size`` patches, 2 memory samples per step in batches of 4
    (1 from a memory of 1 patch, which cannot give 2), compute matched; replayed by minibatch where the
    strategy can, else mixed into the data."""
    from .config.strategies import strategy_entry

    protocols = getattr(strategy_entry(name).factory, "protocols", ("batch",))
    return {"size": size, "protocol": "batch" if "batch" in protocols else protocols[0], "replay_batch": min(2, size),
            "compute": "matched"}


def check_builds_with_defaults(name: str, workdir: Path) -> None:
    import torch
    from avalanche.training.templates import SupervisedTemplate

    from .config.strategies import resolve_params
    from .cpnet.model import CellposeNet, cellpose_loss
    from .evaluation.scores import SegmentationScores, make_evaluator
    from .train.strategy import Base, build_strategy

    model = CellposeNet((8, 16, 32, 64))
    base = Base(model, torch.optim.SGD(model.parameters(), lr=0.01), cellpose_loss, 4, 1, 4, torch.device("cpu"),
                make_evaluator(SegmentationScores()))
    built = build_strategy(name, base, resolve_params(name, {}))
    assert isinstance(built, SupervisedTemplate), f"strategy '{name}' built {type(built).__name__}, not an Avalanche SupervisedTemplate"


def check_records_params_exactly(name: str, workdir: Path) -> None:
    from .config.strategies import resolve_params

    defaults = resolve_params(name, {})
    cfg = _config(name, workdir, defaults)
    assert cfg.strategy.params == defaults, f"stored {cfg.strategy.params} != given {defaults}"
    stored = json.loads(json.dumps(cfg.to_dict()))["strategy"]["params"]
    assert stored == defaults, f"parameters do not survive the store's JSON: {stored} != {defaults}"
    assert _config(name, workdir).key == cfg.key, "spelling out the defaults changed the run's key"


def check_trains_two_experiences(name: str, workdir: Path) -> None:
    res = _run(name, workdir)
    rows = 1 if name == "joint" else 2
    for metric, R in res["R"].items():
        r = np.asarray(R)
        assert r.shape == (rows, 2), f"R[{metric}] has shape {r.shape}, expected ({rows}, 2)"
        assert np.all((r >= 0) & (r <= 1)), f"R[{metric}] leaves [0, 1]: {R}"
    assert res["images_seen"] > 0, "no training image was seen"


def check_deterministic(name: str, workdir: Path) -> None:
    from .train.run import run_one

    again = run_one(_config(name, workdir))
    assert again["R"] == _run(name, workdir)["R"], "two runs with the same seed gave different score matrices"
    assert again["model_sha256"] == _run(name, workdir)["model_sha256"], "two runs with the same seed trained different weights"


class _Interrupted(Exception):
    pass


def check_resumes_exactly(name: str, workdir: Path) -> None:
    """A run stopped right after its first checkpoint and resumed gives the uninterrupted run's result."""
    from .train.run import run_one

    cfg = _config(name, workdir)
    path = Path(workdir) / "checkpoints" / f"{name}-{cfg.key}.pt"
    path.unlink(missing_ok=True)

    def stop(msg: str) -> None:
        if msg.startswith("checkpoint saved"):
            raise _Interrupted

    try:
        run_one(cfg, on_step=stop, checkpoint=path)
    except _Interrupted:
        pass
    if name == "joint":  # one training phase: nothing to checkpoint between experiences
        assert not path.exists(), "a single-phase run wrote a checkpoint"
        return
    assert path.is_file(), "no checkpoint was written after the first experience"
    resumed = run_one(cfg, checkpoint=path)
    full = _run(name, workdir)
    assert resumed["resumed_from"] == 1, f"the run did not resume from its checkpoint ({resumed['resumed_from']})"
    assert resumed["R"] == full["R"], "the resumed run's score matrices differ from the uninterrupted run's"
    assert resumed["images_seen"] == full["images_seen"], "the resumed run saw a different number of images"
    assert resumed["model_sha256"] == full["model_sha256"], "the resumed run ends with different network weights"


def check_leaves_data_untouched(name: str, workdir: Path) -> None:
    from .train.run import prepare_domain, run_one

    cfg = _config(name, workdir)
    before = [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
              for ds in cfg.domains for part in prepare_domain(ds, cfg) for a in (part.images, part.targets)]
    run_one(cfg)
    after = [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
             for ds in cfg.domains for part in prepare_domain(ds, cfg) for a in (part.images, part.targets)]
    assert before == after, "training changed the experiences' images or targets in place"


def check_changes_training(name: str, workdir: Path) -> None:
    """Every strategy but naive fine-tuning trains to other weights than naive does from the same seed."""
    if name == "naive":
        return
    assert _run(name, workdir)["model_sha256"] != _run("naive", workdir)["model_sha256"], (
        f"strategy '{name}' trains to exactly the weights naive fine-tuning does: it changes nothing"
    )


def check_declared_effects(name: str, workdir: Path) -> None:
    """A strategy that declares a penalty adds one to the loss in the second experience; one that
    declares a memory puts patches of the first domain through the network while training the second."""
    from .config.strategies import strategy_entry

    effects = getattr(strategy_entry(name).factory, "effects", ())
    seen = _run(name, workdir)["probe"]
    if "penalty" in effects:
        assert seen["penalty_steps"] > 0, (
            f"strategy '{name}' declares a penalty, but no training step of the second experience had a loss above the task loss"
        )
    if "memory" in effects:
        assert seen["memory_patches"] > 0, (
            f"strategy '{name}' declares a memory, but no patch of the first domain reached the network while training the second"
        )


def check_obeys_memory_budget(name: str, workdir: Path) -> None:
    """A strategy that keeps samples of earlier domains obeys the spec's ``[memory] size``: with a
    budget of 1 patch no more than 1 distinct patch of the first domain reaches the network while it
    trains the second, and with 3 the strategy reports holding exactly 3 (the first domain has more)."""
    from .config.strategies import strategy_entry

    kind = getattr(strategy_entry(name).factory, "memory", None)
    if kind not in ("budget", "size"):
        return
    one = _run(name, workdir, _budget_table(name, 1))
    assert one["probe"]["distinct"] <= 1, (
        f"strategy '{name}' ignores the shared memory budget: with [memory] size = 1, {one['probe']['distinct']} distinct "
        "patches of the first domain reached the network while it trained the second (read base.memory)")
    three = _run(name, workdir, _budget_table(name, 3))
    assert three["first_domain_patches"] > 3, "the tiny first domain is too small for this check"
    held = (three.get("memory") or {}).get("max_held")
    assert held is not None, (
        f"strategy '{name}' declares a memory but reports none it holds: give its plugin "
        "dqcl.train.rehearsal.Rehearsal's memory_held()")
    assert held == 3, f"strategy '{name}' holds {held} patches under [memory] size = 3 (it must hold exactly the budget)"
    assert three["probe"]["distinct"] <= 3, (
        f"strategy '{name}' replayed {three['probe']['distinct']} distinct first-domain patches with [memory] size = 3")


def check_compute_matched(name: str, workdir: Path) -> None:
    """With ``[memory] compute = "matched"`` every step backpropagates exactly ``train.batch_size`` samples
    (memory samples, reference passes included), for every strategy: no ranking from more gradient signal."""
    res = _run(name, workdir, _budget_table(name, 3))
    per_step, batch = res["compute"]["per_step"], _TINY["train"]["batch_size"]
    assert per_step == [batch, batch], (
        f"strategy '{name}' backpropagated between {per_step[0]} and {per_step[1]} samples in a step under compute "
        f"matched; every step must take exactly the batch size ({batch})")


def check_unknown_parameter_is_refused(name: str, workdir: Path) -> None:
    from .config.strategies import resolve_params

    try:
        resolve_params(name, {"no_such_parameter": 1})
    except SpecError as err:
        assert "no_such_parameter" in str(err), f"the error does not name the key: {err}"
        return
    raise AssertionError("an unknown parameter was accepted")


CHECKS: dict[str, Callable[[str, Path], None]] = {
    "builds_with_defaults": check_builds_with_defaults,
    "records_params_exactly": check_records_params_exactly,
    "trains_two_experiences": check_trains_two_experiences,
    "deterministic": check_deterministic,
    "resumes_exactly": check_resumes_exactly,
    "leaves_data_untouched": check_leaves_data_untouched,
    "changes_training": check_changes_training,
    "declared_effects": check_declared_effects,
    "obeys_memory_budget": check_obeys_memory_budget,
    "compute_matched": check_compute_matched,
    "unknown_parameter_is_refused": check_unknown_parameter_is_refused,
}


def check_strategy(name: str, workdir: Path) -> None:
    """Run every check on strategy ``name``; the first failure raises AssertionError."""
    for check in CHECKS.values():
        check(name, Path(workdir))
