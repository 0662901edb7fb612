"""Real training, small: the network learns a domain, and fine-tuning on another makes it forget."""

import numpy as np

from dqcl.train.run import run_one
from dqcl.config.expand import expand
from dqcl.config.parse import parse_spec


def _learn_config(tmp_path, strategy: str, params: dict | None = None, steps: int = 150):
    raw = {
        # two specialists of opposite polarity (dark H&E nuclei on light, bright fluorescent nuclei on dark), as the CPU studies scale them
        "study": {"name": "learn", "orderings": [["histo", "nuclei"]], "device": "cpu"},
        "data": {"patch_size": 64, "stride": 64, "diameter": 16, "cache_dir": str(tmp_path / "c")},
        "domains": {"histo": {"n_train": 6, "n_test": 2, "size": 360}, "nuclei": {"n_train": 6, "n_test": 2, "size": 360}},
        "model": {"widths": [16, 32, 64, 128]},
        "train": {"steps": steps, "warmup_steps": steps // 10, "reset_optimizer": True, "lr": 0.05},
        "strategies": {strategy: params or {}},
    }
    (cfg,) = expand(parse_spec(raw))
    return cfg


def test_naive_fine_tuning_learns_then_forgets(tmp_path):
    res = run_one(_learn_config(tmp_path, "naive"))
    R, base = np.array(res["R"]["ap50"]), np.array(res["baseline"]["ap50"])
    assert R[0, 0] > base[0] + 0.2  # learned histo
    assert R[1, 1] > base[1] + 0.2  # then learned nuclei
    assert R[1, 0] < R[0, 0] - 0.2  # and forgot histo


def test_lwf_learns_the_new_domain_about_as_well_as_naive(tmp_path):
    """Distillation must not stop the new domain from being learned (an output distillation into the
    one shared head held the new domain's cells at probability 0.5 and learned nothing)."""
    naive = run_one(_learn_config(tmp_path, "naive"))
    lwf = run_one(_learn_config(tmp_path, "lwf"))
    base = np.array(lwf["baseline"]["ap50"])
    new_naive, new_lwf = naive["R"]["ap50"][1][1], lwf["R"]["ap50"][1][1]
    assert new_lwf > base[1] + 0.2, f"lwf did not learn the new domain: AP50 {new_lwf:.3f}, random init {base[1]:.3f}"
    assert new_lwf >= new_naive - 0.15, f"lwf's plasticity {new_lwf:.3f} is far below naive's {new_naive:.3f}"
    assert lwf["model_sha256"] != naive["model_sha256"]


def test_ewc_with_a_huge_lambda_holds_the_old_weights_without_diverging(tmp_path):
    """SGD diverges on EWC's quadratic penalty once lr * lambda * F >= 1 + momentum for some weight;
    the Fisher is capped at half that limit, so even lambda = 1e5 gives a bounded, finite loss
    (without the cap it reaches inf/NaN within the second experience)."""
    import math

    res = run_one(_learn_config(tmp_path, "ewc", {"ewc_lambda": 1e5}, steps=40))
    losses = [r["loss"] for r in res["curve"]]
    assert all(math.isfinite(v) and v < 10 for v in losses), losses
    second = [r["loss"] for r in res["curve"] if r["experience"] == 1]
    assert second[-1] < 2 * second[0]  # held near its start, not blown up (without the cap: 2.3 -> 7e4 -> NaN)
