"""Cellpose 3's U-Net, CPnet, as dqcl's own module (Cellpose 4 ships only CPSAM).

The layout is Cellpose 3's to the name: a residual encoder (``downsample``), a style vector
(``make_style``: the bottleneck averaged over space and scaled to unit length), a residual
decoder whose convolutions add a learned projection of the style (``upsample``), a 1x1
output convolution (``output``) and the diameters the net is trained at (``diam_mean``,
``diam_labels``; non-trainable parameters, as Cellpose keeps them). So a Cellpose 3 model
file (a CPnet state dict) loads here with ``strict=True``, a state dict of this net loads in
Cellpose 3's ``CellposeModel(pretrained_model=...)``, the same input gives the same numbers,
and the same torch seed gives the same initial weights: the layers are created in Cellpose's
order, so they draw the same random numbers.

Every block is normalisation -> (ReLU) -> convolution, with the keys Cellpose uses: within a
block ``0`` is the norm, then ``1`` the ReLU and ``2`` the convolution, or ``1`` the
convolution in the 1x1 residual projections (``proj``), which have no ReLU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CPnet", "batch_norm", "zero_channels"]

Norm = Callable[[int], nn.Module]


def batch_norm(channels: int) -> nn.Module:
    """Cellpose's normalisation: BatchNorm with a slow running average (momentum 0.05)."""
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.05)


def _norm_relu_conv(cin: int, cout: int, size: int, norm: Norm) -> nn.Sequential:
    return nn.Sequential(norm(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, size, padding=size // 2))


def _norm_conv(cin: int, cout: int, size: int, norm: Norm) -> nn.Sequential:
    return nn.Sequential(norm(cin), nn.Conv2d(cin, cout, size, padding=size // 2))


def _stage(prefix: str, blocks: Sequence[nn.Module]) -> nn.Sequential:
    """Blocks under Cellpose's names: ``prefix_0``, ``prefix_1``, ..."""
    stage = nn.Sequential()
    for i, block in enumerate(blocks):
        stage.add_module(f"{prefix}_{i}", block)
    return stage


class _EncoderBlock(nn.Module):
    """Two residual pairs of convolutions; the first pair's shortcut is a 1x1 projection to the new width."""

    def __init__(self, cin: int, cout: int, size: int, norm: Norm) -> None:
        super().__init__()
        # Cellpose names the convolutions first (the order of the keys) but creates the projection
        # first (the order of the random draws): both orders are kept
        self.conv = nn.Sequential()
        self.proj = _norm_conv(cin, cout, 1, norm)
        for i, c in enumerate((cin, cout, cout, cout)):
            self.conv.add_module(f"conv_{i}", _norm_relu_conv(c, cout, size, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        x = self.proj(x) + c[1](c[0](x))
        return x + c[3](c[2](x))


class _Encoder(nn.Module):
    """One block per width; every block after the first works at half the previous resolution."""

    def __init__(self, widths: Sequence[int], size: int, norm: Norm) -> None:
        super().__init__()
        self.down = _stage("res_down", [_EncoderBlock(a, b, size, norm) for a, b in pairwise(widths)])
        self.maxpool = nn.MaxPool2d(2, stride=2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i, block in enumerate(self.down):
            features.append(block(x if i == 0 else self.maxpool(features[-1])))
        return features


class _StyledConv(nn.Module):
    """A convolution of the input plus a per-channel offset computed from the style vector
    (and plus the encoder's skip features, where given)."""

    def __init__(self, cin: int, cout: int, style_width: int, size: int, norm: Norm) -> None:
        super().__init__()
        self.conv = _norm_relu_conv(cin, cout, size, norm)
        self.full = nn.Linear(style_width, cout)

    def forward(self, style: torch.Tensor, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + skip
        return self.conv(x + self.full(style)[:, :, None, None])


class _DecoderBlock(nn.Module):
    """A plain convolution then three styled ones, as two residual pairs; the skip features enter the second."""

    def __init__(self, cin: int, cout: int, style_width: int, size: int, norm: Norm) -> None:
        super().__init__()
        first = _norm_relu_conv(cin, cout, size, norm)
        self.conv = _stage("conv", [first, *(_StyledConv(cout, cout, style_width, size, norm) for _ in range(3))])
        self.proj = _norm_conv(cin, cout, 1, norm)  # created last, as in Cellpose

    def forward(self, x: torch.Tensor, skip: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        c = self.conv
        x = self.proj(x) + c[1](style, c[0](x), skip)
        return x + c[3](style, c[2](style, x))


class _Decoder(nn.Module):
    """From the bottleneck back up to full resolution; block i maps width i+1 to width i."""

    def __init__(self, widths: Sequence[int], size: int, norm: Norm) -> None:
        super().__init__()
        self.upsampling = nn.Upsample(scale_factor=2, mode="nearest")
        self.up = _stage(
            "res_up", [_DecoderBlock(a, b, widths[-1], size, norm) for b, a in pairwise(widths)]
        )

    def forward(self, style: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        # the deepest block takes the bottleneck both as its input and as its skip features
        x = self.up[-1](features[-1], features[-1], style)
        for i in range(len(self.up) - 2, -1, -1):
            x = self.up[i](self.upsampling(x), features[i], style)
        return x


class _Style(nn.Module):
    """The style vector: each bottleneck channel's spatial mean, the vector scaled to unit length."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        style = self.flatten(F.avg_pool2d(x, kernel_size=x.shape[2:]))
        return style / style.pow(2).sum(dim=1, keepdim=True) ** 0.5


class CPnet(nn.Module):
    """Cellpose 3's CPnet: ``nbase`` is the input channels then the encoder widths (Cellpose's
    own: ``[2, 32, 64, 128, 256]``), ``nout`` the output maps (3: Y flow, X flow, cell
    probability), ``sz`` the convolution size. ``norm`` builds each normalisation layer from
    its width (default: Cellpose's BatchNorm); a GroupNorm there keeps every name and shape
    of the weights, without running statistics.

    ``forward`` returns (output maps, style vector, encoder features), as Cellpose's does.
    """

    def __init__(self, nbase: Sequence[int], nout: int = 3, sz: int = 3, diam_mean: float = 30.0,
                 norm: Norm | None = None) -> None:
        super().__init__()
        norm = norm or batch_norm
        self.nbase = [int(n) for n in nbase]
        self.nout, self.sz = int(nout), int(sz)
        self.nchan = self.nbase[0]
        # the decoder's widths: the encoder's, the bottleneck once more (the deepest block keeps it)
        up = [*self.nbase[1:], self.nbase[-1]]
        self.downsample = _Encoder(self.nbase, self.sz, norm)
        self.upsample = _Decoder(up, self.sz, norm)
        self.make_style = _Style()
        self.output = _norm_relu_conv(up[0], self.nout, 1, norm)
        self.diam_mean = nn.Parameter(torch.full((1,), float(diam_mean)), requires_grad=False)
        self.diam_labels = nn.Parameter(torch.full((1,), float(diam_mean)), requires_grad=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        features = self.downsample(x)
        style = self.make_style(features[-1])
        return self.output(self.upsample(style, features)), style, features


def zero_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """A batch with fewer channels than a network takes, filled up with zero channels, as Cellpose puts
    a one-channel image into its nets (Cellpose 3: image and a zero second channel; CPSAM: image, 0, 0)."""
    if x.shape[1] >= channels:
        return x
    return torch.cat([x, x.new_zeros((x.shape[0], channels - x.shape[1], *x.shape[2:]))], dim=1)
