"""How much memory a run will need, estimated before anything is allocated.

A spec can ask for a network or patches no machine holds (``widths = [65536, ...]``,
``patch_size = 60000`` with padding); the study's preflight refuses those with one line
rather than letting the first allocation fail hours in or the machine swap. The estimate
is rough (within about a factor of two of what a run peaks at) and errs high:

- the network: its exact parameter count (the net is built on PyTorch's ``meta`` device,
  which allocates nothing) x 4 bytes x 5 (weights, gradients, momentum, and two copies a
  strategy may keep: a teacher network, a weight snapshot);
- one training batch: ``batch x patch^2 x sum_l widths[l] / 4^l x 4 bytes x 24`` (each level
  keeps about two dozen feature maps of its width for the backward pass);
- the data: every patch of every domain with its four flow-target channels, float32.

For ``model.arch = "cpsam"`` (a ViT, `dqcl.cpnet.cpsam`) the network is counted the same way
(built on the meta device; x 5: weights, gradients, AdamW's two moments, one copy), and one
training batch keeps, per image, per block, about ``20 x T x D + heads x T^2`` floats
(T = (patch / 8)^2 tokens of width D: layer norms, q/k/v, the projection, the MLP's hidden
layer, residuals; and one attention matrix, as SAM's attention is not fused). Fitted to a
measurement: ViT-L at batch 8, 256 px, AdamW, fp32 peaked at 30.3 GiB on an H200
(`benchmarks/perf/gpu_check.py --only cpsam`); this estimate says 33 GiB. `step_seconds` is the
rough time of one training step on a CPU: 3 x (2 x parameters x T + 4 x depth x T^2 x D)
floating-point operations per image (forward once, backward twice) at an assumed
50 GFLOP/s per core.
"""

from __future__ import annotations

import os

from ..core.validation import env_number

__all__ = ["estimate_run_bytes", "available_bytes", "gpu_bytes", "step_seconds", "ACTIVATION_MAPS", "CPU_FLOPS_PER_CORE"]

ACTIVATION_MAPS = 24
CPU_FLOPS_PER_CORE = 50e9  # fp32 matrix products on one core, roughly (AVX2/AVX-512): the CPU step estimate's assumption


def _cpsam_shape(encoder: str, patch: int) -> tuple[int, int, int, int, int]:
    """(parameters, tokens per tile, embed dim, depth, heads) of a CPSAM net (built on the meta device)."""
    import torch

    from ..cpnet.cpsam import ENCODERS, CPSAMNet

    with torch.device("meta"):
        net = CPSAMNet(encoder, bsize=patch)
    dim, depth, heads = ENCODERS[encoder][:3]
    return sum(p.numel() for p in net.parameters()), (patch // 8) ** 2, dim, depth, heads


def step_seconds(encoder: str, patch: int, batch: int, cores: int) -> float:
    """A rough time of one CPSAM training step on ``cores`` CPU cores (see the module docstring)."""
    params, tokens, dim, depth, _ = _cpsam_shape(encoder, patch)
    flops = 3 * (2 * params * tokens + 4 * depth * tokens**2 * dim) * batch
    return flops / (max(1, cores) * CPU_FLOPS_PER_CORE)


def _param_count(widths: tuple[int, ...], norm: str) -> int:
    import torch

    from ..cpnet.model import CellposeNet

    with torch.device("meta"):
        net = CellposeNet(widths, norm=norm)
    return sum(p.numel() for p in net.parameters())


def estimate_run_bytes(widths: tuple[int, ...], norm: str, patch: int, batch: int, n_patches: int,
                       arch: str = "cpnet", encoder: str = "vit_l") -> tuple[int, int]:
    """(bytes on the training device: the network and a batch's feature maps, bytes of patches on the host)."""
    if arch == "cpsam":
        count, tokens, dim, depth, heads = _cpsam_shape(encoder, patch)
        params = count * 4 * 5
        activations = batch * depth * (20 * tokens * dim + heads * tokens**2) * 4
    else:
        params = _param_count(widths, norm) * 4 * 5
        maps = sum(w / 4**level for level, w in enumerate(widths))
        activations = batch * patch * patch * maps * 4 * ACTIVATION_MAPS
    data = n_patches * patch * patch * 4 * 5
    return int(params + activations), int(data)


def _override() -> int | None:
    """DQCL_MAX_RUN_MEMORY (bytes), when set: it replaces what the machine reports."""
    return int(env_number("DQCL_MAX_RUN_MEMORY", 0)) if os.environ.get("DQCL_MAX_RUN_MEMORY") else None


def gpu_bytes(device: str) -> int:
    """The memory of the GPU a run will use (DQCL_MAX_RUN_MEMORY, if set, wins)."""
    import torch

    if (limit := _override()) is not None:
        return limit
    index = int(device.partition(":")[2] or 0) if device.startswith("cuda") else 0
    return int(torch.cuda.get_device_properties(index).total_memory)


def available_bytes() -> int:
    """The memory a run may use: DQCL_MAX_RUN_MEMORY (bytes) if set, else the host's available memory."""
    if (limit := _override()) is not None:
        return limit
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")

