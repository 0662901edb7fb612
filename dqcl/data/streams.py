"""Domains -> patches -> flow targets -> Avalanche datasets and experience streams."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .domains import Domain
from ..errors import DataError
from ..cpnet.flows import flow_targets
from .patches import extract_patches

__all__ = ["PatchData", "PatchDataset", "prepare", "as_avalanche", "to_avalanche", "dataset_tensors", "make_benchmark"]


@dataclass(frozen=True)
class PatchData:
    """One domain split as patches: images (N, 1, H, W) and targets (N, 4, H, W), Cellpose layout."""

    domain: str
    split: str
    images: np.ndarray
    targets: np.ndarray
    names: tuple[str, ...]
    scales: tuple[float, ...] = ()  # the factor each source image was rescaled by (see dqcl.data.scale)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices) -> "PatchData":
        idx = np.asarray(indices, dtype=np.int64)
        return PatchData(self.domain, self.split, self.images[idx], self.targets[idx], tuple(self.names[i] for i in idx), self.scales)


class PatchDataset(Dataset):
    """(image, target) pairs as float32 tensors, without copies per item."""

    def __init__(self, data: PatchData) -> None:
        self.data = data
        self.x = torch.from_numpy(np.ascontiguousarray(data.images))
        self.y = torch.from_numpy(np.ascontiguousarray(data.targets))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def prepare(domain: Domain, split: str, size: int, stride: int, pad: bool = False, cache_dir: Path | None = None,
            diameter: float = 0.0) -> PatchData:
    """Patches and (cached) flow targets of one split of a domain, its images first rescaled so that
    their objects' median diameter is ``diameter`` px (0: as they are; see `dqcl.data.scale`)."""
    from .scale import split_to_diameter

    part = getattr(domain, split)
    if len(part) == 0:
        raise DataError(f"domain '{domain.name}': the {split} split is empty")
    part, scales = split_to_diameter(part, diameter)
    imgs, masks, names = extract_patches(part, size, stride, pad)
    flows = flow_targets(masks, cache_dir)
    return PatchData(domain.name, split, imgs[:, None], flows, tuple(names), scales)


def as_avalanche(dataset: Dataset):
    """An `AvalancheDataset` over ``dataset`` yielding (image, target, task label 0)."""
    from avalanche.benchmarks.utils import AvalancheDataset, DataAttribute

    return AvalancheDataset(
        [dataset],
        data_attributes=[DataAttribute([0] * len(dataset), "targets_task_labels", use_in_getitem=True)],
    )


def to_avalanche(data: PatchData):
    """An `AvalancheDataset` of a domain split's patches."""
    return as_avalanche(PatchDataset(data))


def dataset_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (image, target) of a dataset (an experience's, a replay memory), stacked in its order."""
    xs, ys = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        xs.append(torch.as_tensor(item[0]))
        ys.append(torch.as_tensor(item[1]))
    return torch.stack(xs), torch.stack(ys)


def make_benchmark(train: list[PatchData], test: list[PatchData]):
    """Avalanche benchmark whose experience i is train[i]; the test stream holds every domain."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets

    return benchmark_from_datasets(train=[to_avalanche(d) for d in train], test=[to_avalanche(d) for d in test])
