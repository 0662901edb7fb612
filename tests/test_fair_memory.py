"""Fair inside the budget (issue 27): A-GEM's and GEM's reference passes at the papers' sizes, counted as
compute but not among a step's samples; a domain-balanced reservoir for ER and DER++; parameters added
after the published runs leave their keys alone."""

import json

import numpy as np
import pytest
import torch

from dqcl.checks import tiny_spec
from dqcl.config.strategies import resolve_params


def _run(tmp_path, name, params):
    from dqcl.config.expand import expand
    from dqcl.config.parse import parse_spec
    from dqcl.train.run import run_one

    raw = tiny_spec(name, tmp_path, params)
    raw["memory"] = {"size": 6, "protocol": "batch", "replay_batch": 2, "compute": "matched"}
    raw["train"].update({"steps": 4, "warmup_steps": 1})
    (cfg,) = expand(parse_spec(json.loads(json.dumps(raw))))
    return run_one(cfg)


@pytest.mark.parametrize("name, params", [("agem", {"reference": 256}), ("gem", {"whole_memory": True})])
def test_a_reference_pass_at_the_papers_size_is_compute_apart_from_the_batch(tmp_path, name, params):
    result = _run(tmp_path, name, params)
    paper, held = result["compute"], result["memory"]["held"][0]  # the first domain's patches in memory (at most 6)
    budget = _run(tmp_path, name, {})["compute"]
    assert paper["per_step"] == [4, 4]  # the batch is all new samples: the memory pass is apart from it
    assert 0 < held <= 6 and paper["reference_backward"] == 4 * held  # 4 steps of the second experience, each on all of memory
    assert budget["per_step"] == [4, 4] and "reference_backward" not in budget  # 2 of 4 in the batch, as the budget says
    assert paper["backward"] == paper["step_backward"] + paper["reference_backward"]


def test_parameters_added_after_the_published_runs_stay_out_of_their_keys():
    assert "reference" not in resolve_params("agem", {}) and resolve_params("agem", {"reference": 256})["reference"] == 256
    assert "whole_memory" not in resolve_params("gem", {}) and "balanced" not in resolve_params("er", {})
    assert resolve_params("derpp", {"balanced": True})["balanced"] is True


def test_a_balanced_reservoir_shares_itself_between_domains():
    from dqcl.train.rehearsal import Reservoir

    plain, balanced = Reservoir(20, np.random.default_rng(0)), Reservoir(20, np.random.default_rng(0), balanced=True)
    for r in (plain, balanced):
        r.experience = 0
        for _ in range(50):  # 200 samples of the first domain
            r.offer(torch.zeros(4, 1, 2, 2), torch.zeros(4, 1, 2, 2))
        r.experience = 1
        for _ in range(10):  # then 40 of the second
            r.offer(torch.ones(4, 1, 2, 2), torch.ones(4, 1, 2, 2))
    assert plain.old_share(1) > 0.7  # the plain reservoir keeps mostly the first domain's 200
    assert balanced.old_share(1) == pytest.approx(0.5)  # the balanced one: half each
    assert balanced.filled == 20 and sorted(np.bincount(balanced.origin)) == [10, 10]


def test_acc_against_memory_and_compute_across_budgets(tmp_path):
    """Ranking across budgets: a figure of ACC against memory (bytes; DER++ counts its outputs) and against
    compute, with the Pareto front, wherever a study ran two or more budgets."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_leaderboard_memory import _two_budgets

    from dqcl.results.leaderboard import write_leaderboard
    from dqcl.results.plots import _bytes, _pareto
    from dqcl.results.store import Store

    assert _pareto([(1, 0.5), (2, 0.4), (3, 0.7), (4, 0.6), (5, 0.8)]) == [(1, 0.5), (3, 0.7), (5, 0.8)]
    # the memory axis reads in bytes a person reads (was: 2x10^5 3x10^5 ... overprinted on every minor tick)
    assert [_bytes(x) for x in (500, 2e5, 1e6, 2.5e7)] == ["500 B", "200 kB", "1 MB", "25 MB"]
    with Store(tmp_path / "r.sqlite") as store:
        _two_budgets(store)
        paths = {p.name for p in write_leaderboard(store, tmp_path / "lb")}
    assert {"m_cyto-histo_memory_ap50.png", "m_cyto-histo_compute_ap50.png"} <= paths
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "![ACC against memory](m_cyto-histo_memory_ap50.png)" in md
