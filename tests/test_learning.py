"""Real training, small: the network learns a domain, and fine-tuning on another makes it forget."""

import numpy as np

from dqcl.train.run import run_one
from dqcl.config.expand import expand
from dqcl.config.parse import parse_spec


def test_naive_fine_tuning_learns_then_forgets(tmp_path):
    raw = {
        "study": {"name": "learn", "orderings": [["histo", "cyto"]], "device": "cpu"},
        "data": {"patch_size": 64, "stride": 64, "cache_dir": str(tmp_path / "c")},
        "domains": {"histo": {"n_train": 6, "n_test": 2, "size": 192}, "cyto": {"n_train": 6, "n_test": 2, "size": 192}},
        "model": {"widths": [16, 32, 64, 128]},
        "train": {"epochs": 12, "lr": 0.05},
        "strategies": {"naive": {}},
    }
    (cfg,) = expand(parse_spec(raw))
    res = run_one(cfg)
    R, base = np.array(res["R"]["ap50"]), np.array(res["baseline"]["ap50"])
    assert R[0, 0] > base[0] + 0.2  # learned histo
    assert R[1, 1] > base[1] + 0.2  # then learned cyto
    assert R[1, 0] < R[0, 0] - 0.2  # and forgot histo
