"""The learning-rate schedule (issue 27): a warm-up, then constant, cosine or step decay over every
experience; the rates a run trains with, and a run resumed from its checkpoint that trains bit for bit
as the uninterrupted one."""

import json
import math

import pytest

from dqcl.checks import tiny_spec
from dqcl.train.plugins import schedule_factor

from conftest import resumed_after_a_kill


def test_the_factors():
    assert [schedule_factor("constant", t, 4, 20) for t in (0, 3, 10, 19)] == [0.25, 1.0, 1.0, 1.0]
    cosine = [schedule_factor("cosine", t, 4, 20) for t in range(20)]
    assert cosine[:4] == [0.25, 0.5, 0.75, 1.0] and cosine[4] == 1.0
    assert cosine[12] == pytest.approx(0.5 * (1 + math.cos(math.pi * 8 / 16)))
    assert all(a >= b for a, b in zip(cosine[4:], cosine[5:])) and cosine[-1] < 0.02
    assert [schedule_factor("step", t, 0, 20) for t in (0, 9, 10, 14, 15, 19)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def _cfg(tmp_path, schedule):
    from dqcl.config.expand import expand
    from dqcl.config.parse import parse_spec

    raw = tiny_spec("naive", tmp_path)
    raw["train"].update({"steps": 6, "warmup_steps": 2, "schedule": schedule, "lr": 0.05})
    (cfg,) = expand(parse_spec(json.loads(json.dumps(raw))))
    return cfg


class _Rates:
    """A probe: the learning rate of every step."""

    def __new__(cls):
        from avalanche.core import SupervisedPlugin

        class Probe(SupervisedPlugin):
            def __init__(self):
                super().__init__()
                self.rates = []

            def before_forward(self, strategy, **kwargs):
                self.rates.append(strategy.optimizer.param_groups[0]["lr"])

        return Probe()


def test_a_cosine_run_trains_with_the_scheduled_rates_and_resumes_bit_for_bit(tmp_path):
    from dqcl.train.run import run_one

    cfg = _cfg(tmp_path, "cosine")
    probe = _Rates()
    full = run_one(cfg, probes=(probe,))
    expected = [0.05 * schedule_factor("cosine", t, 2, 6) for t in range(6)]
    assert probe.rates == pytest.approx(expected * 2)  # every experience: the warm-up, then the cosine to near 0
    assert _cfg(tmp_path, "constant").key != cfg.key  # the schedule is part of the run's key

    path = tmp_path / "ck.pt"
    resumed = resumed_after_a_kill(cfg, path)
    assert resumed["resumed_from"] == 1
    assert resumed["R"] == full["R"] and resumed["model_sha256"] == full["model_sha256"]


def test_an_unknown_schedule_is_one_line(tmp_path, capsys):
    from dqcl.cli import main

    from conftest import tiny_spec_text

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n").replace("batch_size = 4", 'batch_size = 4\nschedule = "linear"'))
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.schedule must be one of constant, cosine, step" in err


def test_the_layout_fast_path_trains_channels_last_in_float32(tmp_path):
    """train.fast = "layout": the CPU's cheaper step (channels-last, no bf16), recorded, and a protocol of its own."""
    from dqcl.config.protocol import setting
    from dqcl.train.run import run_one

    cfg = _cfg(tmp_path, "constant")
    import dataclasses

    layout = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, fast="layout"))
    res = run_one(layout)
    assert res["fast_path"] == {"bf16_channels_last": False, "compile": False, "channels_last": True}
    assert setting({"train": {"fast": "layout"}}, res, "x")["train.fast"] == '"layout"'
    assert setting({"train": {"fast": "auto"}}, {"device": "cpu"}, "x")["train.fast"] == '"off"'
