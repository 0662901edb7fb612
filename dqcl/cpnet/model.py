"""The network dqcl trains (Cellpose 3's U-Net, CPnet, from `resnet`), its training loss and flip/rotation augmentation."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from pathlib import Path
from typing import Any

from .resnet import CPnet, zero_channels

__all__ = [
    "CellposeNet", "NORMS", "CELLPOSE_WIDTHS", "cellpose_loss", "dihedral", "norm_buffers",
    "save_cellpose", "load_init", "cellpose_compatible",
]

NORMS = ("batch", "group")
CELLPOSE_WIDTHS = (32, 64, 128, 256)  # Cellpose 3's own CPnet, which its model files hold


def cellpose_compatible(widths: tuple[int, ...], norm: str = "batch") -> bool:
    """Whether a network of these widths and normalisation is Cellpose's own: then it takes Cellpose's
    two input channels (the second zero for grayscale) and its weights load into Cellpose."""
    return tuple(widths) == CELLPOSE_WIDTHS and norm == "batch"


def _groups(channels: int) -> int:
    """GroupNorm groups for a layer: 8 where the width allows it (Wu & He 2018 use 32 of wider layers)."""
    return 8 if channels % 8 == 0 else 1


class CellposeNet(nn.Module):
    """Cellpose 3's CPnet (dqcl's own copy of its architecture, `resnet.CPnet`) returning only its
    3 output maps (Y flow, X flow, cell probability).

    ``widths`` are the four feature widths after the input channels; Cellpose's own net is
    (32, 64, 128, 256). `style` gives the 256-d (last width) style vector of an input.
    ``norm="group"`` replaces every BatchNorm layer by a GroupNorm of the same width: the
    network then keeps no running statistics, so nothing but its weights can forget.

    Images are grayscale (N, 1, H, W). A network with Cellpose's widths and BatchNorm follows
    Cellpose's input convention, two channels with the second zero for grayscale (the zero
    channel is added here), so its weights load into ``cellpose.models.CellposeModel`` and
    Cellpose's own model files load into it; any other network takes one channel.
    """

    def __init__(self, widths: tuple[int, ...] = CELLPOSE_WIDTHS, in_channels: int | None = None, norm: str = "batch",
                 diameter: float = 30.0) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.widths = tuple(int(w) for w in widths)
        self.in_channels = int(in_channels or (2 if cellpose_compatible(self.widths, norm) else 1))
        self.norm = norm
        # the diameter the network is trained at travels in its file, as in Cellpose's own: Cellpose
        # rescales a user's image by diam_mean / (the diameter they state) before segmenting it
        diameter = float(diameter) if diameter and diameter > 0 else 30.0
        group = (lambda c: nn.GroupNorm(_groups(c), c, eps=1e-5)) if norm == "group" else None
        self.net = CPnet([self.in_channels, *self.widths], nout=3, sz=3, diam_mean=diameter, norm=group)

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """The input as the network takes it: a grayscale batch gets Cellpose's zero second channel where the net has two."""
        return zero_channels(x, self.in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.prepare_input(x))[0]

    @torch.no_grad()
    def style(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.prepare_input(x))[1]


def build_network(model, data) -> nn.Module:
    """The network a run trains from a spec's ``[model]`` and ``[data]`` tables (`dqcl.config.schema`):
    `CellposeNet` (Cellpose 3's CPnet) or, for ``arch = "cpsam"``, `cpsam.CPSAMNet` with the patch size
    as its tile; randomly initialised from torch's generator (``init`` is loaded by the caller)."""
    if model.arch == "cpsam":
        from .cpsam import CPSAMNet

        return CPSAMNet(model.encoder, bsize=data.patch_size, diameter=data.diameter)
    return CellposeNet(model.widths, norm=model.norm, diameter=data.diameter)


def save_cellpose(model: nn.Module, path: str | Path) -> Path:
    """Write the network as Cellpose 3 writes its models (``CPnet.save_model``: the CPnet state dict),
    whole or not at all; a `cpsam.CPSAMNet` as Cellpose 4 writes CPSAM (``save_model``: its float32
    state dict, ``W2`` included), which Cellpose 4's ``CellposeModel(pretrained_model=path)`` loads. With Cellpose's widths and BatchNorm, Cellpose 3's ``CellposeModel(pretrained_model=path)``
    loads it; other networks load with `resnet.CPnet` ``([1, *widths], 3, 3)`` or Cellpose 3's own
    ``cellpose.resnet_torch.CPnet`` (GroupNorm ones: `CellposeNet`)."""
    from ..core.atomic import atomic_open

    with atomic_open(path, "wb") as fh:
        torch.save({k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}, fh)
    return Path(path)


def read_weights(path: str | Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` with every failure as one short `DataError` line naming
    ``path`` and ``what`` it should be. Torch's own message is not passed on: it advises retrying
    with ``weights_only=False``, i.e. running whatever pickle the file holds."""
    import pickle
    import zipfile

    from ..errors import DataError

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not {what}") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read {what} ({err.strerror or type(err).__name__})") from None
    except pickle.UnpicklingError:
        # torch's weights-only reader says the same for damage and for pickled objects: name both
        why = "it is not a file of tensors (damaged, or it holds other Python objects, which dqcl never loads: that could run code)"
    except EOFError:
        why = "the file is empty or cut short"
    except (RuntimeError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, AttributeError, TypeError, IndexError, KeyError,
            MemoryError, OverflowError):
        why = "the file is damaged or not a PyTorch file"
    raise DataError(f"{path}: not readable as {what}: {why}")


def _cpsam_state(model: nn.Module, state: Any, path: Path) -> dict[str, torch.Tensor]:
    """``state`` checked as a Cellpose 4 CPSAM file for ``model`` (a `cpsam.CPSAMNet`), with a
    DataParallel ``module.`` prefix taken off as Cellpose 4 does; a one-line ValueError otherwise."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a Cellpose model file (expected a CPSAM state dict)")
    if "W2" not in state and "module.W2" not in state:
        raise ValueError(f"{path}: not a Cellpose 4 (CPSAM) model (it has no W2; a Cellpose 3 file?); model.arch = \"cpsam\" "
                         "starts from a CPSAM file")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.net.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or extra or wrong:
        proj = state.get("encoder.patch_embed.proj.weight")
        depth = len({k.split(".")[2] for k in state if k.startswith("encoder.blocks.")})
        found = f"embed dim {proj.shape[0]}, depth {depth}" if proj is not None and proj.ndim == 4 else "not a CPSAM of this kind"
        raise ValueError(
            f"{path}: its encoder does not match model.encoder = {model.encoder!r} ({model.net.bsize} px tiles): the file holds "
            f"{found}; {len(missing)} missing, {len(extra)} unexpected and {len(wrong)} differently shaped tensors"
        )
    return state


def load_init(model: nn.Module, path: str | Path, check_only: bool = False, *, spec_diameter: float | None = None,
              diameters: tuple[float, float] | None = None) -> None:
    """Start ``model`` from a Cellpose 3 model file (or one `save_cellpose` wrote), or a `cpsam.CPSAMNet`
    from a Cellpose 4 CPSAM file; a clear ValueError where the file is not readable, its architecture
    is not the model's, or its ``diam_mean`` / ``diam_labels`` is not a diameter (not finite, or not
    positive) or not the model's. ``check_only``: check, load nothing (``model`` may live on the meta device).

    ``spec_diameter`` (the spec's ``data.diameter``) and ``diameters`` (the range of ``data.diameter`` the
    spec can take, `dqcl.data.scale.diameter_range`) shape the advice for a file trained at another
    diameter: it names a ``data.diameter`` only where the spec can take it, never the one it holds."""
    from ..errors import DataError

    path = Path(path)
    try:
        state = read_weights(path, "a Cellpose model file")
    except DataError as err:
        raise ValueError(str(err)) from None
    if getattr(model, "arch", "cpnet") == "cpsam":
        state = _cpsam_state(model, state, path)
        _check_finite_diameters(state, path)
        if not check_only:
            model.net.load_state_dict(state, strict=True)
        return
    if isinstance(state, dict) and "W2" in state:
        raise ValueError(f"{path}: a Cellpose 4 (CPSAM) model; dqcl trains Cellpose 3's CPnet")
    own = model.net.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a Cellpose model file (expected a CPnet state dict)")
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or extra or wrong:
        found = state.get("downsample.down.res_down_0.conv.conv_0.2.weight")
        arch = (f"a CPnet with {found.shape[1]} input channel(s) and first width {found.shape[0]}" if found is not None
                else "not a CPnet of this kind")
        raise ValueError(
            f"{path}: its architecture does not match the spec's model (widths {list(model.widths)}, "
            f"{model.in_channels} input channel(s), {model.norm} norm): the file holds {arch}; "
            f"{len(missing)} missing, {len(extra)} unexpected and {len(wrong)} differently shaped tensors"
        )
    _check_diameters(state, float(model.net.diam_mean), path, spec_diameter, diameters)
    if not check_only:
        model.net.load_state_dict(state)


def _shown(x: float) -> str:
    """``x`` in the fewest digits that read back within the 1e-3 px a diameter is compared to (so advice
    to set it is taken as it was meant)."""
    for digits in range(6, 18):
        text = f"{x:.{digits}g}"
        if abs(float(text) - x) <= 1e-4:
            return text
    return repr(x)


def _check_finite_diameters(state: dict, path: Path) -> None:
    """``diam_mean`` and ``diam_labels`` of a Cellpose file (CPnet or CPSAM), where it holds them: each a
    finite positive number (Cellpose rescales images by diam_mean / diameter)."""
    import math

    for key in ("diam_mean", "diam_labels"):
        value = state.get(key)
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not (math.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"{path}: its {key} is {float(value):g}, not an object diameter (Cellpose rescales images by "
                             "diam_mean / diameter): the file is damaged or was not written by Cellpose")


def _check_diameters(state: dict, ours: float, path: Path, spec_diameter: float | None,
                     diameters: tuple[float, float] | None) -> None:
    """A Cellpose file's ``diam_mean`` and ``diam_labels`` (Cellpose rescales images by diam_mean / diameter):
    finite and positive, and ``diam_mean`` the diameter the spec trains at (one ValueError line otherwise)."""
    _check_finite_diameters(state, path)
    theirs = state.get("diam_mean")
    if not isinstance(theirs, torch.Tensor) or theirs.numel() != 1 or abs(float(theirs) - ours) <= 1e-3:
        return
    theirs = float(theirs)
    held = (f"the spec keeps images at their own scale (data.diameter = 0), which trains at Cellpose's {ours:g} px"
            if spec_diameter == 0 else f"the spec at {ours:g} px")
    if diameters is not None and not diameters[0] <= theirs <= diameters[1]:
        raise ValueError(f"{path}: trained at an object diameter of {theirs:.4g} px (its diam_mean), {held}; this spec takes "
                         f"data.diameter from {diameters[0]:g} to {diameters[1]:g} px (its patch size and [eval] settings), so "
                         "start from a file trained in that range or change data.patch_size")
    raise ValueError(f"{path}: trained at an object diameter of {_shown(theirs)} px (its diam_mean), {held}; set "
                     f"data.diameter = {_shown(theirs)} so the run trains it at the scale it learned")


def norm_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the BatchNorm running statistics of ``model`` (empty for a GroupNorm network)."""
    return {
        f"{name}.{b}": getattr(m, b).detach().clone()
        for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for b in ("running_mean", "running_var", "num_batches_tracked")
    }


def cellpose_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cellpose's loss: MSE(pred flows, 5 * flows) / 2 + BCE-with-logits(cell probability).

    ``target`` has Cellpose's training layout (labels, cell probability, Y flow, X flow).
    """
    flows = 5.0 * target[:, 2:4]
    return F.mse_loss(pred[:, :2], flows) / 2.0 + F.binary_cross_entropy_with_logits(
        pred[:, 2], (target[:, 1] > 0.5).float()
    )


def dihedral(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip/90-degree-rotation per sample, with the flow vectors turned to match.

    ``x`` is (B, C, H, W); ``y`` is (B, 4, H, W) in Cellpose's layout (labels, prob, dY, dX).
    A vertical flip negates dY, a horizontal flip negates dX, a transpose swaps them. The
    codes are drawn on the CPU generator; the samples sharing a code are turned together,
    on whatever device the batch is (at most 8 groups, whatever the batch size).
    """
    b = x.shape[0]
    codes = torch.randint(0, 8, (b,), generator=generator)
    x_out, y_out = torch.empty_like(x), torch.empty_like(y)
    square = x.shape[-1] == x.shape[-2]
    for code in codes.unique().tolist():
        idx = (codes == code).nonzero().flatten().to(x.device)
        xi, yi = x.index_select(0, idx), y.index_select(0, idx)
        if code & 4 and square:
            xi, yi = xi.transpose(-1, -2), yi.transpose(-1, -2)[:, [0, 1, 3, 2]]
        if code & 2:
            xi, yi = xi.flip(-2), yi.flip(-2) * yi.new_tensor([1, 1, -1, 1])[:, None, None]
        if code & 1:
            xi, yi = xi.flip(-1), yi.flip(-1) * yi.new_tensor([1, 1, 1, -1])[:, None, None]
        x_out[idx], y_out[idx] = xi, yi
    return x_out, y_out
