"""What regularisers and gradient-projection strategies share: per-sample parameter importances,
normalisation statistics left untouched by extra passes, and projecting the step SGD takes.

Three adaptations Avalanche's plugins lack for a BatchNorm segmentation network:

- `per_sample_importance`: EWC's Fisher is an expectation over *samples* of squared
  gradients (Kirkpatrick et al.), MAS's importance an average of per-sample gradient
  magnitudes (Aljundi et al.); Avalanche squares (or takes magnitudes of) minibatch-mean
  gradients, which shrinks the Fisher by about the batch size and mixes samples. Here each
  sample gets its own backward pass, with normalisation layers in evaluation mode (a batch
  of one has no batch statistics, and the pass must not move the running statistics).
- `frozen_norm_stats`: a forward pass in training mode moves BatchNorm running statistics.
  Passes that are not training (A-GEM's and GEM's reference gradients on memory samples)
  put them back afterwards.
- `sgd_direction` / `set_sgd_direction`: GEM and A-GEM constrain the *step*; with momentum
  and weight decay, SGD's step is not the gradient. These read the direction torch's SGD
  will step along and write a gradient that makes SGD step along another one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..cpnet.model import norm_buffers
from ..data.streams import dataset_tensors

__all__ = ["per_sample_importance", "frozen_norm_stats", "sgd_direction", "set_sgd_direction"]


@contextmanager
def frozen_norm_stats(model: nn.Module) -> Iterator[None]:
    """Run the body, then put ``model``'s BatchNorm running statistics back as they were."""
    kept = norm_buffers(model)
    try:
        yield
    finally:
        if kept:
            model.load_state_dict(kept, strict=False)


def per_sample_importance(
    model: nn.Module, dataset, value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
    power: int, device: torch.device, max_samples: int = 256, seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Mean over samples of |d value(output, target) / d parameter| ** power, one sample at a time.

    ``value`` maps the network's output and the target of one sample to a scalar. At most
    ``max_samples`` samples are used (a seeded random choice when the dataset is larger).
    The network is in evaluation mode during the pass and back in its former mode after.
    """
    x, y = dataset_tensors(dataset)
    order = np.random.default_rng(seed).permutation(len(x))[:max_samples] if len(x) > max_samples else np.arange(len(x))
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training = model.training
    model.eval()
    try:
        for i in order:
            model.zero_grad(set_to_none=True)
            out = model(x[i : i + 1].to(device))
            value(out, y[i : i + 1].to(device)).backward()
            for n, p in params.items():
                if p.grad is not None:
                    total[n] += p.grad.detach().abs().pow(power)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return {n: t / len(order) for n, t in total.items()}


def _sgd_settings(optimizer: torch.optim.Optimizer) -> dict[torch.Tensor, dict]:
    if not isinstance(optimizer, torch.optim.SGD):
        raise TypeError(f"projecting the step needs torch.optim.SGD, got {type(optimizer).__name__}")
    out = {}
    for group in optimizer.param_groups:
        if group.get("nesterov") or group.get("dampening", 0):
            raise ValueError("projecting the step supports SGD without Nesterov momentum and dampening")
        for p in group["params"]:
            out[p] = group
    return out


@torch.no_grad()
def sgd_direction(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> torch.Tensor:
    """The direction (flattened, before the learning rate) SGD will step parameters ``params`` along:
    momentum * buffer + gradient + weight_decay * parameter; zeros for a parameter without gradient."""
    groups = _sgd_settings(optimizer)
    parts = []
    for p in params:
        if p.grad is None:
            parts.append(torch.zeros(p.numel(), device=p.device))
            continue
        g = groups[p]
        d = p.grad + g["weight_decay"] * p if g["weight_decay"] else p.grad.clone()
        buf = optimizer.state.get(p, {}).get("momentum_buffer") if g["momentum"] else None
        if buf is not None:
            d = d + g["momentum"] * buf
        parts.append(d.flatten())
    return torch.cat(parts)


@torch.no_grad()
def set_sgd_direction(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], direction: torch.Tensor) -> None:
    """Write gradients so that SGD's next step follows ``direction`` (as `sgd_direction` measures it)."""
    groups = _sgd_settings(optimizer)
    at = 0
    for p in params:
        n = p.numel()
        if p.grad is not None:
            g = groups[p]
            d = direction[at : at + n].view_as(p)
            buf = optimizer.state.get(p, {}).get("momentum_buffer") if g["momentum"] else None
            if buf is not None:
                d = d - g["momentum"] * buf
            if g["weight_decay"]:
                d = d - g["weight_decay"] * p
            p.grad.copy_(d)
        at += n
