"""One memory budget for every rehearsal strategy, one replay protocol, and compute counted."""

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from dqcl.checks import check_obeys_memory_budget, tiny_spec
from dqcl.config.expand import expand
from dqcl.config.parse import parse_spec
from dqcl.config.strategies import list_strategies, strategy_entry
from dqcl.data.streams import as_avalanche
from dqcl.errors import SpecError
from dqcl.train.rehearsal import BalancedBuffer, Budget, Reservoir


class _Exp:
    def __init__(self, dataset, i):
        self.dataset, self.current_experience = dataset, i


def _domain(start: int, n: int = 10):
    x = torch.arange(start, start + n).float().view(n, 1, 1, 1)
    return as_avalanche(TensorDataset(x, x.clone()))


def _held(buf) -> list[int]:
    return sorted(int(buf.buffer[i][0].item()) for i in range(len(buf.buffer)))


def test_a_size_is_shared_equally_and_earlier_shares_shrink_keeping_the_first_picks():
    first_picks = lambda data, count, strategy, exp: np.arange(len(data))[::-1][:count]  # noqa: E731
    buf = BalancedBuffer(Budget(size=7), first_picks)
    held = []
    for e in range(3):
        buf.post_adapt(None, _Exp(_domain(10 * (e + 1)), e))
        held.append(_held(buf))
    assert held[0] == [13, 14, 15, 16, 17, 18, 19]
    assert held[1] == [16, 17, 18, 19, 27, 28, 29]  # 4 + 3: the first domain gets the remainder
    assert held[2] == [17, 18, 19, 28, 29, 38, 39]  # 3 + 2 + 2
    assert buf.memory_held() == 7


def test_a_rate_keeps_a_fraction_of_each_domain_for_good():
    pick = lambda data, count, strategy, exp: np.arange(count)  # noqa: E731
    buf = BalancedBuffer(Budget(rate=0.2), pick)
    for e in range(3):
        buf.post_adapt(None, _Exp(_domain(10 * (e + 1)), e))
    assert _held(buf) == [10, 11, 20, 21, 30, 31]


def test_a_domain_smaller_than_its_share_keeps_all_of_itself():
    assert Budget(size=30).quotas([4, 50]) == [4, 15]


def test_the_reservoir_never_holds_more_than_its_size_and_samples_the_stream_uniformly():
    counts = np.zeros(100)
    for seed in range(200):
        r = Reservoir(10, np.random.default_rng(seed))
        for start in range(0, 100, 5):
            x = torch.arange(start, start + 5).float().view(5, 1)
            r.offer(x, x)
        assert r.memory_held() == 10
        counts[r.x[:, 0].long().numpy()] += 1
    # each of the 100 samples is held with probability 1/10: 20 of 200 draws, first and last alike
    assert abs(counts[:50].mean() - 20) < 3 and abs(counts[50:].mean() - 20) < 3


def test_compute_matched_takes_memory_out_of_the_batch():
    b = Budget(size=32, protocol="batch", replay_batch=2, compute="matched", batch_size=8)
    assert b.new_per_step(True) == 6 and b.new_per_step(False) == 8
    assert Budget(size=32, protocol="batch", replay_batch=2, batch_size=8).new_per_step(True) == 8


def test_compute_counts_a_teacher_encoder_pass_and_a_whole_pass_once():
    # LwF's teacher runs only the old network's encoder on each batch: forwarded samples a user pays for
    from types import SimpleNamespace

    from dqcl.cpnet.model import CellposeNet
    from dqcl.strategies.lwf import FeatureDistillation
    from dqcl.train.plugins import ComputeCount

    torch.manual_seed(0)
    counter, model = ComputeCount(), CellposeNet(widths=(8, 16, 32, 64))
    run = SimpleNamespace(model=model, mb_x=torch.rand(4, 1, 32, 32))
    counter.before_training(run)
    counter.before_training_iteration(run)
    run.loss = model(run.mb_x).mean()  # a whole pass goes through the encoder too: counted once
    counter.after_training_iteration(run)
    assert counter.result()["forward"] == 4 and counter.result()["backward"] == 4

    teacher = FeatureDistillation(alpha=1.0)
    teacher.after_training_exp(run)  # the old network: a deep copy, hooks and all
    counter.before_training_iteration(run)
    teacher.before_forward(run)
    run.loss = model(run.mb_x).mean()
    teacher.after_forward(run)
    teacher.before_backward(run)  # the teacher's encoder pass, without gradients
    counter.after_training_iteration(run)
    t = counter.result()
    assert (t["forward"], t["backward"], t["step_forward"], t["step_backward"]) == (12, 8, 12, 8)
    assert t["per_step"] == [4, 4] and t["samples_per_step"] == 4.0


def _spec(tmp_path, strategies: dict, memory: dict | None = None, **train):
    raw = tiny_spec("naive", tmp_path)
    raw["strategies"] = strategies
    raw["train"].update(train)
    if memory is not None:
        raw["memory"] = memory
    return parse_spec(raw)


def test_a_size_list_sweeps_budgets_for_rehearsal_strategies_only(tmp_path):
    spec = _spec(tmp_path, {"naive": {}, "replay": {}, "cumulative": {}}, {"size": [8, 32, 128], "protocol": "batch"})
    runs = expand(spec)
    by_label = {}
    for cfg in runs:
        by_label.setdefault(cfg.strategy.label, []).append(cfg.memory.size)
    assert by_label == {"naive": [0], "replay": [8, 32, 128], "cumulative": [0]}
    assert len({cfg.key for cfg in runs}) == len(runs)


def test_no_memory_table_keeps_the_keys_of_runs_stored_before_budgets(tmp_path):
    plain = expand(_spec(tmp_path, {"naive": {}, "replay": {}}))
    budgeted = expand(_spec(tmp_path, {"naive": {}, "replay": {}}, {"size": 4}))
    assert "memory" not in plain[1].to_dict()
    assert plain[0].key == budgeted[0].key  # naive: no budget changes it
    assert plain[1].key != budgeted[1].key


@pytest.mark.parametrize("memory, train, message", [
    ({"size": 8, "rate": 0.1}, {}, "size (patches in all) or rate"),
    ({"protocol": "batch"}, {}, "needs size"),
    ({"size": 8, "protocol": "every step"}, {}, "memory.protocol: must be one of mix, batch"),
    ({"size": 8, "compute": "equal"}, {}, "memory.compute: must be one of appended, matched"),
    ({"size": 8, "compute": "matched", "protocol": "batch"}, {"batch_size": 4}, "must be fewer than train.batch_size (4); got 4"),
    ({"size": [8, 8]}, {}, "repeat none"),
    ({"size": -1}, {}, "memory.size"),
    ({"rate": 1.5}, {}, "memory.rate"),
])
def test_bad_memory_tables_are_one_clear_line(tmp_path, memory, train, message):
    with pytest.raises(SpecError, match=None) as err:
        _spec(tmp_path, {"replay": {}}, memory, **train)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_strategy_that_replays_by_minibatch_is_refused_under_mixing(tmp_path):
    with pytest.raises(SpecError, match="strategy 'derpp' .* replays by batch only"):
        _spec(tmp_path, {"derpp": {}}, {"size": 8, "protocol": "mix"})
    with pytest.raises(SpecError, match="strategy 'er' .* keeps a fixed number of patches"):
        _spec(tmp_path, {"er": {}}, {"rate": 0.1, "protocol": "batch"})


def test_every_rehearsal_strategy_declares_how_it_takes_the_budget():
    for name in list_strategies():
        factory = strategy_entry(name).factory
        if "memory" in factory.effects:
            assert factory.memory in ("budget", "size", "all"), name


def test_a_rehearsal_strategy_that_ignores_the_shared_budget_fails_the_contract(tmp_path):
    """A plugin strategy with a reservoir of its own size (32 patches) never reads base.memory."""
    from avalanche.training import Naive

    from dqcl.config.strategies import STRATEGIES
    from dqcl.train import register_strategy
    from dqcl.train.rehearsal import Reservoir, ReplayPlugin

    @register_strategy("own_memory", description="replay with its own memory, ignoring the budget", effects=("memory",),
                       memory="size", protocols=("batch",))
    def own_memory(base):
        mine = Budget(size=32, protocol="batch", replay_batch=2, batch_size=base.train_mb_size)
        return Naive(**base.kwargs(ReplayPlugin(mine, reservoir=Reservoir(32, np.random.default_rng(0)))))

    try:
        with pytest.raises(AssertionError, match="ignores the shared memory budget"):
            check_obeys_memory_budget("own_memory", tmp_path)
    finally:
        STRATEGIES.unregister("own_memory")


def test_a_domain_smaller_than_one_batch_is_refused_under_matched_compute(tmp_path, capsys):
    # compute = "matched" drops short batches: a 1-patch domain under batch 4 would train no step at all
    import sqlite3

    from dqcl.cli import main

    from conftest import tiny_spec_text

    text = tiny_spec_text(tmp_path).replace("[domains.histo]\nn_train = 2\nn_test = 1\nsize = 96",
                                            "[domains.histo]\nn_train = 1\nn_test = 1\nsize = 48")
    text += '\n[memory]\nsize = 4\nprotocol = "batch"\nreplay_batch = 1\ncompute = "matched"\n'
    spec = tmp_path / "small.toml"
    spec.write_text(text)
    store = tmp_path / "runs.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "domain 'histo': 1 training patches, fewer than one batch of 4 new samples" in err[0], err
    assert "Traceback" not in err[0]
    assert not store.exists() and not list(tmp_path.glob("runs.sqlite*"))  # a study that stored nothing leaves no store
    # a store that was there before keeps what it held
    from dqcl.results.store import Store

    with Store(store) as s:
        s.put("earlier", {"study": "x", "strategy": {"label": "naive", "name": "naive"}, "ordering": ["cyto"], "seed": 0}, {"R": {}})
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 2
    assert sqlite3.connect(store).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
