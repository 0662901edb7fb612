"""Whole images through tiles, as Cellpose's `run_net` makes them: `segment_image` pads an image with
zeros as Cellpose pads it, covers it with overlapping tiles (a CPSAM network sees its own tile size
only) and blends them with Cellpose's taper; a tile placed wrongly, a padding of another kind, or a
weight that does not add up changes the output, which is held equal to Cellpose's own."""

import importlib.util

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


class _Local(torch.nn.Module):
    """A small network whose output depends on a 5-px neighbourhood and on the whole tile's mean (as
    CPnet's style does): where the zeros of the padding fall and how tiles are cut both show in it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 3, 5, padding=2)

    def forward(self, x):
        return self.conv(x) + x.mean(dim=(2, 3), keepdim=True)


class _AsCellposeNet(torch.nn.Module):
    """The same network as Cellpose's `run_net` calls one: (flows, style), with a device and a dtype."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.device, self.dtype, self.nout, self.mkldnn = inner, torch.device("cpu"), torch.float32, 3, False

    def forward(self, x):
        return self.inner(x), torch.zeros(x.shape[0], 256)


@pytest.mark.parametrize("shape", [(100, 70), (30, 20), (49, 200), (48, 48), (131, 131), (17, 300)])
def test_the_network_output_is_cellposes_run_net(shape):
    """dqcl's tiles against Cellpose's own: Cellpose 4 (tiles of exactly one size, the image padded to
    at least one tile) or Cellpose 3 (CPnet: tiles up to the size, padded to a multiple of 16)."""
    core = pytest.importorskip("cellpose.core")
    cellpose3 = importlib.util.find_spec("cellpose.resnet_torch") is not None
    net = _Local().eval()
    img = np.random.default_rng(2).random(shape).astype(np.float32)
    theirs, _ = core.run_net(_AsCellposeNet(net), img[None, :, :, None], bsize=48)
    theirs = theirs[0].transpose(2, 0, 1)  # Cellpose returns (images, Ly, Lx, 3)
    ours = _tiled(net, img, 48, at_least_one_tile=not cellpose3)[0].numpy()
    assert ours.shape == theirs.shape == (3, *shape)
    assert np.abs(ours - theirs).max() < 1e-5
    reflected = np.pad(img, [(8, 8 + (-shape[0]) % 16), (8, 8 + (-shape[1]) % 16)], mode="reflect")
    with torch.no_grad():  # a reflection-padded whole image is another output (what dqcl computed before)
        other = net(torch.from_numpy(reflected)[None, None])[0, :, 8: 8 + shape[0], 8: 8 + shape[1]].numpy()
    assert np.abs(other - theirs).max() > 1e-3


def test_segment_image_returns_a_mask_of_the_image_size_through_tiles():
    mask = segment_image(_Echo(), np.random.default_rng(1).random((100, 70)).astype(np.float32), diameter=16.0)
    assert mask.shape == (100, 70) and mask.dtype == np.int32


def test_the_taper_is_cellposes():
    transforms = pytest.importorskip("cellpose.transforms")
    for ly, lx in ((48, 48), (64, 64), (224, 224), (256, 256), (151, 200), (200, 151), (17, 224), (224, 300)):
        assert np.abs(_taper(ly, lx).numpy() - transforms._taper_mask(ly, lx)).max() < 1e-6
