"""The fast path (channels-last + bf16 autocast) trains like the plain float32 path."""

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin

from dqcl.data.domains import DOMAINS
from dqcl.evaluation.scores import SegmentationScores, make_evaluator
from dqcl.train.fast import FastPath, fast_enabled
from dqcl.cpnet.model import CellposeNet, cellpose_loss
from dqcl.train.plugins import Augment
from dqcl.train.strategy import Base, build_strategy
from dqcl.data.streams import make_benchmark, prepare


class Losses(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.values = []

    def after_training_iteration(self, strategy, **kwargs):
        self.values.append(float(strategy.loss))


def _curve(data, fast: bool, epochs: int = 6) -> tuple[list[float], torch.dtype]:
    torch.manual_seed(0)
    model = CellposeNet((8, 16, 32, 64))
    losses = Losses()
    dtypes = []

    class Dtype(SupervisedPlugin):
        def after_forward(self, strategy, **kwargs):
            dtypes.append(strategy.mb_output.dtype)

    plugins = [Augment(0)] + ([FastPath(torch.device("cpu"))] if fast else []) + [losses, Dtype()]
    base = Base(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), cellpose_loss, 8, epochs, 32,
                torch.device("cpu"), make_evaluator(SegmentationScores()), plugins=plugins)
    strategy = build_strategy("naive", base, {})
    strategy.train(make_benchmark([data], [data]).train_stream[0])
    return losses.values, dtypes[-1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    dom = DOMAINS.get("nuclei").factory(seed=0, n_train=4, n_test=1, size=96)
    return prepare(dom, "train", 48, 48, cache_dir=tmp_path_factory.mktemp("c"))


def test_fast_and_plain_loss_curves_agree(data):
    plain, plain_dtype = _curve(data, fast=False)
    fast, fast_dtype = _curve(data, fast=True)
    assert plain_dtype == fast_dtype == torch.float32  # outputs leave the forward pass as float32 either way
    assert len(plain) == len(fast)
    assert np.mean(plain[-3:]) < 0.8 * np.mean(plain[:3])  # the task is learnt at all
    # bf16 rounding makes the paths drift apart slowly; they must still descend together
    rel = np.abs(np.array(fast) - np.array(plain)) / np.array(plain)
    assert rel[:3].max() < 0.05 and np.median(rel) < 0.1
    assert abs(np.mean(fast[-3:]) - np.mean(plain[-3:])) < 0.1 * np.mean(plain[-3:])


def test_fast_path_runs_with_channels_last_batches(data):
    seen = []

    class Layout(SupervisedPlugin):
        def before_forward(self, strategy, **kwargs):
            seen.append(strategy.mbatch[0].is_contiguous(memory_format=torch.channels_last))

    model = CellposeNet((8, 16, 32, 64))
    base = Base(model, torch.optim.SGD(model.parameters(), lr=0.01), cellpose_loss, 8, 1, 32, torch.device("cpu"),
                make_evaluator(SegmentationScores()), plugins=[FastPath(torch.device("cpu")), Layout()])
    build_strategy("naive", base, {}).train(make_benchmark([data], [data]).train_stream[0])
    assert seen and all(seen)


def test_auto_turns_the_fast_path_on_for_gpus_only():
    assert fast_enabled("auto", torch.device("cuda")) and not fast_enabled("auto", torch.device("cpu"))
    assert fast_enabled("on", torch.device("cpu")) and not fast_enabled("off", torch.device("cuda"))


def test_unknown_fast_setting_is_refused():
    from dqcl.checks import tiny_spec
    from dqcl.errors import SpecError
    from dqcl.config.parse import parse_spec

    raw = tiny_spec("naive", "/tmp")
    raw["train"]["fast"] = "turbo"
    with pytest.raises(SpecError, match="train.fast must be 'auto', 'on', 'off' or 'layout', got 'turbo'"):
        parse_spec(raw, "s.toml")
