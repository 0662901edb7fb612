"""The contract every registered strategy meets: a new file in strategies/ is tested here at once."""

import numpy as np
import pytest
import torch

from dqcl.errors import RegistryError, SpecError
from dqcl.train.run import run_one
from dqcl.config.expand import expand
from dqcl.config.parse import load_spec
from dqcl.checks import CHECKS
from dqcl.config.strategies import STRATEGIES, list_strategies, resolve_params

from conftest import tiny_spec_text

ALL = list_strategies()


def test_the_four_core_strategies_are_registered():
    assert {"naive", "joint", "cumulative", "replay"} <= set(ALL)


def test_duplicate_registration_is_an_error():
    with pytest.raises(RegistryError, match="registered twice"):
        STRATEGIES.register("naive", description="again")(lambda base: None)


@pytest.mark.parametrize("name", ALL)
def test_strategy_has_description_and_default_params(name):
    assert STRATEGIES.get(name).description
    params = resolve_params(name, {})
    assert all(not callable(v) for v in params.values())


@pytest.fixture(scope="session")
def contract_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("contract")


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", ALL)
def test_strategy_contract(name, check, contract_dir):
    CHECKS[check](name, contract_dir)


def test_unknown_parameter_is_a_clear_error():
    with pytest.raises(SpecError, match="strategy 'naive': unknown key 'rate'"):
        resolve_params("naive", {"rate": 0.1})


def test_replay_memory_keeps_the_rate_of_each_experience(tmp_path):
    from dqcl.train.replay import FractionBuffer, keep_count, random_selector

    assert keep_count(100, 0.05) == 5 and keep_count(10, 0.01) == 1 and keep_count(3, 1.0) == 3
    from dqcl.data.domains import DOMAINS
    from dqcl.data.streams import make_benchmark, prepare

    parts = [prepare(DOMAINS.get(k).factory(seed=0, n_train=2, n_test=1, size=96), "train", 48, 24, diameter=30.0)
             for k in ("cyto", "histo")]
    bm = make_benchmark(parts, parts)
    buf = FractionBuffer(0.25, random_selector(0))
    for exp in bm.train_stream:
        buf.post_adapt(None, exp)
    expected = [keep_count(len(p), 0.25) for p in parts]
    assert all(n >= 2 for n in expected)
    assert [len(k) for k in buf.kept] == expected and len(buf.buffer) == sum(expected)
    # the kept samples are the experience's own samples, untouched
    x0, y0, _ = buf.buffer[0]
    assert torch.equal(x0, torch.from_numpy(parts[0].images[buf.kept[0][0]]))


def test_dq_replay_memory_is_the_dq_coreset_of_each_experience():
    from dqcl.data.domains import DOMAINS
    from dqcl.dq.selectors import select
    from dqcl.train.replay import DQBuffer
    from dqcl.dq.embedders import embed
    from dqcl.data.streams import make_benchmark, prepare

    parts = [prepare(DOMAINS.get(k).factory(seed=0, n_train=4, n_test=1, size=96), "train", 48, 24, diameter=30.0)
             for k in ("cyto", "histo")]
    bm = make_benchmark(parts, parts)
    buf = DQBuffer(0.2, variant="mmv", bins=3, embedder="stats")
    for exp in bm.train_stream:
        buf.post_adapt(None, exp)
    for kept, part in zip(buf.kept, parts):
        feats = embed("stats", part.images, part.targets[:, 0].astype(np.int32))
        assert kept.tolist() == select(feats, 0.2, 3, "mmv").tolist()
    assert len(buf.buffer) == sum(len(k) for k in buf.kept)


def test_gem_actually_projects_the_step(tmp_path, monkeypatch):
    """On the second domain GEM must meet steps that oppose the first's memory and project them."""
    from avalanche.training.plugins import GEMPlugin

    calls = []
    real = GEMPlugin.solve_quadprog

    def spy(self, g):
        v = real(self, g)
        calls.append((g.clone(), v.clone().to(g.dtype), self.G.clone()))
        return v

    monkeypatch.setattr(GEMPlugin, "solve_quadprog", spy)
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(tiny_spec_text(tmp_path, "[strategies.gem]\npatterns_per_exp = 4\n").replace("epochs = 1", "epochs = 4"))
    (cfg,) = expand(load_spec(spec_path))
    run_one(cfg)
    assert calls, "GEM never projected a step"
    g, v, G = calls[0]
    assert (G @ g < 0).any()  # the conflict that called for a projection
    assert (G @ v >= -1e-3 * G.norm(dim=1) * v.norm()).all()  # afterwards no past domain's gradient is opposed
    assert not torch.allclose(g, v)


def _fake_strategy(net, x):
    class S:  # the few strategy fields the plugins read
        pass

    s = S()
    s.model, s.mb_x, s.loss = net, x, torch.tensor(0.0)
    return s


def test_lwf_penalty_is_zero_until_the_network_drifts():
    from dqcl.cpnet.model import CellposeNet
    from dqcl.strategies.lwf import FeatureDistillation

    torch.manual_seed(0)
    net = CellposeNet((8, 16, 32, 64)).train()
    s = _fake_strategy(net, torch.rand(2, 1, 32, 32))
    plugin = FeatureDistillation(alpha=1.0)

    def step():
        plugin.before_forward(s)
        s.mb_output = net(s.mb_x)
        plugin.after_forward(s)
        plugin.before_backward(s)
        plugin.after_training_iteration(s)

    step()
    assert float(s.loss) == 0.0  # no previous network yet
    plugin.after_training_exp(s)
    step()
    assert abs(float(s.loss)) < 1e-6  # the network has not changed: nothing to pull back
    with torch.no_grad():
        for p in net.net.downsample.parameters():
            p.add_(0.05 * torch.randn_like(p))
    step()
    assert float(s.loss) > 0.0


def test_si_importance_is_a_copy_based_path_integral_on_the_cpu():
    """Avalanche's SI aliases its snapshots on a CPU (``.detach().cpu()`` is the parameter itself),
    so its path integral is 0 and it trains as naive does; dqcl's must see the path."""
    from dqcl.cpnet.model import CellposeNet, cellpose_loss
    from dqcl.strategies.si import SynapticIntelligence

    torch.manual_seed(0)
    net = CellposeNet((8, 16, 32, 64)).train()
    s = _fake_strategy(net, torch.rand(4, 1, 32, 32))
    target = torch.zeros(4, 4, 32, 32)
    target[:, 1, 8:20, 8:20] = 1.0
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    si = SynapticIntelligence(si_lambda=1.0, eps=1e-3)
    si.before_training_exp(s)
    for _ in range(5):
        si.before_training_iteration(s)
        opt.zero_grad()
        s.loss = cellpose_loss(net(s.mb_x), target)
        si.before_backward(s)
        s.loss.backward()
        opt.step()
        si.after_training_iteration(s)
    si.after_training_exp(s)
    omega = torch.cat([w.flatten() for w in si.omega.values()])
    assert (omega >= 0).all() and float(omega.max()) == pytest.approx(1.0)  # no negative importances; capped at 1
    assert float((omega == 1.0).float().mean()) < 0.02  # the cap touches about 1 %: the rest keep their ranking
    assert float((omega > 0).float().mean()) > 0.5  # most parameters moved along the loss: informative
    assert float(omega.std()) > 0.05  # not one flat value (Avalanche clips 99.8 % of them to 0.001)
    # the anchor is a copy: moving the network now makes a penalty
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01)
    assert float(si.penalty(s)) > 0
