import numpy as np
import torch

import dqcl.cpnet.flows as flows_mod
from dqcl.data.domains import DOMAINS
from dqcl.cpnet.model import dihedral
from dqcl.data.patches import extract_patches
from dqcl.data.streams import prepare


def _masks():
    dom = DOMAINS.get("cyto").factory(seed=0, n_train=2, n_test=1, size=96)
    return extract_patches(dom.train, 48, 48, pad=True)[1]


def test_flow_targets_have_cellpose_layout():
    masks = _masks()
    f = flows_mod.flow_targets(masks)
    assert f.shape == (len(masks), 4, 48, 48) and f.dtype == np.float32
    assert np.array_equal(f[:, 1] > 0.5, masks > 0)
    inside = masks > 0
    mag = np.sqrt(f[:, 2] ** 2 + f[:, 3] ** 2)
    assert np.all(mag[~inside] == 0) and mag[inside].mean() > 0.3  # unit-ish flows inside cells only


def test_second_preparation_reads_the_cache(tmp_path, monkeypatch):
    masks = _masks()
    calls = []
    real = flows_mod._compute
    monkeypatch.setattr(flows_mod, "_compute", lambda m: calls.append(len(m)) or real(m))
    first = flows_mod.flow_targets(masks, tmp_path)
    second = flows_mod.flow_targets(masks, tmp_path)
    assert calls == [len(masks)]
    assert np.array_equal(first, second)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npy"]
    # different masks, different entry
    flows_mod.flow_targets(masks[:2], tmp_path)
    assert len(calls) == 2 and len(list(tmp_path.iterdir())) == 2


def test_damaged_cache_entry_is_recomputed(tmp_path):
    masks = _masks()[:2]
    good = flows_mod.flow_targets(masks, tmp_path)
    entry = next(tmp_path.iterdir())
    entry.write_bytes(b"garbage")
    assert np.array_equal(flows_mod.flow_targets(masks, tmp_path), good)


def test_augmentation_turns_flows_with_the_image():
    """Flipping/rotating a target must equal computing flows of the flipped/rotated mask."""
    masks = _masks()[:3]
    f = torch.from_numpy(flows_mod.flow_targets(masks))
    x = torch.from_numpy(masks[:, None].astype(np.float32))
    for seed in range(4):
        gx, gy = dihedral(x, f, torch.Generator().manual_seed(seed))
        expect = flows_mod.flow_targets(gx[:, 0].numpy().astype(np.int32))
        assert np.allclose(gy[:, 1:].numpy(), expect[:, 1:], atol=1e-4)


def test_prepare_builds_patch_data():
    dom = DOMAINS.get("nuclei").factory(seed=0, n_train=2, n_test=1, size=96, generator=1)  # 96 px squares: 9 patches each
    data = prepare(dom, "train", 48, 24)
    assert data.images.shape == (2 * 9, 1, 48, 48) and data.targets.shape == (18, 4, 48, 48)
