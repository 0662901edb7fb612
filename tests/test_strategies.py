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

    parts = [prepare(DOMAINS.get(k).factory(seed=0, n_train=2, n_test=1, size=96), "train", 48, 24) for k in ("cyto", "histo")]
    bm = make_benchmark(parts, parts)
    buf = FractionBuffer(0.25, random_selector(0))
    for exp in bm.train_stream:
        buf.post_adapt(None, exp)
    assert [len(k) for k in buf.kept] == [4, 4] and len(buf.buffer) == 8
    # the kept samples are the experience's own samples, untouched
    x0, y0, _ = buf.buffer[0]
    assert torch.equal(x0, torch.from_numpy(parts[0].images[buf.kept[0][0]]))


def test_dq_replay_memory_is_the_dq_coreset_of_each_experience():
    from dqcl.data.domains import DOMAINS
    from dqcl.dq.selectors import select
    from dqcl.train.replay import DQBuffer
    from dqcl.dq.embedders import embed
    from dqcl.data.streams import make_benchmark, prepare

    parts = [prepare(DOMAINS.get(k).factory(seed=0, n_train=4, n_test=1, size=96), "train", 48, 24) for k in ("cyto", "histo")]
    bm = make_benchmark(parts, parts)
    buf = DQBuffer(0.2, variant="mmv", bins=3, embedder="stats")
    for exp in bm.train_stream:
        buf.post_adapt(None, exp)
    for kept, part in zip(buf.kept, parts):
        feats = embed("stats", part.images, part.targets[:, 0].astype(np.int32))
        assert kept.tolist() == select(feats, 0.2, 3, "mmv").tolist()
    assert len(buf.buffer) == sum(len(k) for k in buf.kept)


def test_gem_actually_projects_the_gradient(tmp_path, monkeypatch):
    """On the second domain GEM must meet gradients that oppose the first's memory and project them."""
    from avalanche.training.plugins import GEMPlugin

    calls = []
    real = GEMPlugin.solve_quadprog

    def spy(self, g):
        v = real(self, g)
        calls.append((g.clone(), v.clone().to(g.dtype), self.G.clone()))
        return v

    monkeypatch.setattr(GEMPlugin, "solve_quadprog", spy)
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(tiny_spec_text(tmp_path, "[strategies.gem]\npatterns_per_exp = 4\n"))
    (cfg,) = expand(load_spec(spec_path))
    run_one(cfg)
    assert calls, "GEM never projected a gradient"
    g, v, G = calls[0]
    assert (G @ g < 0).any()  # the conflict that called for a projection
    assert (G @ v >= -1e-3 * G.norm(dim=1) * v.norm()).all()  # afterwards no past domain's gradient is opposed
    assert not torch.allclose(g, v)


def test_lwf_penalty_is_zero_until_the_network_drifts(tmp_path):
    from dqcl.strategies.lwf import FlowDistillation

    class S:  # the few strategy fields the plugin reads
        pass

    torch.manual_seed(0)
    from dqcl.cpnet.model import CellposeNet

    net = CellposeNet((8, 16, 32, 64)).train()
    s = S()
    s.model, s.mb_x = net, torch.rand(2, 1, 32, 32)
    s.mb_output = net(s.mb_x)
    s.loss = torch.tensor(0.0)
    plugin = FlowDistillation(alpha=1.0)
    plugin.before_backward(s)
    assert float(s.loss) == 0.0  # no previous network yet
    plugin.after_training_exp(s)
    plugin.before_backward(s)
    assert abs(float(s.loss)) < 1e-6  # the network has not changed: nothing to pull back
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    s.mb_output = net(s.mb_x)
    plugin.before_backward(s)
    assert float(s.loss) > 0.0
