"""A network with Cellpose 4's CPSAM structure, built from segment_anything's ViT encoder.

CPSAM (Cellpose 4's default network, ``cellpose.vit.CPSAM``) is SAM's image encoder with
three changes, and a readout:

- the patch embedding takes ``ps`` = 8 px tokens (instead of 16) of 3 channels;
- the position embeddings cover ``bsize // ps`` tokens a side (32 for Cellpose's 256 px tiles);
- every block attends globally (SAM's windowed blocks keep their relative-position tables,
  which are interpolated to the token grid);
- a 1x1 convolution ``out`` maps the encoder's neck output to ``nout * ps^2`` channels, and a
  fixed (non-trainable) ``W2`` turns every token's channels back into a ``ps x ps`` pixel
  block of ``nout`` maps; ``diam_labels`` / ``diam_mean`` hold the diameters, as Cellpose keeps them.

The outputs are Cellpose's: (Y flow, X flow, cell-probability logits), flows scaled as
Cellpose 3's CPnet scales them (its loss compares them with 5 x the unit flows), so
``cellpose_loss`` and the mask code take them unchanged. Cellpose 4 feeds a one-channel image
as (image, 0, 0); `CPSAMNet.prepare_input` does the same.

Two encoder sizes: ``"vit_l"`` is Cellpose's (ViT-L, ~300 M parameters; its state dict has the
names and shapes of ``cellpose.vit.CPSAM()``'s, so Cellpose 4 model files load strictly and the
files dqcl saves load in Cellpose 4's ``CellposeModel``), ``"tiny"`` the same module structure
at depth 2 and width 32 (for CPU tests; no Cellpose file has its shapes).

Training conventions kept from Cellpose 4: the patch-embedding weights are not trained
(Cellpose 4 applies them detached; here they have ``requires_grad=False``), and in training
each block is skipped per sample with a probability rising linearly from 0 to ``rdrop`` = 0.4
over the depth (Cellpose 4's layer drop; drawn from torch's global generator, which dqcl's
checkpoints restore).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CPSAMNet", "ENCODERS", "cellpose4_available"]

# encoder size -> (embed dim, depth, heads, global-attention blocks in SAM's layout, neck channels, SAM's image size)
ENCODERS: dict[str, tuple[int, int, int, tuple[int, ...], int, int]] = {
    "vit_l": (1024, 24, 16, (5, 11, 17, 23), 256, 1024),
    "tiny": (32, 2, 2, (1,), 16, 0),  # 0: the image size is the tile size (position embeddings built at it)
}
SAM_PATCH = 16  # SAM's own token size, which the patch embedding and position embeddings are built at
SAM_WINDOW = 14  # SAM's window size: it sets the shape of the windowed blocks' relative-position tables


def cellpose4_available() -> bool:
    """Whether Cellpose 4's CPSAM (``cellpose.vit``, with segment_anything) can be imported here."""
    try:
        import cellpose.vit  # noqa: F401
        import segment_anything  # noqa: F401
    except Exception:  # ImportError, or a broken install: either way the backend is not usable
        return False
    return True


class _TokenMean(nn.Module):
    """The encoder's tokens (N, H, W, C) averaged over the token grid: (N, C). It holds no weights
    (nothing in the state dict); it is a module so that hooks (herding replay) can watch it."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.mean(dim=(1, 2))


class _CPSAM(nn.Module):
    """The CPSAM-structured module whose state dict is the file's (see the module docstring)."""

    def __init__(self, encoder: str = "vit_l", bsize: int = 256, ps: int = 8, nout: int = 3, rdrop: float = 0.4,
                 diameter: float = 30.0) -> None:
        super().__init__()
        from segment_anything.modeling.image_encoder import ImageEncoderViT

        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        if bsize % ps:
            raise ValueError(f"the tile size ({bsize} px) must be a multiple of the token size ({ps} px)")
        dim, depth, heads, global_blocks, neck, img_size = ENCODERS[encoder]
        # first, as Cellpose registers them (the state dict's order is Cellpose 4's)
        diameter = float(diameter) if diameter and diameter > 0 else 30.0
        self.diam_labels = nn.Parameter(torch.tensor([diameter]), requires_grad=False)
        self.diam_mean = nn.Parameter(torch.tensor([diameter]), requires_grad=False)
        img_size = img_size or bsize * SAM_PATCH // ps
        grid = bsize // ps
        if (img_size // SAM_PATCH) % grid:
            raise ValueError(f"encoder {encoder!r}: its {img_size // SAM_PATCH}-token position grid does not divide into "
                             f"{grid} tokens ({bsize} px tiles); Cellpose 4's CPSAM takes 256 px tiles")
        self.encoder = ImageEncoderViT(
            img_size=img_size, patch_size=SAM_PATCH, in_chans=3, embed_dim=dim, depth=depth, num_heads=heads,
            mlp_ratio=4.0, out_chans=neck, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
            use_rel_pos=True, window_size=min(SAM_WINDOW, img_size // SAM_PATCH), global_attn_indexes=global_blocks,
        )
        # ps x ps tokens: the new embedding starts from SAM's 16 x 16 one, sampled every 16 // ps pixels
        wide = self.encoder.patch_embed.proj
        proj = nn.Conv2d(3, dim, kernel_size=ps, stride=ps)
        with torch.no_grad():
            proj.weight.copy_(wide.weight[:, :, :: SAM_PATCH // ps, :: SAM_PATCH // ps])
            proj.bias.copy_(wide.bias)
        proj.requires_grad_(False)  # Cellpose 4 never trains it (its forward uses the weights detached)
        self.encoder.patch_embed.proj = proj
        # position embeddings for grid x grid tokens: every step-th of SAM's
        step = (img_size // SAM_PATCH) // grid
        self.encoder.pos_embed = nn.Parameter(self.encoder.pos_embed.detach()[:, ::step, ::step].clone())
        for block in self.encoder.blocks:
            block.window_size = 0  # global attention everywhere
        self.out = nn.Conv2d(neck, nout * ps * ps, kernel_size=1)
        self.W2 = nn.Parameter(torch.eye(nout * ps * ps).reshape(nout * ps * ps, nout, ps, ps), requires_grad=False)
        self.make_style = _TokenMean()
        self.ps, self.nout, self.rdrop, self.bsize, self.encoder_name = ps, nout, float(rdrop), bsize, encoder

    def tokens(self, x: torch.Tensor, drop: bool = False) -> torch.Tensor:
        """The encoder blocks' output tokens (N, H/ps, W/ps, C) for a 3-channel (or fewer) input."""
        proj = self.encoder.patch_embed.proj
        t = F.conv2d(x, proj.weight[:, : x.shape[1]], proj.bias, stride=self.ps).permute(0, 2, 3, 1)
        t = t + self.encoder.pos_embed
        blocks = self.encoder.blocks
        if drop and self.rdrop > 0:
            p = torch.linspace(0, self.rdrop, len(blocks), device=t.device)
            skip = (torch.rand((t.shape[0], len(blocks)), device=t.device) < p).to(t.dtype)
            for i, block in enumerate(blocks):
                keep = skip[:, i].view(-1, 1, 1, 1)
                t = keep * t + (1 - keep) * block(t)
        else:
            for block in blocks:
                t = block(t)
        return t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.tokens(x, drop=self.training)
        style = self.make_style(t)
        y = self.out(self.encoder.neck(t.permute(0, 3, 1, 2)))
        return F.conv_transpose2d(y, self.W2, stride=self.ps), style


class CPSAMNet(nn.Module):
    """CPSAM with `CellposeNet`'s interface: ``forward`` maps grayscale (N, 1, H, W) tiles of
    ``bsize`` px to (N, 3, H, W) (Y flow, X flow, cell-probability logits); ``net`` is the
    CPSAM-structured module whose state dict Cellpose 4 reads and writes."""

    arch = "cpsam"
    in_channels = 3

    def __init__(self, encoder: str = "vit_l", bsize: int = 256, diameter: float = 30.0, rdrop: float = 0.4) -> None:
        super().__init__()
        self.encoder = encoder
        self.net = _CPSAM(encoder, bsize=bsize, rdrop=rdrop, diameter=diameter)

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """Grayscale into CPSAM's 3 channels as Cellpose 4 puts a one-channel image: (image, 0, 0)."""
        from .resnet import zero_channels

        return zero_channels(x, self.in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.prepare_input(x))[0]

    @torch.no_grad()
    def style(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's output tokens averaged over the tile (the embedding width: 1024-d for ViT-L),
        without layer drop. It stands in for CPnet's style vector (its pooled bottleneck), which
        CPSAM does not have (Cellpose 4 returns zeros in that place)."""
        return self.net.make_style(self.net.tokens(self.prepare_input(x), drop=False))
