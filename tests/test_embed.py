import time

import numpy as np
import pytest
import torch

from dqcl.data.domains import DOMAINS
from dqcl.dq.embedders import MAE_NAME, embed, mae_model
from dqcl.errors import DqclError
from dqcl.cpnet.model import CellposeNet
from dqcl.data.streams import prepare


@pytest.fixture(scope="module")
def patches():
    data = prepare(DOMAINS.get("cyto").factory(seed=0, n_train=2, n_test=1, size=96), "train", 48, 48)
    return data.images, data.targets[:, 0].astype(np.int32)


def test_stats_embedding_sees_morphology(patches, tmp_path):
    images, labels = patches
    f = embed("stats", images, labels)
    assert f.shape == (len(images), 27) and f.dtype == np.float32
    # cell count feature follows the masks
    counts = np.array([len(np.unique(m)) - 1 for m in labels])
    assert np.corrcoef(f[:, 22], counts)[0, 1] > 0.99
    # cached: a second call reads the file
    a = embed("stats", images, labels, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("embed-stats-*.npy"))) == 1
    assert np.array_equal(a, embed("stats", images, labels, cache_dir=tmp_path))


def test_style_embedding_from_model_and_checkpoint(patches, tmp_path):
    images, _ = patches
    torch.manual_seed(0)
    net = CellposeNet((8, 16, 32, 64))
    f = embed("style", images, model=net)
    assert f.shape == (len(images), 64)
    ckpt = tmp_path / "net.pt"
    torch.save(net.state_dict(), ckpt)
    g = embed("style", images, checkpoint=str(ckpt), widths=(8, 16, 32, 64))
    assert np.allclose(f, g, atol=1e-5)
    with pytest.raises(DqclError, match="not a CellposeNet checkpoint"):
        embed("style", images, checkpoint=str(ckpt), widths=(32, 64, 128, 256))


def test_mae_without_weights_fails_at_once_and_says_how(monkeypatch, tmp_path, patches):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    t = time.perf_counter()
    with pytest.raises(DqclError, match="--mae-weights PATH") as err:
        embed("mae", patches[0][:1])
    assert time.perf_counter() - t < 10
    assert "never downloads" in str(err.value)


@pytest.fixture(scope="module")
def mae_weights(tmp_path_factory):
    """A checkpoint in the exact format of timm's MAE weights, written here (tests have no internet)."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model(MAE_NAME, pretrained=False, num_classes=0)
    path = tmp_path_factory.mktemp("mae") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path, model


def test_mae_loads_a_local_weights_file(mae_weights, patches):
    path, reference = mae_weights
    images = patches[0][:2]
    f = embed("mae", images, weights=str(path))
    assert f.shape == (2, 768)
    x = torch.nn.functional.interpolate(torch.from_numpy(images).clamp(0, 1).expand(-1, 3, -1, -1), size=224, mode="bilinear")
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = reference.eval().forward_features(x).mean(dim=1).numpy()
    assert np.allclose(f, want, atol=1e-4)


def test_mae_found_in_the_hugging_face_cache(mae_weights, monkeypatch, tmp_path):
    path, _ = mae_weights
    repo = tmp_path / "hub" / "models--timm--vit_base_patch16_224.mae"
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snap / "model.safetensors").symlink_to(path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert mae_model() is not None


def test_mae_weights_that_do_not_match(tmp_path):
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    save_file({"patch_embed.proj.weight": torch.zeros(10, 3, 16, 16)}, str(bad))
    with pytest.raises(DqclError, match="weights do not match vit_base_patch16_224.mae"):
        mae_model(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DqclError, match="junk.pth: not readable as MAE weights: it is not a file of tensors"):
        mae_model(junk)
