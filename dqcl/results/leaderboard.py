"""Leaderboards from stored runs: markdown tables, CSV and JSON.

`entries` turns every stored run into one entry per metric (its R matrix, baseline row and
continual-learning summaries); `write_leaderboard` aggregates them over seeds (mean ± std,
with the number of seeds) into one table per (study, metric). The entries live in
`dqcl.results.entries`, the tables in `dqcl.results.tables`, the file formats in
`dqcl.results.formats`; this module writes the folder.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ..core.atomic import write_text
from .entries import _curve_runs, check_data, entries
from .formats import LEGEND, _csv, _latex, _markdown, _order_slugs, _slug, _write_html
from .store import Store
from .tables import _ranks  # noqa: F401  (tests import it from here)
from .tables import budget_labels

__all__ = ["entries", "write_leaderboard", "LEGEND"]


def write_leaderboard(store: Store, out: str | Path, *, study: str | None = None, cost: bool = False,
                      allow_mixed_data: bool = False) -> list[Path]:
    """Write leaderboard.md/.csv/.json/.tex and PNG plots into ``out``; returns their paths.

    Per (study, ordering) the figures are the R matrices, forgetting vs plasticity, replay rates
    (where swept), training curves and every seed's final ACC and first-domain forgetting
    (``<slug>_seeds_ap50.png``); in a study of several memory budgets a budgeted strategy's label
    carries its budget in every figure.

    ``cost`` adds wall time, images seen, peak memory and device columns to the Markdown tables
    (the CSV and JSON always have them)."""
    rows = entries(store, study)
    if not allow_mixed_data:
        check_data(rows)
    out = Path(out)
    paths = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.json", out / "leaderboard.tex"]
    _check_not_the_store(store.path, out)
    write_text(paths[0], _markdown(rows, cost) if rows else "# dqcl leaderboard\n\nNo runs stored yet.\n")
    write_text(paths[3], _latex(rows))
    write_text(paths[1], _csv(rows))
    write_text(paths[2], json.dumps(rows, indent=1) + "\n")
    from .plots import (forgetting_plasticity, heatmaps, replay_rate_curves, saturation_plot, seed_strips, summary_figure,
                        training_curves)

    images: dict[str, list[str]] = defaultdict(list)

    def keep(study_name: str, path: Path | None) -> None:
        if path is not None:
            paths.append(path)
            images[study_name].append(path.name)

    cl: dict[tuple, list] = defaultdict(list)
    continual = budget_labels([e for e in rows if e.get("selector") is None])  # a strategy at several budgets: one per budget
    for e in continual:
        if e["metric"] == "ap50":
            cl[(e["study"], tuple(e["ordering"]))].append(e)
    curves = budget_labels(_curve_runs(store, study))
    slugs = _order_slugs(continual)
    for (st, order), group in sorted(cl.items()):
        slug = slugs[(st, order)]
        keep(st, heatmaps(group, out / f"{slug}_R_ap50.png"))
        keep(st, forgetting_plasticity(group, out / f"{slug}_forgetting_plasticity_ap50.png"))
        keep(st, replay_rate_curves(group, out / f"{slug}_replay_rates_ap50.png"))
        keep(st, training_curves([c for c in curves if (c["study"], tuple(c["ordering"])) == (st, order)],
                                 out / f"{slug}_training_curves.png"))
        keep(st, seed_strips(group, out / f"{slug}_seeds_ap50.png"))
    for st in sorted({e["study"] for e in rows if e.get("selector") is not None}):
        mine = [e for e in rows if e["study"] == st]
        for metric in ("ap50", "iou", "pq"):
            keep(st, saturation_plot(mine, metric, out / f"{_slug(st)}_{metric}_saturation.png"))
    summary = summary_figure(continual, out / "summary_ap50.png")
    if summary is not None:
        paths.append(summary)
    paths.append(_write_html(rows, out, images, summary))
    return paths


def _check_not_the_store(store: Path, out: Path) -> None:
    """Refuse an ``out`` where a file the leaderboard writes (leaderboard.*, index.html, a PNG) would
    replace the store it is built from (a store named leaderboard.json, --out its folder)."""
    from ..errors import OutputError

    try:
        same = out.resolve() == store.resolve().parent
    except OSError:
        return
    name = store.resolve().name
    if same and (name in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "leaderboard.tex", "index.html")
                 or name.lower().endswith(".png")):
        raise OutputError(f"{out}: the leaderboard would write {name} over the results store it is built from "
                          f"({store}); give --out another folder")
