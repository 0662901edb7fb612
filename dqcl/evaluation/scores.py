"""Scoring a network on a test stream: predicted flows -> Cellpose masks -> metrics.

`SegmentationScores` is an Avalanche `PluginMetric`: during ``strategy.eval(test_stream)``
it collects the network's outputs and the true labels (channel 0 of the targets), and
after each test experience turns the outputs into instance masks with
`dqcl.cpnet.masks.batch_masks` (Cellpose's `compute_masks`, for the whole batch at once) and
averages the per-patch scores.
"""

from __future__ import annotations

import numpy as np
import torch
from avalanche.evaluation import PluginMetric

from ..cpnet.masks import MaskSettings, batch_masks
from .metrics import mean_scores, score_masks

__all__ = ["SegmentationScores", "make_evaluator"]


class SegmentationScores(PluginMetric):
    """Per-test-experience mean of `dqcl.evaluation.metrics.METRICS`, kept in ``self.scores[exp_id]``."""

    chunk = 64  # patches turned into masks at once

    def __init__(self, settings: MaskSettings = MaskSettings(), keep: int = 0) -> None:
        super().__init__()
        self.settings = settings
        self.keep = keep  # predicted masks of the first `keep` patches of each test experience are kept (panels)
        self.kept: dict[int, list[np.ndarray]] = {}
        self.scores: dict[int, dict[str, float]] = {}
        self._outputs: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    # Avalanche PluginMetric protocol
    def reset(self) -> None:
        self._outputs, self._labels = [], []

    def result(self) -> dict[int, dict[str, float]]:
        return dict(self.scores)

    def before_eval_exp(self, strategy) -> None:
        self.reset()

    def after_eval_iteration(self, strategy) -> None:
        self._outputs.append(strategy.mb_output.detach().float().cpu())
        self._labels.append(strategy.mb_y[:, 0].detach().cpu())

    def after_eval_exp(self, strategy):
        from avalanche.evaluation.metric_results import MetricValue

        outputs = torch.cat(self._outputs).numpy()
        labels = torch.cat(self._labels).numpy().astype(np.int32)
        device = strategy.device if torch.device(strategy.device).type == "cuda" else "cpu"
        per_patch = []
        for a in range(0, len(outputs), self.chunk):
            masks = batch_masks(outputs[a : a + self.chunk], self.settings, device)
            per_patch += [score_masks(lab, mask.astype(np.int32)) for lab, mask in zip(labels[a : a + self.chunk], masks)]
            if a == 0 and self.keep:
                self.kept[strategy.experience.current_experience] = [m.astype(np.int32) for m in masks[: self.keep]]
        exp_id = strategy.experience.current_experience
        self.scores[exp_id] = mean_scores(per_patch)
        self.reset()
        step = strategy.clock.train_iterations
        return [MetricValue(self, f"seg/{k}/exp{exp_id:03d}", v, step) for k, v in self.scores[exp_id].items()]


def make_evaluator(scores: SegmentationScores, loggers: list | tuple = ()):
    """An `EvaluationPlugin` with our scores (and, where loggers are given, Avalanche's loss metrics
    for them to log); never Avalanche's default evaluator, whose accuracy assumes classes."""
    from avalanche.evaluation.metrics import loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    if not loggers:
        return EvaluationPlugin(scores, loggers=[])
    return EvaluationPlugin(scores, loss_metrics(epoch=True, experience=True), loggers=list(loggers))
