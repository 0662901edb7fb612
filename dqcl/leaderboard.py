"""Leaderboards from stored runs: markdown tables, CSV and JSON.

`entries` turns every stored run into one entry per metric (its R matrix, baseline row and
continual-learning summaries); `write_leaderboard` aggregates them over seeds (mean ± std,
with the number of seeds) into one table per (study, metric).
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .clmetrics import CL_METRICS, cl_metrics
from .metrics import METRICS
from .store import Store

__all__ = ["entries", "write_leaderboard", "LEGEND"]

LEGEND = """\
R[i][j] = score on domain j (training order) after experience i; T experiences; b[j] = score of the random-init network.

| column | formula |
| --- | --- |
| ACC | mean_j R[T-1][j] |
| BWT | mean_{j<T-1} (R[T-1][j] − R[j][j]) — negative = forgetting |
| Forgetting | mean_{j<T-1} (max_{j≤i<T-1} R[i][j] − R[T-1][j]) — max-based |
| FWT | mean_{j>0} (R[j-1][j] − b[j]) |
| Plasticity | mean_j R[j][j] |
| final: D | R[T-1][j] for domain D |

Cells are mean ± std over seeds (n = number of seeds). `joint` trains once on all domains, so it has only ACC and final scores.
"""

_HEADLINE = ("ap50", "iou", "pq", "aji", "dice", "precision", "recall", "accuracy", "ap75", "ap90")


def entries(store: Store, study: str | None = None) -> list[dict[str, Any]]:
    """One entry per (stored run, metric)."""
    out = []
    for run in store.runs(study):
        cfg, res = run["config"], run["result"]
        for metric in METRICS:
            R, base = res["R"][metric], res["baseline"][metric]
            out.append(
                {
                    "study": cfg["study"],
                    "strategy": cfg["strategy"]["label"],
                    "strategy_name": cfg["strategy"]["name"],
                    "params": cfg["strategy"]["params"],
                    "ordering": list(cfg["ordering"]),
                    "seed": cfg["seed"],
                    "metric": metric,
                    "R": R,
                    "baseline": base,
                    **cl_metrics(R, base),
                    "run": run["key"],
                    "train_s": float(sum(res["timings"]["train_s"])),
                    "total_s": float(res["timings"]["total_s"]),
                    "images_seen": res.get("images_seen"),
                    "device": res.get("device"),
                }
            )
    return out


def _cell(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f}"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _markdown(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in rows:
        groups[(e["study"], e["metric"], tuple(e["ordering"]), e["strategy"])].append(e)
    lines = ["# dqcl leaderboard", "", LEGEND]
    studies = sorted({e["study"] for e in rows})
    for study in studies:
        for metric in _HEADLINE:
            orderings = sorted({k[2] for k in groups if k[0] == study and k[1] == metric})
            if not orderings:
                continue
            lines += [f"## {study} — {metric}", ""]
            for order in orderings:
                table = []
                labels = sorted({k[3] for k in groups if k[:3] == (study, metric, order)})
                for label in labels:
                    es = groups[(study, metric, order, label)]
                    row = [label, len(es)] + [_cell([e[k] for e in es]) for k in CL_METRICS]
                    row += [_cell([e["R"][-1][j] for e in es]) for j in range(len(order))]
                    table.append(row)
                table.sort(key=lambda r: -float(r[2].split(" ")[0]) if r[2] != "—" else math.inf)
                headers = ["strategy", "n", "ACC", "BWT", "Forgetting", "FWT", "Plasticity"] + [f"final: {d}" for d in order]
                lines += [f"**{' → '.join(order)}**", "", tabulate(table, headers, tablefmt="github"), ""]
    return "\n".join(lines) + "\n"


def write_leaderboard(store: Store, out: str | Path, study: str | None = None) -> list[Path]:
    """Write leaderboard.md, leaderboard.csv and leaderboard.json into ``out``; returns their paths."""
    rows = entries(store, study)
    out = Path(out)
    paths = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.json"]
    _atomic_write(paths[0], _markdown(rows) if rows else "# dqcl leaderboard\n\nNo runs stored yet.\n")
    cols = ["study", "strategy", "strategy_name", "ordering", "seed", "metric", *CL_METRICS, "train_s", "total_s", "images_seen", "device", "run", "params", "baseline", "R"]
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for e in rows:
        w.writerow({**e, "ordering": ">".join(e["ordering"]), "params": json.dumps(e["params"]), "baseline": json.dumps(e["baseline"]), "R": json.dumps(e["R"])})
    _atomic_write(paths[1], buf.getvalue())
    _atomic_write(paths[2], json.dumps(rows, indent=1) + "\n")
    return paths
