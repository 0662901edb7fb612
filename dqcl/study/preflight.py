"""The checks that stop a study at once rather than hours in, done once per study.

`preflight` expands a spec into its runs, reads and checks every folder domain (each pair
of files) and builds every built-in one (both kept for the runs, see `dqcl.data.prepared`),
measures what each image becomes once rescaled to ``data.diameter`` (`patch_counts`, see
`dqcl.study.sizes`: a rescaling that leaves no signal or passes the pixel limit stops here),
checks the memory that many patches need and the device, all before a results store is
opened, so a study that cannot start leaves no file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..config.expand import expand
from ..config.schema import RunConfig, Spec
from ..data.domains import Domain
from ..data.prepared import DOMAIN_CACHE, PreparedDomains
from ..errors import DqclError
from .sizes import DomainSize, check_diameter_floor, diameter_limits, domain_sizes, growth_note, read_domains

__all__ = ["Study", "preflight", "patch_counts"]


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


def patch_counts(spec: Spec, read: Mapping[str, Domain] | None = None, cache: PreparedDomains = DOMAIN_CACHE) -> dict[str, tuple[int, int]]:
    """Domain name -> (train patches, test patches) of every domain the runs of ``spec`` use, after each
    image is rescaled to ``data.diameter`` as the run will (`dqcl.study.sizes`), for one data seed (a
    resplit or held-out folder or a built-in domain of another seed has the same images' count, other draws).

    ``read``: domains already read (preflight's); the others are read or built through ``cache``. A
    domain a run could not use (an image rescaled under a pixel or over the pixel limit, a bad file)
    raises a `DqclError` with the one line the run would stop with."""
    domains = read_domains(spec, expand(spec), cache, read or {})
    return {name: (size.train, size.test) for name, size in domain_sizes(spec, domains).items()}


# bytes per pixel held while one split's patches are cut, beyond the patches kept (20 bytes a pixel, see
# dqcl.train.memory): the rescaled images and masks (float32 + int32), and the stacked patch and mask copies
# (np.stack, then astype). Measured: 8 images of single-pixel objects rescaled x14.2 to 6,272 patches of
# 64 px peaked 826 MiB over the start; 20 bytes a patch pixel say 490 MiB, with these 887 MiB.
_CUTTING_BYTES_PER_PIXEL = 8
_CUTTING_BYTES_PER_PATCH_PIXEL = 8


def _check_memory(spec: Spec, sizes: Mapping[str, DomainSize], concurrent: int = 1) -> None:
    """Refuse a study whose runs would need more memory than the machine has (see `dqcl.train.memory`),
    counting the patches of the rescaled images (`patch_counts`) and, while the largest split is cut, its
    rescaled images."""
    from ..train.memory import available_bytes, estimate_run_bytes, gpu_bytes

    d = spec.data
    n = sum(s.patches for s in sizes.values())
    m = spec.model
    net, data = estimate_run_bytes(m.widths, m.norm, d.patch_size, spec.train.batch_size, n, m.arch, m.encoder)
    data += max((px * _CUTTING_BYTES_PER_PIXEL + k * d.patch_size**2 * _CUTTING_BYTES_PER_PATCH_PIXEL
                 for s in sizes.values() for px, k in ((s.train_pixels, s.train), (s.test_pixels, s.test))), default=0)
    gpu = spec.device.startswith("cuda") or spec.device == "auto" and _has_gpu()
    what = f"CPSAM {m.encoder}" if m.arch == "cpsam" else f"widths {list(m.widths)}"
    checks = [("host", (data + (0 if gpu else net)) * concurrent, available_bytes())]
    if gpu:
        checks.append(("GPU", net, gpu_bytes(spec.device)))
    for where, need, have in checks:
        if need > have:
            runs = f" ({concurrent} runs at once)" if concurrent > 1 and where == "host" else ""
            raise DqclError(
                f"{spec.source}: this spec needs about {need / 2**30:,.1f} GiB of {where} memory{runs}, {have / 2**30:,.1f} GiB "
                f"available: {n:,} patches of {d.patch_size} px{_rescaled(spec, sizes)}"
                + (f", {what}, batch {spec.train.batch_size}" if net >= data or where == "GPU" else "")
                + f"; {_smaller(spec, sizes, net < data)}, or DQCL_MAX_RUN_MEMORY (bytes) if the estimate is wrong"
            )


def _top(sizes: Mapping[str, DomainSize]) -> DomainSize:
    return max(sizes.values(), key=lambda s: s.patches)


def _rescaled(spec: Spec, sizes: Mapping[str, DomainSize]) -> str:
    """Where the patches come from, for the memory line: the domain giving the most, and its rescaling."""
    if spec.data.diameter <= 0 or not sizes:
        return ""
    top = _top(sizes)
    where = f"'{top.name}': {top.patches:,}, " if len(sizes) > 1 else ""
    return f" ({where}images rescaled up to x{top.factors[1]:.3g} from {top.diameter:.3g} px objects)"


def _smaller(spec: Spec, sizes: Mapping[str, DomainSize], data_first: bool = True) -> str:
    """What makes a study smaller, for the memory line: its data where the data takes the most."""
    if not data_first:
        return "use a smaller model or batch, raise data.stride or use fewer images"
    if spec.data.diameter > 0 and sizes and _top(sizes).factors[1] > 1:
        top = _top(sizes)
        own = f", state domains.{top.name}.diameter" if spec.domains[top.name].kind == "folder" else ""
        return f"lower data.diameter (0: as they are){own} or raise data.stride"
    return "raise data.stride or use fewer or smaller images"


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


def _check_supply(spec: Spec, runs, sizes: Mapping[str, DomainSize]) -> None:
    """Refuse a study one of whose runs would get fewer memory samples per step than its budget
    promises, on the patch counts the domains give once rescaled (`dqcl.config.quotas.supply_problem`;
    one data seed's draw: each run checks its own again when it has drawn its data, before it trains)."""
    from ..config.quotas import supply_problem
    from ..config.strategies import draws_of

    for cfg in runs:
        m = cfg.memory
        draws = draws_of(cfg.strategy.name, cfg.strategy.params)
        if (m.size <= 0 and m.rate <= 0) or draws is None or draws == "protocol" and m.protocol != "batch":
            continue
        counts = [sizes[d.name].train for d in cfg.domains if d.name in sizes]
        per_step = m.replay_batch or spec.train.batch_size
        problem = supply_problem(m.size, m.rate, per_step, counts, draws == "per_domain") if len(counts) == len(cfg.domains) else None
        if problem:
            held = f"{m.size} patches" if m.size > 0 else f"rate {m.rate:g} of each earlier domain"
            raise DqclError(f"{spec.source}: memory: strategy '{cfg.strategy.label}' ({cfg.strategy.name}) over "
                            f"{' > '.join(cfg.ordering)} ({', '.join(f'{d.name} {sizes[d.name].train:,}' for d in cfg.domains)} "
                            f"training patches), memory {held}: {problem}; give a larger memory or a smaller memory.replay_batch")


def preflight(spec: Spec, cache: PreparedDomains = DOMAIN_CACHE, concurrent: int = 1) -> Study:
    """``concurrent``: how many runs will be in memory at once on this machine (worker processes)."""
    _check_loggers(spec)
    _check_cpsam(spec)
    runs = expand(spec)
    check_diameter_floor(spec)
    # every domain read or built now (folders: every pair checked), through the cache the runs read from:
    # a bad file stops the study before anything is stored, not hours in; and the patch count below is
    # that of the rescaled images, as the runs will cut them
    read = read_domains(spec, runs, cache)
    skipped = [problem for dom in read.values() for problem in dom.skipped]
    sizes = domain_sizes(spec, read)
    _check_device(spec)  # before the memory check, which asks the device how much it has
    _check_memory(spec, sizes, concurrent)
    _check_supply(spec, runs, sizes)
    if spec.model.init:
        import contextlib

        import torch

        from ..cpnet.model import build_network, load_init

        cpsam = spec.model.arch == "cpsam"
        try:
            # CPSAM: shapes only, on the meta device (nothing of a 300 M-parameter net is allocated)
            with torch.device("meta") if cpsam else contextlib.nullcontext():
                net = build_network(spec.model, spec.data)
            load_init(net, spec.model.init, check_only=cpsam, spec_diameter=spec.data.diameter, diameters=diameter_limits(spec))
        except ValueError as err:
            raise DqclError(f"{spec.source}: model.init: {err}") from None
    notes = [note for note in (growth_note(spec, sizes), _cpu_note(spec)) if note]
    return Study(spec, tuple(runs), tuple(skipped), tuple(notes))
