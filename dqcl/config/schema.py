"""What a benchmark spec holds: frozen dataclasses, one per TOML table, and the config of one run.

Every field is a setting a spec may give (with its default here); `RunConfig` is everything
that decides one run's result, and its ``key`` (see `dqcl.config.expand`) hashes all of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..core.version import __version__
from ..cpnet.settings import MaskSettings

__all__ = [
    "DataSpec", "ModelSpec", "TrainSpec", "EvalSpec", "MemorySpec", "PROTOCOLS", "COMPUTE", "DomainSpec", "StrategySpec", "RedundancySpec", "Subset",
    "OutputSpec", "LogSpec",
    "PER_SEED", "Spec", "RunConfig", "shipped_spec", "default_spec_path",
]


@dataclass(frozen=True)
class DataSpec:
    patch_size: int = 224  # square patch side in pixels (the paper: 224)
    stride: int = 112  # patch grid step (the paper: 112)
    pad: bool = False  # pad images smaller than a patch instead of refusing them
    cache_dir: str = ".dqcl_cache"  # flow targets cached here, by mask content
    diameter: float = 30.0  # every image rescaled so its objects' median diameter is this many px (Cellpose: 30); 0: as they are
    validation: float = 0.0  # > 0: this share of each domain's training images is held out and scored instead of the test split (tuning)


@dataclass(frozen=True)
class ModelSpec:
    widths: tuple[int, ...] = (32, 64, 128, 256)  # CPnet feature widths (Cellpose: 32, 64, 128, 256)
    norm: str = "batch"  # "batch": BatchNorm with running statistics, as Cellpose has it; "group": GroupNorm (no statistics)
    init: str = ""  # a Cellpose 3 model file to start from (its widths must be the spec's); "": random initialisation
    arch: str = "cpnet"  # "cpnet": Cellpose 3's U-Net (widths, norm); "cpsam": Cellpose 4's CPSAM (needs Cellpose 4; init: a CPSAM file)
    encoder: str = "vit_l"  # arch "cpsam" only: "vit_l" (Cellpose's ViT-L, for GPUs) or "tiny" (same structure, depth 2, width 32)


@dataclass(frozen=True)
class TrainSpec:
    epochs: int = 100  # epochs per experience (used when steps is 0)
    steps: int = 0  # optimiser steps per experience (joint training: steps x experiences); 0: train by epochs
    batch_size: int = 8
    lr: float = 0.1  # SGD learning rate (Cellpose/paper: 0.1... 0.2)
    momentum: float = 0.9
    weight_decay: float = 1e-5
    augment: bool = True  # random flips and 90-degree rotations
    warmup_epochs: float = 1.0  # linear learning-rate warm-up at the start of every experience (Cellpose: 10)
    warmup_steps: int = 0  # the warm-up in optimiser steps instead (the same for every strategy); 0: use warmup_epochs
    reset_optimizer: bool = False  # start every experience with fresh optimiser state (no momentum carried over)
    schedule: str = "constant"  # the learning rate after the warm-up, over each experience: "constant", "cosine" (to 0) or "step" (x0.1 at 1/2 and 3/4)
    skip_first: bool = False  # the network already knows the first domain (dqcl update): no step on it; its memory and importances are still taken
    fast: str = "auto"  # channels-last + bf16 autocast + pinned memory: "on", "off", "auto" (on for a GPU)
    compile: bool = False  # torch.compile the network (minutes of compiling, then faster steps on a GPU)
    loader_workers: int = 0  # DataLoader worker processes for training batches


@dataclass(frozen=True)
class EvalSpec(MaskSettings):
    """The mask-reconstruction settings (`MaskSettings`: flow_threshold, cellprob_threshold,
    niter, min_size, max_size_fraction) and the scoring batch size."""

    batch_size: int = 32


PROTOCOLS = ("mix", "batch")  # how memory reaches the batches (see dqcl.train.rehearsal)
COMPUTE = ("appended", "matched")  # whether memory samples come on top of a full batch or take part of it


@dataclass(frozen=True)
class MemorySpec:
    """The memory budget every rehearsal strategy obeys (`dqcl.train.rehearsal.Budget`). No ``[memory]``
    table: each strategy keeps what its own parameters say, as dqcl 0.3 did. One of ``size``, ``rate``
    or ``replay_batch`` may be a list in a spec: the study then runs every rehearsal strategy at each."""

    size: int = 0  # patches held in all, over every earlier domain
    rate: float = 0.0  # or: this fraction of each earlier domain (turned into a count per domain, stored with the run)
    protocol: str = "mix"  # "mix": memory joins the training set (the paper); "batch": replay_batch memory samples every step (ER)
    replay_batch: int = 0  # memory samples per step under "batch" (and DER++'s, A-GEM's, GEM's memory passes); 0: train.batch_size
    compute: str = "appended"  # "appended": memory samples come on top of a full batch; "matched": they replace part of it

    @property
    def given(self) -> bool:
        return self != MemorySpec()


@dataclass(frozen=True)
class OutputSpec:
    """What a run leaves beside the store (``runs/<key>/``); none of it changes a result or its key."""

    save_weights: str = "none"  # "none", "final" (the network after the last experience) or "all" (after each)
    panels: bool = False  # a PNG of a few test patches per domain: image, true and predicted outlines after each experience
    panel_patches: int = 3  # patches per domain in the panel


@dataclass(frozen=True)
class LogSpec:
    """Avalanche loggers fed with the training loss and the score rows (``runs/<key>/``); not part of a run's key."""

    tensorboard: bool = False  # TensorBoard event files (tensorboard --logdir results/runs)
    csv: bool = False  # metrics.csv: every logged value (name, step, value)
    wandb: bool = False  # Weights & Biases in offline mode (wandb sync to upload later)


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
    # where ``tuned = FILE`` set params: the tuning's provenance (file name and hash, trials, validation share,
    # the space searched, the validation ACC); None: the params are the spec's or the strategy's defaults
    tuned: dict[str, Any] | None = None


PER_SEED = "per_seed"  # [study] data_seed = "per_seed": each run draws its data with its own run seed


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
    data_seed: int | str = 0  # an integer: the data seed of every run; PER_SEED: each run's own seed
    device: str = "auto"
    source: str = "<spec>"
    redundancy: RedundancySpec | None = None
    output: OutputSpec = OutputSpec()
    log: LogSpec = LogSpec()
    memory: tuple[MemorySpec, ...] = (MemorySpec(),)  # one budget per entry (a sweep); MemorySpec(): none

    def run_data_seed(self, seed: int) -> int:
        """The data seed of the run with seed ``seed``: ``seed`` itself under PER_SEED, else the study's."""
        return seed if self.data_seed == PER_SEED else int(self.data_seed)


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
    data_manifests: tuple[tuple[str, str], ...] = ()  # (domain, manifest hash), see dqcl.core.provenance; and ("model.init", its hash)
    output: OutputSpec = OutputSpec()
    log: LogSpec = LogSpec()
    memory: MemorySpec = MemorySpec()  # the run's budget; MemorySpec() for strategies without one
    key: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The config as stored and hashed into the run's key.

        Settings added after runs were published are left out while they hold their default,
        so the keys (and the stored results) of those runs stay valid.
        """
        d = asdict(self)
        for name in ("key", "output", "log"):  # where files go and what is logged change no result
            d.pop(name)
        if d["subset"] is None:
            d.pop("subset")  # keeps the keys of continual runs as they were
        if d["strategy"]["tuned"] is None:
            d["strategy"].pop("tuned")  # and those of every untuned run
        if not self.memory.given:
            d.pop("memory")  # no budget: the keys of runs stored before budgets existed
        d["data"].pop("cache_dir")  # where the cache lives does not change a result
        if d["model"].get("init"):  # the file's content hash is in data_manifests; where it lies does not count
            d["model"]["init"] = "file"
        for table, name, default in _ADDED_LATER:
            if d[table].get(name) == default:
                d[table].pop(name)
        return d


# (table, setting, default): settings that did not exist when the first results were stored
_ADDED_LATER: tuple[tuple[str, str, Any], ...] = (
    ("eval", "max_size_fraction", MaskSettings.max_size_fraction),
    ("data", "diameter", 0.0),  # runs stored before rescaling trained at the images' own scale
    ("data", "validation", 0.0),
    ("model", "norm", "batch"),
    ("model", "init", ""),
    ("model", "arch", "cpnet"),
    ("model", "encoder", "vit_l"),
    ("train", "steps", 0),
    ("train", "warmup_steps", 0),
    ("train", "reset_optimizer", False),
    ("train", "schedule", "constant"),
    ("train", "skip_first", False),
)


def shipped_spec(name: str) -> Path:
    """A spec shipped with dqcl (the top-level ``benchmarks/`` folder, installed as ``dqcl.specs``)."""
    return Path(str(resources.files("dqcl.specs") / name))


def default_spec_path() -> Path:
    """The embedded default of ``dqcl run benchmark``: the quick study."""
    return shipped_spec("quick.toml")
