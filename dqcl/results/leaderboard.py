"""Leaderboards from stored runs: markdown tables, CSV and JSON.

`entries` turns every stored run into one entry per metric (its R matrix, baseline row and
continual-learning summaries); `write_leaderboard` aggregates them over seeds (mean ± std,
with the number of seeds) into one table per (study, metric). The entries live in
`dqcl.results.entries`, the tables in `dqcl.results.tables`, the file formats in
`dqcl.results.formats`; this module writes the folder.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Callable

from ..core.atomic import write_text
from ..core.outputs import FIGURE, FOLDER, Kind, check_output, starts_with
from .entries import cells, curve_runs, entries, rows_of
from .formats import LEGEND, group_figure_name, _csv, _latex, _markdown, _order_slugs, _slug, _write_html
from .store import Store
from .tables import ranked_blocks
from .tables import _ranks  # noqa: F401  (tests import it from here)

__all__ = ["entries", "write_leaderboard", "LEGEND"]


def write_leaderboard(store: Store, out: str | Path, *, study: str | None = None, cost: bool = False,
                      split_protocols: bool = False, tuned: tuple[Path, ...] = ()) -> list[Path]:
    """Write leaderboard.md/.csv/.json/.tex and PNG plots into ``out``; returns their paths.

    Per (study, ordering) the figures are the R matrices, forgetting vs plasticity, replay rates
    (where swept), training curves and every seed's final ACC and first-domain forgetting
    (``<slug>_seeds_ap50.png``); in a study of several memory budgets a budgeted strategy's label
    carries its budget in every figure.

    ``cost`` adds wall time, images seen, peak memory and device columns to the Markdown tables
    (the CSV and JSON always have them).

    A study whose runs differ in their setting (`dqcl.config.protocol`) is refused with a
    `ProtocolError`, or, with ``split_protocols``, shown as one study per setting. A run that broke
    its protocol (`dqcl.results.invariants`) is in no table, figure, CSV or JSON row and no claim:
    its study's health lines name it and say why.

    ``tuned``: `dqcl tune` result files whose grids (every trial, the chosen values marked) the Markdown and
    the page show; each must be the file some stored run took its values from (`dqcl.results.tuning`)."""
    runs = cells(list(store.runs(study)), split_protocols)
    every = rows_of(runs)
    rows = [e for e in every if not e["broken"]]
    set_aside = [e for e in every if e["broken"] and e["metric"] == "ap50"]
    from .tuning import read_trials

    trials = [read_trials(path, rows) for path in tuned]  # checked before anything is written
    out = Path(out)
    paths = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.json", out / "leaderboard.tex"]
    from .plots import (budget_curves, distance_curves, forgetting_plasticity, group_figure, heatmaps, replay_rate_curves,
                        saturation_plot, seed_strips, summary_figure, training_curves)

    cl: dict[tuple, list] = defaultdict(list)
    continual = [e for e in rows if e.get("selector") is None]  # labels are unique per arm (entries.cells)
    for e in continual:
        if e["metric"] == "ap50":
            cl[(e["study"], tuple(e["ordering"]))].append(e)
    curves = curve_runs(runs)
    slugs = _order_slugs(continual)
    # every figure (study, path, how to draw it), named before any file is written, so all are checked first
    figures: list[tuple[str | None, Path, Callable[[Path], Path | None]]] = []
    for (st, order), group in sorted(cl.items()):
        slug = slugs[(st, order)]
        mine_curves = [c for c in curves if (c["study"], tuple(c["ordering"])) == (st, order)]
        figures += [(st, out / f"{slug}_R_ap50.png", partial(heatmaps, group)),
                    (st, out / f"{slug}_forgetting_plasticity_ap50.png", partial(forgetting_plasticity, group)),
                    (st, out / f"{slug}_replay_rates_ap50.png", partial(replay_rate_curves, group)),
                    (st, out / f"{slug}_training_curves.png", partial(training_curves, mine_curves)),
                    (st, out / f"{slug}_seeds_ap50.png", partial(seed_strips, group)),
                    # where the study ran several memory budgets: ACC against memory and against compute, with the Pareto front
                    (st, out / f"{slug}_memory_ap50.png", partial(budget_curves, group, cost="memory")),
                    (st, out / f"{slug}_compute_ap50.png", partial(budget_curves, group, cost="compute"))]
    # the groups of each ranked block (one per memory budget where the study ran several)
    blocks = [(st, order, block) for st, _, order, _, _, block in ranked_blocks(continual, ("ap50",))]
    for st, order, block in blocks:
        same = [b for b in blocks if b[:2] == (st, order)]
        k = next(i for i, b in enumerate(same) if b[2] is block)
        figures.append((st, out / group_figure_name(slugs[(st, order)], k, len(same)),
                        partial(group_figure, [e for es in block.values() for e in es], title=f"{st}, {' → '.join(order)}")))
    for st in sorted({e["study"] for e in continual}):  # forgetting against distance, where streams have 3+ domains
        figures.append((st, out / f"{_slug(st)}_forgetting_distance_ap50.png",
                        partial(distance_curves, [e for e in continual if e["study"] == st and e["metric"] == "ap50"])))
    for st in sorted({e["study"] for e in rows if e.get("selector") is not None}):
        mine = [e for e in rows if e["study"] == st]
        figures += [(st, out / f"{_slug(st)}_{metric}_saturation.png", partial(saturation_plot, mine, metric))
                    for metric in ("ap50", "iou", "pq")]
    figures.append((None, out / "summary_ap50.png", partial(summary_figure, continual)))
    _check_outputs(store.path, out, [*paths, out / "index.html", *(path for _, path, _ in figures)])

    write_text(paths[0], _markdown(rows, cost, set_aside, trials) if rows or set_aside else "# dqcl leaderboard\n\nNo runs stored yet.\n")
    write_text(paths[3], _latex(rows))
    write_text(paths[1], _csv(rows))
    write_text(paths[2], json.dumps(rows, indent=1) + "\n")
    images: dict[str, list[str]] = defaultdict(list)
    summary = None
    for st, path, draw in figures:
        drawn = draw(path)
        if drawn is None:
            continue
        paths.append(drawn)
        if st is None:
            summary = drawn
        else:
            images[st].append(drawn.name)
    paths.append(_write_html(rows, out, images, summary, set_aside, trials))
    return paths


# how each file the leaderboard writes has always begun: an existing file that does not is not
# dqcl's, and is not replaced (the rules: dqcl.core.outputs)
_OWN = {
    "leaderboard.md": Kind("a leaderboard.md dqcl wrote", starts_with(b"# dqcl leaderboard")),
    "leaderboard.tex": Kind("a leaderboard.tex dqcl wrote", starts_with(b"% dqcl leaderboard")),
    "leaderboard.csv": Kind("a leaderboard.csv dqcl wrote", starts_with(b"study,strategy,")),
    "leaderboard.json": Kind("a leaderboard.json dqcl wrote", starts_with(b"[]", b'[\n {\n  "study": ')),
    "index.html": Kind("an index.html dqcl wrote", starts_with(b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>dqcl leaderboard</title>")),
}


def _check_outputs(store: Path, out: Path, files: list[Path]) -> None:
    """Refuse, before anything is written, an ``out`` that is not a folder, or a file of the
    leaderboard that would replace the store it is built from (a store named leaderboard.json,
    --out its folder) or a file dqcl did not write there (`dqcl.core.outputs.check_output`)."""
    check_output(out, FOLDER, reading=[(store, "the results store it is built from")])
    named = Path(os.path.realpath(store))
    if named.parent == Path(os.path.realpath(out)) and (named.name in _OWN or named.name.lower().endswith(".png")):
        files = [*files, out / named.name]  # a store named like a leaderboard file: a later build (another study's figures) would hit it
    for path in files:
        check_output(path, _OWN.get(path.name, FIGURE), reading=[(store, "the results store it is built from")])
