"""`dqcl update`: a user's Cellpose model updated on new images without forgetting the old ones.

Cellpose users who fine-tune a model on new images find it worse on the images it knew ("drift");
the maintainers' advice is to retrain from the built-in model on every image each time. `update_model`
fine-tunes the user's model on the new images while replaying a share of the old ones that DQ selects
(dqcl's ``dq_replay``; any registered strategy with ``strategy=``), as a dqcl run of two domains:
``old`` (which the network already knows, so it trains no step on it: ``train.skip_first``; its
memory is still taken from it) then ``new``. Each folder is held out in part for scoring (its
``test/``, or ``holdout`` of its images where it has no ``train/``/``test/`` split), and the report
gives AP@0.5 on the old and the new held-out images before and after, the forgetting (old before -
old after) and the training time; ``compare`` adds naive fine-tuning and retraining on every image
(dqcl's ``joint``, from the same model, with the steps of both domains) beside it.

The network is trained at the model's own object diameter (its ``diam_mean``: Cellpose rescales
a user's images to it), on patches of ``patch`` px; the result is saved as Cellpose saves a model
(`dqcl.cpnet.model.save_cellpose`), so it loads in Cellpose like the input did, with its diameter.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError, DqclError

__all__ = ["describe_model", "update_model", "DEFAULT_REPLAY"]

# the replay rate when none is given: 10 % of the old images' patches, chosen by DQ. The published replay
# claims read 5 % and 10 % on cyto > histo: at 10 seeds they kept 0.85 and 0.95 of the source's score before
# adaptation (both "undecided" against the 0.9 rule); 10 % is the larger, the safer default. The how-to's
# nuclei > histo update shows it is not enough there (docs/how-to/update-a-model.md).
DEFAULT_REPLAY = 0.1
REPORT_FILES = ("report.json", "report.md", "report.png")


def describe_model(path: str | Path) -> dict[str, Any]:
    """What a Cellpose model file holds: ``arch`` ("cpnet" or "cpsam"), ``widths``, ``norm`` and the object
    ``diameter`` it was trained at (its ``diam_mean``; 30 where the file has none, as Cellpose assumes); a
    file Cellpose would not load is a `DataError` naming it."""
    import math

    from ..cpnet.model import read_weights

    state = read_weights(path, "a Cellpose model file")
    if not isinstance(state, dict):
        raise DataError(f"{path}: not a Cellpose model file (expected a state dict)")
    diam = state.get("diam_mean")
    try:  # a number, or a tensor of one number, as Cellpose writes it
        if hasattr(diam, "numel") and diam.numel() != 1 or isinstance(diam, (str, bytes, bool)):
            raise ValueError
        diameter = float(diam.item() if hasattr(diam, "item") else diam) if diam is not None else 30.0
    except (TypeError, ValueError, RuntimeError):
        raise DataError(f"{path}: its diam_mean is not one number; the file is damaged or not Cellpose's") from None
    if not math.isfinite(diameter) or diameter <= 0:
        raise DataError(f"{path}: its diam_mean ({diameter}) is not a diameter; the file is damaged or not Cellpose's")
    if "W2" in state:
        from ..cpnet.cpsam import ENCODERS

        proj = state.get("encoder.patch_embed.proj.weight")
        dims = {spec[0]: name for name, spec in ENCODERS.items()}
        if proj is None or getattr(proj, "ndim", 0) != 4 or int(proj.shape[0]) not in dims:
            raise DataError(f"{path}: a CPSAM file whose encoder is none dqcl builds (ViT-L, or the tiny test one)")
        pos, w2 = state.get("encoder.pos_embed"), state["W2"]
        if pos is None or getattr(pos, "ndim", 0) != 4 or getattr(w2, "ndim", 0) != 4:
            raise DataError(f"{path}: a CPSAM file without its position embeddings or output map; the file is damaged")
        # its tile: the position grid times the token size (Cellpose 4: 32 x 8 = 256 px)
        return {"arch": "cpsam", "encoder": dims[int(proj.shape[0])], "widths": None, "norm": "batch", "diameter": diameter,
                "patch": int(pos.shape[1]) * int(w2.shape[-1])}
    widths = []
    for i in range(4):
        w = state.get(f"downsample.down.res_down_{i}.conv.conv_0.2.weight")
        if w is None or getattr(w, "ndim", 0) != 4:
            raise DataError(f"{path}: not a Cellpose (CPnet) model file: it has no encoder block {i}")
        widths.append(int(w.shape[0]))
    norm = "batch" if any(k.endswith("running_mean") for k in state) else "group"
    return {"arch": "cpnet", "widths": widths, "norm": norm, "diameter": diameter}


# the spec keys `dqcl update` sets from its options, as a message names them to its user
_OPTIONS = (("memory.size", "--replay"), ("memory.rate", "--replay"), ("domains.old.holdout", "--holdout"),
            ("domains.new.holdout", "--holdout"), ("domains.old.diameter", "--diameter-old"),
            ("domains.new.diameter", "--diameter-new"), ("data.patch_size", "--patch"), ("data.stride", "--patch"),
            ("data.diameter", "the model's object diameter (its diam_mean)"), ("train.lr", "--lr"), ("train.steps", "--steps"),
            ("train.batch_size", "--batch-size"), ("study.device", "--device"), ("study.seeds", "--seed"))


def _in_options(err: DqclError) -> DqclError:
    """``err`` with the spec keys that `dqcl update` filled from its options named as those options."""
    import re

    text = str(err)
    # a folder whose file names dqcl cannot pair: dqcl update reads the layouts it detects, no layout option
    text = text.replace('; set layout = "suffix" with image_suffix and mask_suffix',
                        "; name the files as one of these to pair them")
    for key, option in _OPTIONS:
        text = re.sub(rf"(?<![\w.]){re.escape(key)}(?![\w])", option, text)
    try:
        return type(err)(text)
    except TypeError:
        return DqclError(text)


def _is(path: Path, kind: str) -> bool:
    """Whether ``path`` is a file (``kind`` "file") or a folder ("dir"); a path the system cannot look at (a name
    too long, a parent that is a file) is neither."""
    try:
        return path.is_file() if kind == "file" else path.is_dir()
    except OSError:
        return False


def _folder_domain(folder: Path, holdout: float, diameter: float) -> dict[str, Any]:
    """The spec table of a folder domain: its ``train/`` and ``test/`` where it has them, else the folder
    itself with ``holdout`` of its pairs held out (drawn with the run's data seed)."""
    if not _is(folder, "dir"):
        raise DataError(f"{folder}: no such folder")
    split = (folder / "train").is_dir() and (folder / "test").is_dir()
    if not split and ((folder / "train").is_dir() or (folder / "test").is_dir()):
        has, lacks = ("train", "test") if (folder / "train").is_dir() else ("test", "train")
        raise DataError(f"{folder}: holds {has}/ but no {lacks}/; give it both, or a folder of image and mask pairs "
                        "(NAME.tif and NAME_masks.tif) of which --holdout is held out")
    return {"kind": "folder", "path": str(folder.resolve()), **({} if split else {"holdout": holdout}),
            **({"diameter": diameter} if diameter else {})}


def _spec(model: Path, info: dict[str, Any], domains: dict[str, dict[str, Any]], strategy: str, replay: float, steps: int,
          lr: float, batch: int, patch: int, seed: int, device: str, cache: str) -> dict[str, Any]:
    memory = {"size": int(replay)} if replay >= 1 else {"rate": float(replay)}
    return {
        "study": {"name": "update", "seeds": [seed], "orderings": [["old", "new"]], "data_seed": seed, "device": device},
        "data": {"patch_size": patch, "stride": patch // 2, "diameter": info["diameter"], "pad": True, "cache_dir": cache},
        "domains": domains,
        "model": {"arch": info["arch"], "init": str(model), **({"widths": info["widths"], "norm": info["norm"]}
                                                               if info["arch"] == "cpnet" else {"encoder": info["encoder"]})},
        "train": {"steps": steps, "warmup_steps": max(1, min(25, steps // 10)), "batch_size": batch, "lr": lr,
                  "schedule": "cosine", "reset_optimizer": True, "skip_first": True},
        "memory": {**memory, "protocol": "mix"},
        "strategies": {strategy: {}},
        "output": {"save_weights": "final"},
    }


def update_model(
    model: str | Path, old: str | Path, new: str | Path, out: str | Path, *, replay: float = DEFAULT_REPLAY,
    strategy: str = "dq_replay", steps: int = 250, lr: float = 0.05, batch: int = 8, patch: int | None = None,
    holdout: float = 0.2, seed: int = 0, device: str = "auto", diameters: tuple[float, float] = (0.0, 0.0),
    compare: bool = False, report: str | Path | None = None, store: str | Path | None = None, overwrite: bool = False,
    study: str = "update", say: Callable[[str], None] = lambda msg: None,
) -> dict[str, Any]:
    """Update ``model`` on ``new`` while replaying ``replay`` of ``old`` (a rate below 1, or a count of patches),
    write the updated model to ``out`` and return the report: per method, AP@0.5 on the old and the new
    held-out images before and after, the forgetting (old before - old after) and the training seconds.
    ``store``: every run's result is also kept there (study ``study``; a run already stored is not trained
    again, except the one whose network is written to ``out``). See the module's docstring."""
    from ..config.parse import parse_spec
    from ..config.strategies import list_strategies
    from ..core.outputs import FOLDER, STORE, Kind, check_output
    from ..results.store import Store
    from ..study.preflight import preflight
    from ..train.run import run_one

    model, old, new, out = Path(model), Path(old), Path(new), Path(out)
    if not _is(model, "file"):
        try:
            there = model.exists()
        except OSError:
            there = False
        raise DataError(f"{model}: " + ("not a regular file; give the model file itself" if there else "no such model file"))
    if not (replay > 0 and (replay < 1 or float(replay).is_integer())):
        raise DqclError(f"--replay must be a rate in (0, 1) or a whole count of patches >= 1, got {replay:g}")
    if strategy not in list_strategies():
        raise DqclError(f"--strategy {strategy!r}: no such strategy; dqcl strategies list shows the registered ones")
    info = describe_model(model)
    reading = [(model, "the model"), (old, "the old folder"), (new, "the new folder")]
    for folder, what in ((old, "--old"), (new, "--new")):
        if not _is(folder, "dir"):
            raise DataError(f"{folder}: no such folder ({what})")
    if str(out).endswith(("/", "\\")):
        raise DqclError(f"{out}: --out names a folder; give the path of the model file to write")
    check_output(out, Kind("a file to replace (--overwrite)", lambda p: overwrite), reading=reading, what="--out")
    written = [(out, "--out")]
    if store is not None:
        check_output(store, STORE, reading=reading + [(out, "--out")], what="--store")
        written.append((Path(store), "--store"))
    if report is not None:
        report = Path(report)
        check_output(report, FOLDER, reading=reading + written, what="--report")
        for name in REPORT_FILES:  # the report replaces only its own files, and only when asked to
            there = report / name
            if there.exists() or there.is_symlink():
                if there.is_dir() or not there.is_file():
                    raise DqclError(f"{there}: is not a file; give --report another folder")
                if not overwrite:
                    raise DqclError(f"{there}: exists already; give --report another folder, or --overwrite to replace "
                                    "the report there")
    if info["arch"] == "cpsam" and patch and patch != info["patch"]:
        raise DqclError(f"--patch {patch}: {model} is a CPSAM network built for {info['patch']} px tiles; leave --patch out")
    patch = patch or info.get("patch") or 224
    domains = {"old": _folder_domain(old, holdout, diameters[0]), "new": _folder_domain(new, holdout, diameters[1])}
    methods = [strategy] + ([m for m in ("naive", "joint") if m != strategy] if compare else [])
    found: dict[str, Any] = {"model": model.name, "arch": info["arch"], "diameter": info["diameter"], "replay": replay,
                             "strategy": strategy, "steps": steps, "seed": seed, "patch": patch, "methods": {}}
    configs = []
    try:
        for method in methods:  # every spec is checked, and every folder read, before anything trains
            raw = _spec(model, info, domains, method, replay, steps, lr, batch, patch, seed, device, str(Path(".dqcl_cache").resolve()))
            raw["study"]["name"] = study
            spec = parse_spec(raw, f"dqcl update ({method})", Path.cwd())
            (cfg,) = preflight(spec).runs
            configs.append(cfg)
        _check_replay(configs[0], replay, strategy)
    except DqclError as err:
        raise _in_options(err) from None
    _threads()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dqcl-update-") as tmp, (Store(store) if store is not None else _Nothing()) as kept:
        for method, cfg in zip(methods, configs):
            if method != strategy and kept is not None and kept.has(cfg.key):
                result = next(r["result"] for r in kept.runs(study) if r["key"] == cfg.key)
                say(f"{method}: stored already in {store}")
            else:
                say(f"{method}: " + ("retraining on every image" if method == "joint" else "fine-tuning") + f" from {model.name}"
                    + (f", replaying {replay:g}{' of the' if replay < 1 else ''} old patches" if method == strategy and method not in ("naive", "joint") else ""))
                result = run_one(cfg, artifacts=Path(tmp) / method, on_step=lambda msg, m=method: say(f"{m}: {msg}"))
                if kept is not None:
                    kept.put(cfg.key, cfg.to_dict(), {**result, "executor": "dqcl update", "attempts": 1})
            if method == strategy:
                final = Path(tmp) / method / "final.pth"
                if not final.is_file():
                    raise DqclError(f"{out}: the updated network could not be saved ({'; '.join(result.get('file_errors', [])) or 'no file'})")
                _place(final, out)
            before, after = result["baseline"]["ap50"], result["R"]["ap50"][-1]
            found["methods"][method] = {"before": {"old": before[0], "new": before[1]}, "after": {"old": after[0], "new": after[1]},
                                        "forgetting": before[0] - after[0], "train_s": float(sum(result["timings"]["train_s"])),
                                        "total_s": float(result["timings"]["total_s"]), "key": cfg.key}
            data = result["data"]
            found["held_out"] = {name: {"patches": data[name]["test_patches"], "objects": data[name]["test_objects"]} for name in ("old", "new")}
    found["wall_s"] = time.perf_counter() - t0
    if report is not None:
        _write_report(found, Path(report))
    return found


def _threads() -> None:
    """As a local study does: as many torch threads as cores other processes leave idle (DQCL_THREADS pins it)."""
    import torch

    from ..core.cores import run_threads

    threads = run_threads(1)
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)


class _Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None


def _place(src: Path, out: Path) -> None:
    """Copy the saved network to ``out`` whole or not at all."""
    from ..core.atomic import atomic_open

    out.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fh, atomic_open(out, "wb") as dst:
        shutil.copyfileobj(fh, dst)


def _check_replay(cfg, replay: float, method: str) -> None:
    """A count of old patches to replay that the old folder cannot give is refused before anything trains."""
    from ..train.run import prepare_domain

    if replay < 1 or method in ("naive", "joint"):
        return
    train, _ = prepare_domain(cfg.domains[0], cfg)
    if len(train) < replay:
        raise DqclError(f"--replay {int(replay)}: the old folder gives {len(train)} training patches at this model's "
                        f"diameter ({cfg.data.diameter:g} px, {cfg.data.patch_size} px patches), fewer than the patches asked "
                        "for; give a smaller count or a rate")


def _write_report(found: dict[str, Any], folder: Path) -> None:
    """report.json, report.md and report.png (AP@0.5 on the old and the new images, before and after each method)."""
    from ..core.atomic import save_figure, write_text
    from ..core.text import figure_text, markdown_text, plain_text_figures, quoted
    from ..results.plots import _plt

    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "report.json", json.dumps(found, indent=1) + "\n")
    b = next(iter(found["methods"].values()))["before"]
    held = found["held_out"]
    replay = f"{found['replay']:g} of the old patches" if found["replay"] < 1 else f"{int(found['replay'])} old patches"
    lines = ["# dqcl update", "",
             # a file name is data: shown as code, its backticks and control characters never markup
             f"Model `{quoted(found['model']).replace('`', chr(39))}` ({found['arch']}, objects at {found['diameter']:g} px), "
             f"{markdown_text(quoted(found['strategy']))} replaying {replay}, {found['steps']} steps on the new images, seed {found['seed']}. "
             f"Held out for scoring: {held['old']['patches']} old and {held['new']['patches']} new patches of {found['patch']} px "
             f"({held['old']['objects']} and {held['new']['objects']} objects).", "",
             "| | old AP@0.5 | new AP@0.5 | forgetting (old) | training s |", "| --- | --- | --- | --- | --- |",
             f"| before | {b['old']:.3f} | {b['new']:.3f} | | |"]
    for name, m in found["methods"].items():
        label = "retrain on all (joint)" if name == "joint" else "naive fine-tuning" if name == "naive" else markdown_text(quoted(name))
        lines.append(f"| {label} | {m['after']['old']:.3f} | {m['after']['new']:.3f} | {m['forgetting']:+.3f} | {m['train_s']:.0f} |")
    lines += ["", "Forgetting: old AP@0.5 before minus after (positive: the update lost some of the old images).", "",
              "![AP@0.5 before and after](report.png)", ""]
    write_text(folder / "report.md", "\n".join(lines))
    plain_text_figures(_report_figure)(found, folder / "report.png", figure_text, quoted, _plt())


def _report_figure(found: dict[str, Any], path: Path, figure_text, quoted, plt) -> None:
    """report.png: AP@0.5 on the old and the new images, before and after each method (names as plain text)."""
    from ..core.atomic import save_figure

    b = next(iter(found["methods"].values()))["before"]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    names = ["before", *found["methods"]]
    vals = [(b["old"], b["new"])] + [(m["after"]["old"], m["after"]["new"]) for m in found["methods"].values()]
    x = list(range(len(names)))
    ax.bar([i - 0.2 for i in x], [100 * v[0] for v in vals], 0.4, label="old images")
    ax.bar([i + 0.2 for i in x], [100 * v[1] for v in vals], 0.4, label="new images")
    ax.set_xticks(x, [figure_text(quoted(n)) for n in names], fontsize=8)
    ax.set_ylabel("AP@0.5 (%)")
    ax.set_ylim(0, 100)
    ax.set_title("dqcl update: held-out images before and after", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
