"""CPSAM as a backend (``[model] arch = "cpsam"``): Cellpose 4's network structure, trained end to end
through dqcl's runner with a tiny encoder on the CPU; its files are Cellpose 4's; bad specs stop in
one line. The tests that build CPSAM need Cellpose 4 (``cellpose.vit``, with segment_anything);
the spec and preflight refusals run everywhere."""

import copy

import numpy as np
import pytest
import torch

from dqcl.checks import tiny_spec
from dqcl.cli import main
from dqcl.config.expand import expand
from dqcl.config.parse import parse_spec
from dqcl.cpnet.cpsam import cellpose4_available
from dqcl.errors import DqclError, SpecError

from conftest import resumed_after_a_kill

CP4 = cellpose4_available()
needs_cp4 = pytest.mark.skipif(not CP4, reason="Cellpose 4 (cellpose.vit with segment_anything) is not importable here")


def _raw(workdir, strategy="naive", **model):
    raw = tiny_spec(strategy, workdir)
    raw["model"] = {"arch": "cpsam", "encoder": "tiny", **model}
    raw["train"] = {"epochs": 1, "batch_size": 2, "lr": 1e-3, "weight_decay": 0.1}
    return raw


def _toml(tmp_path, extra_model=""):
    """The suite's tiny spec (conftest) with a tiny-encoder CPSAM, as a file."""
    from conftest import tiny_spec_text

    text = tiny_spec_text(tmp_path, "[strategies.naive]\n")
    text = text.replace("[model]\nwidths = [8, 16, 32, 64]", f'[model]\narch = "cpsam"\nencoder = "tiny"\n{extra_model}')
    text = text.replace("batch_size = 4", "batch_size = 2\nlr = 0.001")
    assert 'arch = "cpsam"' in text and "batch_size = 2" in text, "conftest's tiny spec changed shape"
    path = tmp_path / "cpsam.toml"
    path.write_text(text)
    return path


# ---- everywhere: spec values, and preflight without Cellpose 4 ----

def test_the_default_arch_leaves_run_keys_unchanged(tmp_path):
    (plain,) = expand(parse_spec(tiny_spec("naive", tmp_path)))
    raw = tiny_spec("naive", tmp_path)
    raw["model"] = {**raw["model"], "arch": "cpnet", "encoder": "vit_l"}
    (spelled,) = expand(parse_spec(raw))
    assert spelled.key == plain.key and "arch" not in plain.to_dict()["model"]
    assert "encoder" not in plain.to_dict()["model"]


@pytest.mark.parametrize("model, words", [
    ({"arch": "vit"}, "model.arch must be one of cpnet, cpsam, got 'vit'"),
    ({"encoder": "vit_h"}, "model.encoder must be one of vit_l, tiny, got 'vit_h'"),
])
def test_an_unknown_arch_or_encoder_is_one_spec_error(tmp_path, model, words):
    with pytest.raises(SpecError) as err:
        parse_spec(_raw(tmp_path, **model))
    assert words in str(err.value) and len(str(err.value).splitlines()) == 1


def test_vit_l_takes_cellpose_4s_256_px_tiles(tmp_path):
    with pytest.raises(SpecError, match="data.patch_size = 256"):
        parse_spec(_raw(tmp_path, encoder="vit_l"))


def test_cpsam_without_cellpose_4_stops_in_preflight_in_one_line(tmp_path, monkeypatch, capsys):
    import dqcl.cpnet.cpsam as cpsam

    monkeypatch.setattr(cpsam, "cellpose4_available", lambda: False)
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(_toml(tmp_path)), "--store", str(store), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'model.arch = "cpsam" needs Cellpose 4' in err and not store.exists()


def test_cellpose4_available_is_false_when_cellpose_vit_cannot_be_imported(monkeypatch):
    import builtins

    real = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name in ("cellpose.vit", "segment_anything"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    assert cellpose4_available() is False


# ---- with Cellpose 4 ----

@needs_cp4
def test_vit_l_has_cellpose_4s_state_dict_names_and_shapes():
    from cellpose.vit import CPSAM

    from dqcl.cpnet.cpsam import CPSAMNet

    with torch.device("meta"):  # nothing of the 300 M parameters is allocated
        ours, theirs = CPSAMNet("vit_l").net.state_dict(), CPSAM().state_dict()
    assert list(ours) == list(theirs)
    assert all(tuple(ours[k].shape) == tuple(theirs[k].shape) for k in theirs)
    assert 3.0e8 < sum(v.numel() for v in ours.values()) < 3.1e8


@needs_cp4
def test_tiny_forward_is_cellposes_layout_and_grayscale_is_image_zero_zero():
    from dqcl.cpnet.cpsam import CPSAMNet

    torch.manual_seed(0)
    net = CPSAMNet("tiny", bsize=48).eval()
    x = torch.randn(2, 1, 48, 48)
    y = net(x)
    assert y.shape == (2, 3, 48, 48)
    padded = torch.cat([x, torch.zeros_like(x), torch.zeros_like(x)], 1)
    assert torch.equal(net.net(padded)[0], y)
    assert net.style(x).shape == (2, 32)
    assert not net.net.encoder.patch_embed.proj.weight.requires_grad and not net.net.W2.requires_grad


@needs_cp4
def test_the_forward_is_cellpose_4s_on_the_same_modules():
    """Cellpose 4's own ``CPSAM.forward`` run on the tiny net's modules gives the same outputs, in
    evaluation and in training (layer drop drawn from the same seed)."""
    from cellpose.vit import CPSAM
    from torch import nn

    from dqcl.cpnet.cpsam import CPSAMNet

    torch.manual_seed(0)
    ours = CPSAMNet("tiny", bsize=48)
    theirs = CPSAM.__new__(CPSAM)
    nn.Module.__init__(theirs)
    theirs.encoder, theirs.out, theirs.W2 = ours.net.encoder, ours.net.out, ours.net.W2
    theirs.ps, theirs.nout, theirs.rdrop = 8, 3, 0.4
    x = torch.randn(3, 1, 48, 48)
    for training in (False, True):
        ours.train(training), theirs.train(training)
        torch.manual_seed(1)
        want = theirs(x)[0]  # Cellpose 4 takes a one-channel image as it is: its first channel's weights
        torch.manual_seed(1)
        got = ours(x)
        assert torch.allclose(got, want, atol=1e-6), training


@needs_cp4
def test_a_tiny_cpsam_study_trains_scores_resumes_exactly_and_saves(tmp_path):
    from dqcl.cpnet.cpsam import CPSAMNet
    from dqcl.cpnet.model import load_init
    from dqcl.train.run import run_one

    raw = _raw(tmp_path)
    raw["output"] = {"save_weights": "final"}
    (cfg,) = expand(parse_spec(raw))
    full = run_one(cfg, artifacts=tmp_path / "full")
    for metric, R in full["R"].items():
        assert np.asarray(R).shape == (2, 2), metric
    assert full["images_seen"] > 0 and full["norm_swap"] is None  # no BatchNorm statistics: no swap
    path = tmp_path / "ckpt.pt"
    resumed = resumed_after_a_kill(cfg, path)
    assert resumed["resumed_from"] == 1
    assert resumed["R"] == full["R"] and resumed["model_sha256"] == full["model_sha256"]
    (final,) = (tmp_path / "full").glob("**/final.pth")
    state = torch.load(final, weights_only=True)
    assert "W2" in state and all(v.dtype == torch.float32 for v in state.values())
    back = CPSAMNet("tiny", bsize=48)
    load_init(back, final)
    assert all(torch.equal(back.net.state_dict()[k], v) for k, v in state.items())


@needs_cp4
def test_herding_replay_runs_on_cpsam_tokens(tmp_path):
    from dqcl.train.run import run_one

    (cfg,) = expand(parse_spec(_raw(tmp_path, strategy="herding_replay")))
    res = run_one(cfg)
    assert np.asarray(res["R"]["ap50"]).shape == (2, 2)


@needs_cp4
def test_preflight_states_the_cpu_step_time_and_the_memory_covers_the_vit(tmp_path):
    from dqcl.study.preflight import preflight
    from dqcl.train.memory import estimate_run_bytes, step_seconds

    (note,) = preflight(parse_spec(_raw(tmp_path))).notes
    assert "CPSAM (tiny encoder) on the CPU: about" in note and "s per training step of batch 2 at 48 px" in note
    assert step_seconds("vit_l", 256, 8, 2) > 60  # ViT-L at Cellpose 4's tiles: minutes per step on two cores
    net, _ = estimate_run_bytes((32, 64, 128, 256), "batch", 256, 8, 1, "cpsam", "vit_l")
    # 300 M parameters x 5 copies and a batch of 8 x 1024 tokens x 24 blocks: measured peak on an H200 30.3 GiB
    assert 30 * 2**30 < net < 45 * 2**30


@needs_cp4
@pytest.mark.parametrize("strategy, why", [("lwf", "net.downsample"), ("agem", "AdamW"), ("gem", "AdamW")])
def test_strategies_without_a_cpsam_form_are_refused_in_one_line(tmp_path, strategy, why):
    from dqcl.study.preflight import preflight

    with pytest.raises(DqclError) as err:
        preflight(parse_spec(_raw(tmp_path, strategy=strategy)))
    assert f"({strategy})" in str(err.value) and 'model.arch = "cpsam"' in str(err.value) and why in str(err.value)
    assert len(str(err.value).splitlines()) == 1


@needs_cp4
def test_a_cellpose_3_file_or_another_encoder_as_init_stops_in_preflight(tmp_path, capsys):
    from dqcl.cpnet.cpsam import CPSAMNet
    from dqcl.cpnet.resnet import CPnet

    torch.save(CPnet([2, 32, 64, 128, 256], nout=3, sz=3).state_dict(), tmp_path / "cp3.pth")
    torch.save(CPSAMNet("tiny", bsize=64).net.state_dict(), tmp_path / "tiny64.pth")  # a 64 px tiny CPSAM
    store = tmp_path / "r.sqlite"
    for name, words in (("cp3.pth", "not a Cellpose 4 (CPSAM) model"), ("tiny64.pth", "does not match model.encoder")):
        spec = _toml(tmp_path, f'init = "{name}"')
        assert main(["run", "benchmark", str(spec), "--store", str(store), "--dry-run"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and name in err and words in err, err
    torch.save(CPSAMNet("tiny", bsize=48).net.state_dict(), tmp_path / "tiny48.pth")
    assert main(["run", "benchmark", str(_toml(tmp_path, 'init = "tiny48.pth"')), "--store", str(store), "--dry-run"]) == 0


@needs_cp4
def test_a_vit_l_file_dqcl_saves_loads_strictly_in_cellpose_4_and_back(tmp_path):
    from cellpose.vit import CPSAM

    from dqcl.cpnet.cpsam import CPSAMNet
    from dqcl.cpnet.model import load_init, save_cellpose

    torch.manual_seed(0)
    ours = CPSAMNet("vit_l")
    path = save_cellpose(ours, tmp_path / "vitl.pth")
    theirs = CPSAM()
    theirs.load_model(path, device=torch.device("cpu"), strict=True)
    assert all(torch.equal(theirs.state_dict()[k], v) for k, v in ours.net.state_dict().items())
    del theirs
    back = CPSAMNet("vit_l")
    load_init(back, path)
    assert all(torch.equal(back.net.state_dict()[k], v) for k, v in ours.net.state_dict().items())
    del back
    # Cellpose 4's own API loads it and segments with it (untrained weights: the masks' content is not the point)
    from cellpose.models import CellposeModel

    model = CellposeModel(gpu=False, pretrained_model=str(path), use_bfloat16=False)
    assert all(torch.equal(model.net.state_dict()[k], v) for k, v in ours.net.state_dict().items())
    image = np.random.default_rng(0).random((224, 224)).astype(np.float32)  # one 256 px tile
    masks = model.eval(image)[0]
    assert masks.shape == (224, 224)


@needs_cp4
def test_dqcl_network_builds_cpsam_for_a_cpsam_spec(tmp_path):
    # dqcl.network (the Avalanche users' entry) gives the network a run of the spec trains: CPSAM here
    import dqcl
    from dqcl.cpnet.cpsam import CPSAMNet

    torch.manual_seed(0)
    net = dqcl.network(_raw(tmp_path))
    assert isinstance(net, CPSAMNet)
    out = net(torch.rand(1, 1, 48, 48))
    assert out.shape == (1, 3, 48, 48)


@needs_cp4
def test_a_whole_image_of_any_size_segments_through_cpsam_tiles():
    # CPSAM takes tiles of its own size only: segment_image covers an image of another size with
    # overlapping tiles, padded and blended as Cellpose 4's own run_net does it with the same network
    from cellpose import core

    from dqcl.cpnet.cpsam import CPSAMNet
    from dqcl.evaluation.segment import _tiled, segment_image

    torch.manual_seed(0)
    net = CPSAMNet("tiny", bsize=48, diameter=16.0).eval()

    class AsRunNetCalls(torch.nn.Module):  # run_net reads a device and a dtype, and stores 256-d styles
        device, dtype = torch.device("cpu"), torch.float32

        def forward(self, x):
            return net.net(x)[0], torch.zeros(len(x), 256)

    rng = np.random.default_rng(0)
    for shape in ((48, 48), (70, 100)):
        img = rng.random(shape).astype(np.float32)
        theirs, _ = core.run_net(AsRunNetCalls(), np.stack([img, 0 * img, 0 * img], -1)[None], bsize=48)
        assert np.abs(_tiled(net, img, 48)[0].numpy() - theirs[0].transpose(2, 0, 1)).max() < 1e-4
    image = rng.random((100, 70)).astype(np.float32)
    mask = segment_image(net, image, diameter=16.0)
    assert mask.shape == (100, 70) and mask.dtype == np.int32
    small = segment_image(net, rng.random((30, 20)).astype(np.float32), diameter=16.0)  # smaller than a tile
    assert small.shape == (30, 20)


def test_dqcl_network_without_cellpose4_is_one_line(tmp_path, monkeypatch):
    import dqcl
    from dqcl.cpnet import cpsam
    from dqcl.errors import DqclError

    monkeypatch.setattr(cpsam, "cellpose4_available", lambda: False)
    with pytest.raises(DqclError) as err:
        dqcl.network(_raw(tmp_path))
    assert 'model.arch = "cpsam" needs Cellpose 4' in str(err.value) and "\n" not in str(err.value)
