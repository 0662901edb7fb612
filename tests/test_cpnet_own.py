"""dqcl's own CPnet (`dqcl.cpnet.resnet`) is Cellpose 3's network: the same weights under the same
names, the same numbers out, the same initial weights from the same seed, and files that Cellpose 3
loads and segments with. The comparisons with Cellpose's own code need Cellpose 3 (Cellpose 4 ships
no CPnet) and are skipped without it; the recorded digests below hold the initial weights to
Cellpose 3's under any Cellpose."""

import hashlib
import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from dqcl.cpnet.model import CellposeNet, _groups, load_init, save_cellpose
from dqcl.cpnet.resnet import CPnet

# (input channels, widths): Cellpose's own network, and the half-width one of the CPU studies
NETS = [(2, (32, 64, 128, 256)), (1, (16, 32, 64, 128))]
IDS = ["cellpose-2ch", "half-1ch"]

# Cellpose 3.1.1.3's CPnet(nbase, 3, 3) after torch.manual_seed(0) (torch 2.14): 313 tensors, its
# parameter count, and SHA-256 over (key, bytes) in state-dict order
RECORDED = {
    (2, (32, 64, 128, 256)): (313, 6600845, "35f3f64a2b06914ade9a8d1e7ba9b014a5f3c53ffafc8aa091f92854daeb5c76"),
    (1, (16, 32, 64, 128)): (313, 1654185, "1859652558506565abc9b4204fc6a7279af44bb81347bacb24642e0f93114dce"),
}

HAS_CP3 = importlib.util.find_spec("cellpose") is not None and importlib.util.find_spec("cellpose.resnet_torch") is not None
needs_cp3 = pytest.mark.skipif(not HAS_CP3, reason="needs Cellpose 3 (cellpose.resnet_torch); Cellpose 4 has no CPnet")


def _digest(state: dict) -> str:
    h = hashlib.sha256()
    for key, value in state.items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _theirs(nbase, seed=None):
    from cellpose.resnet_torch import CPnet as CellposeCPnet

    if seed is not None:
        torch.manual_seed(seed)
    return CellposeCPnet(list(nbase), 3, 3)


def _ours(nbase, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    return CPnet(list(nbase), 3, 3)


@pytest.mark.parametrize("chans,widths", NETS, ids=IDS)
def test_the_initial_weights_are_cellpose3s_recorded_ones(chans, widths):
    """Runs under any Cellpose: same seed, same weights as Cellpose 3's CPnet, bit for bit (what keeps
    published runs' weight digests), through `CPnet` and through `CellposeNet`."""
    count, params, digest = RECORDED[(chans, widths)]
    net = _ours([chans, *widths], seed=0)
    state = net.state_dict()
    assert len(state) == count and sum(p.numel() for p in net.parameters()) == params
    assert _digest(state) == digest, "the initial weights differ from Cellpose 3's (layer creation order, or torch's init changed)"
    torch.manual_seed(0)
    assert _digest(CellposeNet(widths).net.state_dict()) == digest


@needs_cp3
@pytest.mark.parametrize("chans,widths", NETS, ids=IDS)
def test_names_shapes_dtypes_and_modules_are_cellpose3s(chans, widths):
    theirs, ours = _theirs([chans, *widths]), _ours([chans, *widths])
    a, b = theirs.state_dict(), ours.state_dict()
    assert list(a) == list(b)  # the same keys in the same order
    assert [(tuple(v.shape), v.dtype) for v in a.values()] == [(tuple(v.shape), v.dtype) for v in b.values()]
    assert [(n, p.requires_grad) for n, p in theirs.named_parameters()] == [(n, p.requires_grad) for n, p in ours.named_parameters()]
    assert [n for n, _ in theirs.named_buffers()] == [n for n, _ in ours.named_buffers()]
    # the same module tree, so a hook by name ("make_style", "downsample", ...) finds the same layer
    assert [n for n, _ in theirs.named_modules()] == [n for n, _ in ours.named_modules()]
    assert [str(m) for m in theirs.modules() if not list(m.children())] == [str(m) for m in ours.modules() if not list(m.children())]
    assert not ours.diam_mean.requires_grad and not ours.diam_labels.requires_grad


@needs_cp3
@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("chans,widths", NETS, ids=IDS)
def test_the_same_seed_gives_cellpose3s_initial_weights(chans, widths, seed):
    a, b = _theirs([chans, *widths], seed).state_dict(), _ours([chans, *widths], seed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(seed)
    assert all(torch.equal(a[k], v) for k, v in CellposeNet(widths, in_channels=chans).net.state_dict().items())


@needs_cp3
def test_a_groupnorm_net_is_cellpose3s_with_its_norms_replaced():
    """`norm="group"` builds what dqcl built before (Cellpose's CPnet, every BatchNorm swapped for a GroupNorm)."""
    theirs = _theirs([1, 16, 32, 64, 128], seed=3)
    for module in list(theirs.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, name, nn.GroupNorm(_groups(child.num_features), child.num_features, eps=child.eps))
    torch.manual_seed(3)
    ours = CellposeNet((16, 32, 64, 128), norm="group").net
    a, b = theirs.state_dict(), ours.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    def leaves(net):
        return [(n, str(m)) for n, m in net.named_modules() if not list(m.children())]

    assert leaves(theirs) == leaves(ours)
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(theirs(x)[0], ours(x)[0])


@needs_cp3
@pytest.mark.parametrize("chans,widths", NETS, ids=IDS)
def test_cellpose3_weights_give_the_same_numbers(chans, widths):
    """Cellpose's weights loaded strictly give bitwise-equal flows, style vectors, encoder features,
    BatchNorm statistics and gradients, in training and in eval mode (the same operations in the
    same order: torch.equal, not a tolerance)."""
    theirs = _theirs([chans, *widths], seed=11)
    ours = _ours([chans, *widths], seed=12)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(3, chans, 64, 48, generator=torch.Generator().manual_seed(5))
    for train in (True, False):
        theirs.train(train), ours.train(train)
        (fa, sa, ta), (fb, sb, tb) = theirs(x), ours(x)
        assert torch.equal(fa, fb) and torch.equal(sa, sb), f"train={train}"
        assert sa.shape == (3, widths[-1]) and len(ta) == len(tb) == 4
        assert all(torch.equal(p, q) for p, q in zip(ta, tb))
        a, b = theirs.state_dict(), ours.state_dict()  # training mode moved the running statistics alike
        assert all(torch.equal(a[k], b[k]) for k in a)
        theirs.zero_grad(), ours.zero_grad()
        (fa.square().mean() + sa.sum()).backward()
        (fb.square().mean() + sb.sum()).backward()
        ga, gb = dict(theirs.named_parameters()), dict(ours.named_parameters())
        assert all((ga[k].grad is None and gb[k].grad is None) or torch.equal(ga[k].grad, gb[k].grad) for k in ga)


@needs_cp3
def test_a_cellpose3_model_file_loads_strictly(tmp_path):
    theirs = _theirs([2, 32, 64, 128, 256], seed=1)
    theirs.diam_mean.data.fill_(17.0), theirs.diam_labels.data.fill_(17.0)
    theirs.save_model(str(tmp_path / "cp3.pth"))
    state = torch.load(tmp_path / "cp3.pth", weights_only=True)
    ours = CPnet([2, 32, 64, 128, 256], 3, 3)
    ours.load_state_dict(state, strict=True)
    assert float(ours.diam_mean) == 17.0 and float(ours.diam_labels) == 17.0
    net = CellposeNet(diameter=17.0)
    load_init(net, tmp_path / "cp3.pth")
    assert all(torch.equal(v, state[k]) for k, v in net.net.state_dict().items())


@needs_cp3
def test_a_saved_network_loads_in_cellpose3_and_segments(tmp_path):
    """A file `save_cellpose` writes loads strictly into Cellpose 3's CPnet and through its
    CellposeModel, which then holds exactly our weights and segments an image (the trained case,
    real nuclei segmented as well as dqcl does: test_cellpose_io.py)."""
    from cellpose import models
    from cellpose.resnet_torch import CPnet as CellposeCPnet

    torch.manual_seed(2)
    net = CellposeNet(diameter=24.0)
    net.train()
    net(torch.randn(4, 1, 32, 32))  # running statistics that are not the defaults
    net.eval()
    path = save_cellpose(net, tmp_path / "mine.pth")
    state = net.net.state_dict()
    theirs = CellposeCPnet([2, 32, 64, 128, 256], 3, 3)
    theirs.load_state_dict(torch.load(path, weights_only=True), strict=True)
    model = models.CellposeModel(gpu=False, pretrained_model=str(path))
    loaded = model.net.state_dict()
    assert list(loaded) == list(state) and all(torch.equal(loaded[k].cpu(), state[k]) for k in state)
    assert float(model.net.diam_mean) == 24.0
    yy, xx = np.mgrid[:96, :96]
    image = np.zeros((96, 96), np.float32)
    for cy, cx in [(24, 24), (24, 70), (70, 40)]:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 100] = 1.0
    image += np.random.default_rng(0).normal(0, 0.05, image.shape).astype(np.float32)
    masks = model.eval(image, diameter=20, channels=[0, 0])[0]
    assert masks.shape == image.shape and np.issubdtype(masks.dtype, np.integer)
    # Cellpose runs its net on a CPU through MKL-DNN (model.net.mkldnn), other kernels than plain
    # PyTorch's: equal to rounding, not bitwise
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        theirs_out, ours_out = model.net.eval()(x)[0], net.net(x)[0]
    assert torch.allclose(theirs_out, ours_out, rtol=1e-5, atol=1e-6), (theirs_out - ours_out).abs().max()


def test_memory_estimate_builds_the_net_without_allocating():
    from dqcl.train.memory import _param_count

    assert _param_count((32, 64, 128, 256), "batch") == RECORDED[(2, (32, 64, 128, 256))][1]
    assert _param_count((16, 32, 64, 128), "group") == RECORDED[(1, (16, 32, 64, 128))][1]
    with torch.device("meta"):
        net = CellposeNet((16, 32, 64, 128))
    assert all(p.is_meta for p in net.parameters())


def test_no_dqcl_code_imports_cellposes_network():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for folder in ("dqcl", "strategies"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text()
            assert "import CPnet" not in text.replace("from .resnet import CPnet", ""), path
            assert "resnet_torch import" not in text and "import cellpose.resnet_torch" not in text, path
