"""Cellpose's U-Net (CPnet), its training loss and flip/rotation augmentation."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CellposeNet", "NORMS", "cellpose_loss", "dihedral", "norm_buffers"]

NORMS = ("batch", "group")


def _groups(channels: int) -> int:
    """GroupNorm groups for a layer: 8 where the width allows it (Wu & He 2018 use 32 of wider layers)."""
    return 8 if channels % 8 == 0 else 1


class CellposeNet(nn.Module):
    """`cellpose.resnet_torch.CPnet` returning only its 3 output maps (Y flow, X flow, cell probability).

    ``widths`` are the four feature widths after the input channels; Cellpose's own net is
    (32, 64, 128, 256). `style` gives the 256-d (last width) style vector of an input.
    ``norm="group"`` replaces every BatchNorm layer by a GroupNorm of the same width: the
    network then keeps no running statistics, so nothing but its weights can forget.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), in_channels: int = 1, norm: str = "batch") -> None:
        super().__init__()
        from cellpose.resnet_torch import CPnet

        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.widths = tuple(int(w) for w in widths)
        self.in_channels = int(in_channels)
        self.norm = norm
        self.net = CPnet([self.in_channels, *self.widths], nout=3, sz=3)
        if norm == "group":
            for module in list(self.net.modules()):
                for name, child in list(module.named_children()):
                    if isinstance(child, nn.BatchNorm2d):
                        setattr(module, name, nn.GroupNorm(_groups(child.num_features), child.num_features, eps=child.eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]

    @torch.no_grad()
    def style(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[1]


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
