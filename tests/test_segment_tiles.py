"""Whole images through a network that takes fixed tiles only (CPSAM): `segment_image` covers the
image with overlapping tiles and blends them with Cellpose's taper; a tile placed wrongly, or a
weight that does not add up, changes the reconstructed output."""

import numpy as np
import pytest
import torch

from dqcl.evaluation.segment import _taper, _tiled, segment_image


class _Echo(torch.nn.Module):
    """A 'network' of fixed 48-px tiles whose three outputs are its input: blending must give the image back."""

    arch = "cpsam"

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Module()
        self.net.bsize = 48
        self.net.diam_mean = torch.tensor([16.0])
        self.shapes = set()

    def forward(self, x):
        self.shapes.add(tuple(x.shape[-2:]))
        return x.repeat(1, 3, 1, 1)


@pytest.mark.parametrize("shape", [(100, 70), (30, 20), (49, 200), (48, 48), (131, 131)])
def test_tiles_cover_the_image_and_blend_back_to_it(shape):
    net = _Echo()
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    out = _tiled(net, img, 48)
    assert out.shape == (1, 3, *shape)
    assert net.shapes == {(48, 48)}  # the network only ever saw its own tile size
    assert np.abs(out[0].numpy() - img[None]).max() < 1e-5


def test_segment_image_returns_a_mask_of_the_image_size_through_tiles():
    mask = segment_image(_Echo(), np.random.default_rng(1).random((100, 70)).astype(np.float32), diameter=16.0)
    assert mask.shape == (100, 70) and mask.dtype == np.int32


def test_the_taper_is_cellposes():
    transforms = pytest.importorskip("cellpose.transforms")
    for bsize in (48, 64, 224, 256):
        assert np.abs(_taper(bsize).numpy() - transforms._taper_mask(bsize, bsize)).max() < 1e-6
