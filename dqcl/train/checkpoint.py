"""Per-experience checkpoints of a run, in a form `torch.load(weights_only=True)` reads.

A strategy's state lives in its model, its optimiser, its plugins (EWC importances, replay
memories, a distillation teacher, random generators, Avalanche's clock) and, for some
Avalanche strategies, in attributes of its own (`Cumulative` keeps the data seen so far).
`encode` walks those objects and keeps only tensors, numbers, strings and containers of
them: modules become state dicts, datasets become their stacked tensors, random generators
their states; functions and references to the strategy's shared objects are left out. A
fresh strategy built from the same config takes the state back with `decode`, so a run
resumed after experience k trains experience k+1 exactly as the uninterrupted run does
(checked for every registered strategy by `dqcl.checks`).

The resume hook: an object whose state has parts that cannot or need not be stored (a data
loader, an iterator) names them in a class attribute ``checkpoint_transient`` and rebuilds
them in a method ``after_restore()``, which is called once its stored attributes are back.
Checkpoint code knows no strategy by name.

Files are written whole or not at all (temp file + fsync + rename); a checkpoint that
cannot be written (a full disk) fails the run with a clear message and leaves the last
good checkpoint in place.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config.strategies import STRATEGIES
from ..core.atomic import atomic_open
from ..data.streams import as_avalanche, dataset_tensors
from ..errors import CheckpointError, OutputError

__all__ = ["encode", "decode", "save", "load", "strategy_state", "restore_strategy", "CheckpointError"]

FORMAT = 2  # 2: dqcl 0.2 subpackages (plugin class names changed)

# strategy attributes that are the loop's scratch space or shared objects, never state
_SKIP = {
    "model", "optimizer", "plugins", "evaluator", "device", "experience", "adapted_dataset", "dataloader",
    "mbatch", "mb_output", "loss", "current_eval_stream", "_eval_streams", "_criterion", "_train_criterion",
    "_eval_criterion", "clock", "is_training", "_distributed_check", "train_mb_size", "eval_mb_size",
    "train_epochs", "eval_every", "peval_mode", "retain_graph", "_stop_training", "_last_train_exp",
    "model_adaptation", "make_optimizer", "train_passes", "optimized_param_id",
}
# attributes that point back at the strategy that holds them, never state of their own
_TRANSIENT = {"strategy"}


def _device(name: str) -> torch.device:
    """The device a tensor was saved from, or the CPU where that device is not here (a resume elsewhere)."""
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return dev


def _dataset_from(x: torch.Tensor, y: torch.Tensor):
    from torch.utils.data import TensorDataset

    return as_avalanche(TensorDataset(x, y))


def _stateful_module(obj: Any) -> bool:
    """Whether ``obj``'s attributes are walked: objects of dqcl, Avalanche or a registered strategy's module."""
    top = type(obj).__module__.split(".")[0]
    return top in ("dqcl", "avalanche") or top in {e.factory.__module__.split(".")[0] for e in map(STRATEGIES.get, STRATEGIES.names())}


def encode(obj: Any, model: nn.Module | None = None, depth: int = 0) -> Any:
    """A weights-only-loadable image of ``obj``; ``None``-marked parts are left as they are on restore."""
    from avalanche.benchmarks.utils import AvalancheDataset

    if depth > 8:
        return {"__keep__": True}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        if obj.device.type != "cpu":  # stored on the CPU, put back where it was (a GPU's importances, anchors)
            return {"__tensor__": obj.detach().cpu().clone(), "device": str(obj.device)}
        return obj.detach().cpu().clone()
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return {"__keep__": True}
        return {"__nd__": torch.from_numpy(np.ascontiguousarray(obj).copy())}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return {"__seq__": [encode(v, model, depth + 1) for v in obj], "tuple": isinstance(obj, tuple)}
    if isinstance(obj, dict):
        if all(isinstance(k, (str, int)) for k in obj):
            return {"__map__": [[k, encode(v, model, depth + 1)] for k, v in obj.items()]}
        return {"__keep__": True}
    if model is not None and obj is model:
        return {"__model__": True}
    if isinstance(obj, nn.Module):
        return {"__module__": {k: v.detach().cpu().clone() for k, v in obj.state_dict().items()}, "training": obj.training}
    if isinstance(obj, torch.Generator):
        return {"__torchgen__": obj.get_state()}
    if isinstance(obj, np.random.Generator):
        return {"__npgen__": encode(obj.bit_generator.state)}
    if isinstance(obj, AvalancheDataset):
        if len(obj) == 0:
            return {"__data__": None}
        x, y = dataset_tensors(obj)
        return {"__data__": [x, y]}
    if type(obj).__name__ == "ParamData":
        return {"__param__": [obj.name, list(obj.shape), obj.data.detach().cpu().clone()], "device": str(obj.data.device)}
    if hasattr(obj, "__dict__") and not callable(obj) and _stateful_module(obj):
        return {"__obj__": _attrs(obj, model, depth + 1)}
    return {"__keep__": True}


def _attrs(obj: Any, model: nn.Module | None, depth: int) -> list:
    out = []
    skip = _TRANSIENT | set(getattr(obj, "checkpoint_transient", ()))
    for k, v in vars(obj).items():
        if k in skip or callable(v) and not isinstance(v, nn.Module):
            continue
        out.append([k, encode(v, model, depth)])
    return out


def decode(img: Any, current: Any = None, model: nn.Module | None = None) -> Any:
    """The object ``encode`` made ``img`` from; ``current`` is the fresh object it replaces (kept where marked)."""
    if not isinstance(img, dict):
        return img
    if "__keep__" in img:
        return current
    if "__tensor__" in img:
        return img["__tensor__"].to(_device(img["device"]))
    if "__nd__" in img:
        return img["__nd__"].numpy().copy()
    if "__seq__" in img:
        cur = list(current) if isinstance(current, (list, tuple)) else []
        items = [decode(v, cur[i] if i < len(cur) else None, model) for i, v in enumerate(img["__seq__"])]
        return tuple(items) if img["tuple"] else items
    if "__map__" in img:
        cur = current if isinstance(current, dict) else {}
        return {k: decode(v, cur.get(k), model) for k, v in img["__map__"]}
    if "__model__" in img:
        return model
    if "__module__" in img:
        if isinstance(current, nn.Module):
            mod = current
        elif model is not None:
            mod = copy.deepcopy(model)
        else:
            raise CheckpointError("a stored module has nothing to be restored into")
        mod.load_state_dict(img["__module__"])
        return mod.train(img["training"])
    if "__torchgen__" in img:
        gen = current if isinstance(current, torch.Generator) else torch.Generator()
        gen.set_state(img["__torchgen__"])
        return gen
    if "__npgen__" in img:
        gen = current if isinstance(current, np.random.Generator) else np.random.default_rng()
        gen.bit_generator.state = decode(img["__npgen__"])
        return gen
    if "__data__" in img:
        if img["__data__"] is None:
            return current if current is not None and len(current) == 0 else _empty_like(current)
        return _dataset_from(*img["__data__"])
    if "__param__" in img:
        from avalanche.training.utils import ParamData

        name, shape, data = img["__param__"]
        device = _device(img.get("device", "cpu"))
        return ParamData(name, tuple(shape), init_tensor=data.to(device), device=device)
    if "__obj__" in img:
        if current is None:
            raise CheckpointError("a stored object has no counterpart in the rebuilt strategy")
        _set_attrs(current, img["__obj__"], model)
        return current
    return img


def _empty_like(current):
    from avalanche.benchmarks.utils import AvalancheDataset

    return current if isinstance(current, AvalancheDataset) else _dataset_from(torch.empty(0), torch.empty(0))


def _set_attrs(obj: Any, attrs: list, model: nn.Module | None) -> None:
    for k, v in attrs:
        setattr(obj, k, decode(v, getattr(obj, k, None), model))
    rebuild = getattr(obj, "after_restore", None)
    if callable(rebuild):
        rebuild()  # before the random states are restored: draws it makes are undone


def strategy_state(strategy) -> dict[str, Any]:
    """Everything of ``strategy`` that the next experience's training depends on."""
    from avalanche.training.plugins import EvaluationPlugin

    model = strategy.model
    own = [[k, encode(v, model)] for k, v in vars(strategy).items() if k not in _SKIP and not k.startswith("mb_") and not callable(v)]
    plugins = [
        None if isinstance(p, EvaluationPlugin) else [type(p).__name__, _attrs(p, model, 0)] for p in strategy.plugins
    ]
    return {
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": strategy.optimizer.state_dict(),
        "own": own,
        "plugins": plugins,
        "clock": _attrs(strategy.clock, model, 0),
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": encode(np.random.get_state()),
            "python": encode(random.getstate()),
        },
    }


def restore_strategy(strategy, state: dict[str, Any]) -> None:
    """Put ``state`` (from `strategy_state`) into a freshly built strategy of the same config."""
    from avalanche.training.plugins import EvaluationPlugin

    model = strategy.model
    model.load_state_dict(state["model"])
    if getattr(strategy, "optimized_param_id", "absent") is None:
        # Avalanche resets the optimiser's state (momentum) the first time a strategy trains; the
        # run being resumed is past that point: do the first-time set-up now, then load the state
        strategy.make_optimizer(reset_optimizer_state=True)
    strategy.optimizer.load_state_dict(state["optimizer"])
    for k, v in state["own"]:
        setattr(strategy, k, decode(v, getattr(strategy, k, None), model))
    live = [p for p in strategy.plugins]
    if len(live) != len(state["plugins"]):
        raise CheckpointError(f"the checkpoint has {len(state['plugins'])} plugins, the rebuilt strategy {len(live)}")
    for plugin, saved in zip(live, state["plugins"]):
        if saved is None or isinstance(plugin, EvaluationPlugin):
            continue
        name, attrs = saved
        if type(plugin).__name__ != name:
            raise CheckpointError(f"checkpoint plugin {name} does not match the rebuilt {type(plugin).__name__}")
        _set_attrs(plugin, attrs, model)
    _set_attrs(strategy.clock, state["clock"], model)
    torch.set_rng_state(state["rng"]["torch"])
    np_state = decode(state["rng"]["numpy"])
    np.random.set_state(tuple(np_state))
    py_state = decode(state["rng"]["python"])
    random.setstate((py_state[0], tuple(py_state[1]), py_state[2]))


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically; on failure the previous file is untouched."""
    path = Path(path)
    try:
        with atomic_open(path, "wb") as fh:
            torch.save({"format": FORMAT, **payload}, fh)
    except OutputError as err:
        raise CheckpointError(f"{err} (a run checkpoint)") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot write checkpoint ({err.strerror or err})") from None


def load(path: Path) -> dict[str, Any]:
    from ..cpnet.model import read_weights
    from ..errors import DataError

    try:
        payload = read_weights(path, "a dqcl checkpoint")
    except DataError as err:  # a truncated or foreign file
        raise CheckpointError(str(err)) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a dqcl checkpoint of format {FORMAT}")
    return payload
