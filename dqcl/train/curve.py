"""What a run leaves besides its scores: its training curve, Avalanche loggers, saved networks and
prediction panels (under ``runs/<key>/`` beside the store)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.logging import BaseLogger

from ..core.text import figure_text, plain_text_figures
from ..errors import OutputError

__all__ = ["TrainingCurve", "MetricsCSVLogger", "WandBOfflineLogger", "make_loggers", "write_panel"]


class TrainingCurve(SupervisedPlugin):
    """The training curve: per epoch of every experience, the mean training loss over its steps
    (penalties included), the learning rate at its end, and the images and steps so far.

    ``report`` (if given) gets each row as it is made: the progress bar shows it.
    """

    def __init__(self, report: Callable[[dict[str, Any]], None] | None = None) -> None:
        super().__init__()
        self.report = report
        self.rows: list[dict[str, Any]] = []
        self.images = 0
        self.steps = 0
        self.epoch = 0
        self._sum: torch.Tensor | float = 0.0
        self._n = 0

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.epoch = 0

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._sum, self._n = 0.0, 0

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self._sum = self._sum + strategy.loss.detach()  # summed on the device: one sync per epoch, not per step
        self._n += 1
        self.images += len(strategy.mb_x)
        self.steps += 1

    def after_training_epoch(self, strategy, **kwargs) -> None:
        if self._n == 0:
            return
        row = {
            "experience": int(strategy.clock.train_exp_counter), "epoch": self.epoch,
            "loss": float(self._sum) / self._n, "lr": float(strategy.optimizer.param_groups[0]["lr"]),
            "images": self.images, "steps": self.steps,
        }
        self.epoch += 1
        self.rows.append(row)
        if self.report is not None:
            self.report(row)


class MetricsCSVLogger(BaseLogger):
    """Every value Avalanche's evaluator emits, one row each: name, step, value.

    Avalanche's `CSVLogger` writes fixed classification columns (accuracy per class); a dense
    segmentation run emits its loss and score rows under their own names, so this one keeps
    whatever name comes.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if self._file.tell() == 0:
            self._writer.writerow(["name", "step", "value"])

    def log_single_metric(self, name, value, x_plot) -> None:
        if isinstance(value, (int, float, np.floating, np.integer)) or (torch.is_tensor(value) and value.numel() == 1):
            self._writer.writerow([name, int(x_plot), float(value)])
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class WandBOfflineLogger(BaseLogger):
    """Weights & Biases in offline mode: every scalar Avalanche's evaluator emits, under its own
    name, into ``FOLDER/wandb/offline-run-*`` (``wandb sync`` uploads it later; nothing leaves the
    machine while a study runs).

    Not Avalanche's `WandBLogger`: version 0.6 calls ``wandb.util.generate_id`` and checks
    values against ``wandb.viz``, which current wandb (0.31) no longer has, so it fails at the
    first run. Values are logged without W&B's ``step`` (it must only grow, and Avalanche's
    evaluation counters restart); Avalanche's own counter goes along as ``x_plot``.
    """

    def __init__(self, folder: Path, run_name: str) -> None:
        import secrets

        import wandb

        super().__init__()
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project="dqcl", name=run_name, dir=str(folder), mode="offline",
                              id=secrets.token_hex(4), save_code=False)

    def log_single_metric(self, name, value, x_plot) -> None:
        if isinstance(value, (int, float, np.floating, np.integer)) or (torch.is_tensor(value) and value.numel() == 1):
            self.run.log({name: float(value), "x_plot": int(x_plot)})

    def close(self) -> None:
        self.run.finish()


def make_loggers(log, folder: Path, run_name: str) -> list:
    """The Avalanche loggers a spec's ``[log]`` table asks for, writing under ``folder``."""
    loggers: list = []
    try:
        if log.tensorboard:
            from avalanche.logging import TensorboardLogger

            loggers.append(TensorboardLogger(tb_log_dir=str(folder / "tensorboard")))
        if log.csv:
            loggers.append(MetricsCSVLogger(folder / "metrics.csv"))
        if log.wandb:
            loggers.append(WandBOfflineLogger(folder, run_name))
    except OSError as err:  # before any training: the run stops with one line, nothing is lost
        for logger in loggers:
            close = getattr(logger, "close", None)
            if close:
                close()
        raise OutputError(f"{err.filename or folder}: cannot write the run's log files here ({err.strerror or err})") from None
    return loggers


@plain_text_figures
def write_panel(path: Path, tests: list, masks: dict[int, dict[int, list[np.ndarray]]], ordering: tuple[str, ...],
                scores: dict[int, dict[int, float]] | None = None) -> Path:
    """A PNG: for each test domain, a few patches as rows; columns: the image, the true outlines, and
    the predicted outlines after each experience (``masks[experience][domain]``), titled with AP@0.5.
    Domain names are drawn as plain text (no mathtext, no TeX), shortened."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    from ..core.atomic import save_figure

    experiences = sorted(masks)
    k = min(len(v) for e in experiences for v in masks[e].values())
    rows = [(j, i) for j in range(len(tests)) for i in range(k)]
    cols = 2 + len(experiences)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.9 * cols, 1.9 * len(rows)), squeeze=False)

    def show(ax, img, lab=None, colour=(1.0, 0.25, 0.1)):
        shown = (img - img.min()) / (np.ptp(img) + 1e-8)
        rgb = np.repeat(shown[..., None], 3, axis=-1)
        if lab is not None:
            rgb[find_boundaries(lab, mode="inner")] = colour
        ax.imshow(rgb)
        ax.axis("off")

    for r, (j, i) in enumerate(rows):
        img, true = tests[j].images[i, 0], tests[j].targets[i, 0].astype(np.int32)
        show(axes[r, 0], img)
        show(axes[r, 1], img, true, (0.1, 0.9, 0.2))
        axes[r, 0].set_title(figure_text(tests[j].domain), fontsize=7)
        axes[r, 1].set_title("true", fontsize=7)
        for c, e in enumerate(experiences):
            show(axes[r, 2 + c], img, masks[e][j][i])
            title = f"after {figure_text(ordering[e]) if e < len(ordering) else e}"
            if scores is not None and i == 0:
                title += f"\nAP50 {scores[e][j]:.2f}"
            axes[r, 2 + c].set_title(title, fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)
