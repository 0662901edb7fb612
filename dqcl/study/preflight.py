"""The checks that stop a study at once rather than hours in, done once per study.

`preflight` expands a spec into its runs, reads and checks every folder domain (each pair
of files; the domain read is kept for the runs, see `dqcl.data.prepared`) and checks the
device, all before a results store is opened, so a study that cannot start leaves no file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.expand import expand
from ..config.schema import RunConfig, Spec
from ..data.domains import Domain
from ..data.prepared import DOMAIN_CACHE, PreparedDomains
from ..errors import DqclError

__all__ = ["Study", "preflight"]


def _patch_count(shapes, patch: int, stride: int, pad: bool) -> int:
    from ..data.patches import grid

    total = 0
    for h, w in shapes:
        if pad:
            h, w = max(h, patch), max(w, patch)
        total += len(grid(h, patch, stride)) * len(grid(w, patch, stride))
    return total


def _cpu_note(spec: Spec) -> str | None:
    """For a CPSAM run on the CPU: a line with the rough time of one training step (`dqcl.train.memory.step_seconds`)."""
    m, d = spec.model, spec.data
    if m.arch != "cpsam" or spec.device.startswith("cuda") or spec.device == "auto" and _has_gpu():
        return None
    import torch

    from ..train.memory import CPU_FLOPS_PER_CORE, step_seconds

    cores = torch.get_num_threads()
    secs = step_seconds(m.encoder, d.patch_size, spec.train.batch_size, cores)
    shown = f"{secs:,.0f}" if secs >= 10 else f"{secs:.2g}"
    return (f"{spec.source}: CPSAM ({m.encoder} encoder) on the CPU: about {shown} s per training step of batch "
            f"{spec.train.batch_size} at {d.patch_size} px on {cores} core(s) (a rough estimate at "
            f"{CPU_FLOPS_PER_CORE / 1e9:g} GFLOP/s per core); the vit_l encoder is meant for GPUs")


def _check_memory(spec: Spec, read: dict[str, Domain], concurrent: int = 1) -> None:
    """Refuse a study whose runs would need more memory than the machine has (see `dqcl.train.memory`)."""
    from ..train.memory import available_bytes, estimate_run_bytes, gpu_bytes

    d = spec.data
    n = 0
    for ds in spec.domains.values():
        if ds.name in read:
            shapes = [im.shape for split in (read[ds.name].train, read[ds.name].test) for im in split.images]
        else:  # a generated domain: its images' count and size are parameters (defaults from its factory)
            import inspect

            from ..data.domains import DOMAINS

            args = {k: p.default for k, p in inspect.signature(DOMAINS.get(ds.kind).factory).parameters.items()} | ds.params
            if not {"size", "n_train", "n_test"} <= set(args):
                continue
            shapes = [(args["size"], args["size"])] * (args["n_train"] + args["n_test"])
        n += _patch_count(shapes, d.patch_size, d.stride, d.pad)
    m = spec.model
    net, data = estimate_run_bytes(m.widths, m.norm, d.patch_size, spec.train.batch_size, n, m.arch, m.encoder)
    gpu = spec.device.startswith("cuda") or spec.device == "auto" and _has_gpu()
    what = f"CPSAM {m.encoder} encoder" if m.arch == "cpsam" else f"network widths {list(m.widths)}"
    checks = [("host", (data + (0 if gpu else net)) * concurrent, available_bytes())]
    if gpu:
        checks.append(("GPU", net, gpu_bytes(spec.device)))
    for where, need, have in checks:
        if need > have:
            runs = f" ({concurrent} runs at once)" if concurrent > 1 and where == "host" else ""
            raise DqclError(
                f"{spec.source}: this spec needs about {need / 2**30:,.1f} GiB of {where} memory{runs} ({what}, "
                f"{d.patch_size} px patches, batch {spec.train.batch_size}, {n:,} patches) and "
                f"{have / 2**30:,.1f} GiB is available; make it smaller, or set DQCL_MAX_RUN_MEMORY (bytes) if the estimate is wrong"
            )


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


# [log] key -> the package its logger needs; both come with the extra `dqcl[log]`
_LOGGER_PACKAGES = (("tensorboard", "tensorboard"), ("wandb", "wandb"))


def _check_loggers(spec: Spec) -> None:
    """Refuse a spec whose ``[log]`` table asks for a logger whose package is not installed (they are
    the optional extra ``log``), rather than failing when the first run opens its logger."""
    import importlib

    for key, package in _LOGGER_PACKAGES:
        if getattr(spec.log, key):
            try:
                importlib.import_module(package)
            except ImportError:
                raise DqclError(f'{spec.source}: log.{key}: the {package} package is not installed; pip install "dqcl[log]"') from None


def _check_device(spec: Spec) -> None:
    if not spec.device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise DqclError(f"{spec.source}: study.device is '{spec.device}' but no CUDA GPU is available here")
    index = int(spec.device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise DqclError(f"{spec.source}: study.device is '{spec.device}' but this machine has "
                        f"{torch.cuda.device_count()} GPU(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})")


@dataclass(frozen=True)
class Study:
    """A spec that passed preflight: its runs, and the bad pairs its folder domains left out (skip_bad)."""

    spec: Spec
    runs: tuple[RunConfig, ...]
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # lines to show before the study starts (a CPSAM run's CPU step time)


# strategies that look inside a CPnet and have no CPSAM counterpart here: strategy -> why (README: "CPSAM backend")
_NOT_FOR_CPSAM = {
    "lwf": "it distils CPnet's convolutional encoder features (net.downsample), which CPSAM does not have",
    "agem": "it projects an SGD step (dqcl.train.importance), and CPSAM trains with AdamW",
    "gem": "it projects an SGD step (dqcl.train.importance), and CPSAM trains with AdamW",
}


def require_cellpose4(spec: Spec) -> None:
    """One line, naming the spec, where a CPSAM spec meets a Python without Cellpose 4."""
    from ..cpnet.cpsam import cellpose4_available

    if not cellpose4_available():
        raise DqclError(f'{spec.source}: model.arch = "cpsam" needs Cellpose 4 (cellpose.vit and segment_anything), which is '
                        'not importable here; pip install "cellpose>=4"')


def _check_cpsam(spec: Spec) -> None:
    """model.arch = "cpsam": Cellpose 4 must be installed, and every strategy must work on a transformer."""
    if spec.model.arch != "cpsam":
        return
    require_cellpose4(spec)
    for st in spec.strategies.values():
        if st.name in _NOT_FOR_CPSAM:
            raise DqclError(f'{spec.source}: strategy {st.label!r} ({st.name}) does not support model.arch = "cpsam": '
                            f"{_NOT_FOR_CPSAM[st.name]}")


def preflight(spec: Spec, cache: PreparedDomains = DOMAIN_CACHE, concurrent: int = 1) -> Study:
    """``concurrent``: how many runs will be in memory at once on this machine (worker processes)."""
    _check_loggers(spec)
    _check_cpsam(spec)
    runs = expand(spec)
    skipped: list[str] = []
    read: dict[str, Domain] = {}
    for cfg in runs:
        manifests = dict(cfg.data_manifests)
        for ds in cfg.domains:
            if ds.kind == "folder" and ds.name not in read:
                if not Path(ds.params["path"]).is_dir():
                    raise DqclError(f"{ds.params['path']}: no such folder (domain '{ds.name}' of {spec.source})")
                # read every pair now: a bad file stops the study before anything is stored, not hours in.
                # One data seed is enough (data_seed = "per_seed" included): a folder's files are the same for
                # every seed, which only decides how resplit = true divides the same pairs (same count, same
                # shapes, so the memory check holds too); a run of another data seed reads its split when it starts.
                # Built-in domains are not built here: their count and size are parameters, not seed-dependent.
                read[ds.name] = cache.domain(ds.kind, ds.params, cfg.data_seed, manifests.get(ds.name, ""))
                skipped += read[ds.name].skipped
    _check_device(spec)  # before the memory check, which asks the device how much it has
    _check_memory(spec, read, concurrent)
    if spec.model.init:
        import contextlib

        import torch

        from ..cpnet.model import build_network, load_init

        cpsam = spec.model.arch == "cpsam"
        try:
            # CPSAM: shapes only, on the meta device (nothing of a 300 M-parameter net is allocated)
            with torch.device("meta") if cpsam else contextlib.nullcontext():
                net = build_network(spec.model, spec.data)
            load_init(net, spec.model.init, check_only=cpsam)
        except ValueError as err:
            raise DqclError(f"{spec.source}: model.init: {err}") from None
    note = _cpu_note(spec)
    return Study(spec, tuple(runs), tuple(skipped), (note,) if note else ())
