"""Leaderboards from stored runs: markdown tables, CSV and JSON.

`entries` turns every stored run into one entry per metric (its R matrix, baseline row and
continual-learning summaries); `write_leaderboard` aggregates them over seeds (mean ± std,
with the number of seeds) into one table per (study, metric).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import write_text
from ..evaluation.metrics import METRICS
from .cl_metrics import CL_METRICS, cl_metrics
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


def _latest(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each strategy x ordering x seed (x subset) of a study, its newest run: a study rerun
    after an upgrade or a change of its spec or data replaces what it ran before."""
    keep: dict[str, dict] = {}
    for run in runs:  # oldest first
        cfg = run["config"]
        sub = cfg.get("subset") or {}
        ident = [cfg["study"], cfg["strategy"]["label"], list(cfg["ordering"]), cfg["seed"], sub.get("selector"), sub.get("rate")]
        keep[json.dumps(ident)] = run
    return list(keep.values())


def entries(store: Store, study: str | None = None) -> list[dict[str, Any]]:
    """One entry per (stored run, metric); a run superseded by a newer run of the same cell is left out."""
    out = []
    for run in _latest(list(store.runs(study))):
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
                    "baseline": [None if v is None or math.isnan(v) else v for v in base],
                    **cl_metrics(R, base),
                    "run": run["key"],
                    "selector": (cfg.get("subset") or {}).get("selector"),
                    "rate": (cfg.get("subset") or {}).get("rate"),
                    "subset_size": (res.get("subset") or {}).get("size"),
                    "train_s": float(sum(res["timings"]["train_s"])),
                    "total_s": float(res["timings"]["total_s"]),
                    "images_seen": res.get("images_seen"),
                    "device": res.get("device"),
                    "peak_host_mb": (res.get("peak_memory_mb") or {}).get("host"),
                    "peak_gpu_mb": (res.get("peak_memory_mb") or {}).get("gpu"),
                    "attempts": res.get("attempts", 1),
                    "executor": res.get("executor", "local"),
                    "version": cfg.get("version"),
                    "commit": (res.get("versions") or {}).get("dqcl_commit"),
                    "data_manifests": dict(cfg.get("data_manifests") or []),
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


def _redundancy_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """One table per (study, metric): selectors x training-subset rates, score after training from scratch."""
    from tabulate import tabulate

    lines = []
    for study in sorted({e["study"] for e in rows}):
        mine = [e for e in rows if e["study"] == study]
        rates = sorted({e["rate"] for e in mine})
        for metric in ("ap50", "iou", "pq"):
            cells: dict[tuple, list[float]] = defaultdict(list)
            for e in mine:
                if e["metric"] == metric:
                    cells[(e["selector"], e["rate"])].append(e["R"][-1][0])
            table = []
            for sel in sorted({e["selector"] for e in mine if e["selector"] != "all"}):
                table.append([sel] + [_cell(cells.get((sel, r), [])) for r in rates if r < 1.0]
                             + [_cell(cells.get(("all", 1.0), []))])
            headers = ["selector"] + [f"{r * 100:g} %" for r in rates if r < 1.0] + ["100 %"]
            n = len({e["seed"] for e in mine})
            lines += [f"## {study} — {metric} (redundancy: {mine[0]['ordering'][0]} from scratch on subsets, n = {n} seeds)", "",
                      tabulate(table, headers, tablefmt="github"), "",
                      f"![saturation]({study}_{metric}_saturation.png)", ""]
    return lines


def _ranks(accs: dict[str, list[float]]) -> dict[str, str]:
    """Rank by mean ACC; a strategy gets a rank below the one above it only where their means differ
    by more than the sum of their standard deviations (over seeds). One seed: no spread, no ranks."""
    if any(len(v) < 2 for v in accs.values()):
        return {k: "—" for k in accs}
    stats = sorted(((float(np.mean(v)), float(np.std(v, ddof=1)), k) for k, v in accs.items()), reverse=True)
    out, rank = {}, 1
    for pos, (mean, std, label) in enumerate(stats):
        if pos and stats[pos - 1][0] - mean > stats[pos - 1][1] + std:
            rank = pos + 1
        out[label] = str(rank)
    return out


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _cost_cells(es: list[dict[str, Any]]) -> list[str]:
    """Wall time per run, training images seen, largest peak memory, devices."""
    wall, seen = _mean([e["total_s"] for e in es]), _mean([e["images_seen"] for e in es])
    peaks = [e.get("peak_gpu_mb") or e.get("peak_host_mb") for e in es]
    peak = max((p for p in peaks if p is not None), default=None)
    gpu = any(e.get("peak_gpu_mb") for e in es)
    return [
        "—" if wall is None else f"{wall:.0f}",
        "—" if seen is None else f"{seen:.0f}",
        "—" if peak is None else f"{peak:.0f} ({'GPU' if gpu else 'host'})",
        ", ".join(sorted({str(e.get("device")) for e in es})),
    ]


COST_HEADERS = ["wall s/run", "images seen", "peak MiB", "device"]


def _cl_tables(rows: list[dict[str, Any]], cost: bool = False) -> list[tuple[str, str, tuple[str, ...], list[str], list[list]]]:
    """(study, metric, ordering, headers, rows) for every continual table, best ACC first."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in rows:
        groups[(e["study"], e["metric"], tuple(e["ordering"]), e["strategy"])].append(e)
    out = []
    for study in sorted({e["study"] for e in rows}):
        for metric in _HEADLINE:
            for order in sorted({k[2] for k in groups if k[0] == study and k[1] == metric}):
                labels = sorted({k[3] for k in groups if k[:3] == (study, metric, order)})
                ranks = _ranks({lab: [e["acc"] for e in groups[(study, metric, order, lab)]] for lab in labels})
                table = []
                for label in labels:
                    es = groups[(study, metric, order, label)]
                    row = [ranks[label], label, len(es)] + [_cell([e[k] for e in es]) for k in CL_METRICS]
                    row += [_cell([e["R"][-1][j] for e in es]) for j in range(len(order))]
                    if cost:
                        row += _cost_cells(es)
                    table.append(row)
                table.sort(key=lambda r: -float(r[3].split(" ")[0]) if r[3] != "—" else math.inf)
                headers = ["rank", "strategy", "n", "ACC", "BWT", "Forgetting", "FWT", "Plasticity"] + [f"final: {d}" for d in order]
                headers += COST_HEADERS if cost else []
                out.append((study, metric, order, headers, table))
    return out


def _slug(study: str, order: tuple[str, ...]) -> str:
    return f"{study}_{'-'.join(order)}"


def _markdown(rows: list[dict[str, Any]], cost: bool = False) -> str:
    from tabulate import tabulate

    redundancy = [e for e in rows if e.get("selector") is not None]
    lines = ["# dqcl leaderboard", "", LEGEND]
    if cost:
        lines += ["Cost columns: mean wall time per run (data preparation, training and scoring), mean training "
                  "images seen per run (replayed samples count), the largest peak memory of any run (GPU "
                  "allocation where a GPU was used, else the process's resident set), and the devices.", ""]
    last = None
    for study, metric, order, headers, table in _cl_tables([e for e in rows if e.get("selector") is None], cost):
        if (study, metric) != last:
            lines += [f"## {study} — {metric}", ""]
            if last is None or last[0] != study:
                lines += [_provenance(rows, study), ""]
            last = (study, metric)
        lines += [f"**{' → '.join(order)}**", "", tabulate(table, headers, tablefmt="github"), ""]
        if metric == "ap50":
            slug = _slug(study, order)
            lines += [f"![R matrices]({slug}_R_ap50.png) ![forgetting vs plasticity]({slug}_forgetting_plasticity_ap50.png)", ""]
    if redundancy:
        lines += _redundancy_markdown(redundancy)
    return "\n".join(lines) + "\n"


def _latex(rows: list[dict[str, Any]]) -> str:
    def esc(x: Any) -> str:
        return str(x).replace("_", r"\_").replace("±", r"$\pm$").replace("—", "--").replace("→", r"$\to$")

    parts = ["% dqcl leaderboard: mean ± std over seeds; see leaderboard.md for the formulas"]
    for study, metric, order, headers, table in _cl_tables([e for e in rows if e.get("selector") is None]):
        if metric not in ("ap50", "iou"):
            continue
        parts += [
            r"\begin{table}[t]\centering\small",
            rf"\caption{{{esc(study)}: {esc(metric)}, {esc(' → '.join(order))}}}",
            r"\begin{tabular}{ll" + "r" * (len(headers) - 2) + "}",
            r"\toprule",
            " & ".join(esc(h) for h in headers) + r" \\",
            r"\midrule",
            *(" & ".join(esc(c) for c in r) + r" \\" for r in table),
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
            "",
        ]
    return "\n".join(parts) + "\n"


def check_data(rows: list[dict[str, Any]]) -> None:
    """Refuse tables that mix runs trained or scored on different data of the same domain."""
    from ..errors import DqclError

    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in rows:
        for domain, manifest in e.get("data_manifests", {}).items():
            seen[(e["study"], domain)].add(manifest)
    for (study, domain), manifests in sorted(seen.items()):
        if len(manifests) > 1:
            raise DqclError(
                f"study '{study}': its runs used different data for domain '{domain}' (manifests "
                f"{', '.join(sorted(manifests))}); rerun the older runs on the current data, give the new data "
                "another study name, or pass --allow-mixed-data"
            )


def _provenance(rows: list[dict[str, Any]], study: str) -> str:
    mine = [e for e in rows if e["study"] == study]
    data: dict[str, set[str]] = defaultdict(set)
    for e in mine:
        for domain, manifest in e.get("data_manifests", {}).items():
            data[domain].add(manifest)
    versions = sorted({f"{e.get('version')} ({(e.get('commit') or 'unknown')[:12]})" for e in mine})
    parts = [f"{d} `{' / '.join(sorted(m))}`" for d, m in sorted(data.items())]
    return f"Data: {'; '.join(parts) or 'not recorded'}. dqcl: {', '.join(versions)}."


def write_leaderboard(store: Store, out: str | Path, *, study: str | None = None, cost: bool = False,
                      allow_mixed_data: bool = False) -> list[Path]:
    """Write leaderboard.md/.csv/.json/.tex and PNG plots into ``out``; returns their paths.

    ``cost`` adds wall time, images seen, peak memory and device columns to the Markdown tables
    (the CSV and JSON always have them)."""
    rows = entries(store, study)
    if not allow_mixed_data:
        check_data(rows)
    out = Path(out)
    paths = [out / "leaderboard.md", out / "leaderboard.csv", out / "leaderboard.json", out / "leaderboard.tex"]
    write_text(paths[0], _markdown(rows, cost) if rows else "# dqcl leaderboard\n\nNo runs stored yet.\n")
    write_text(paths[3], _latex(rows))
    cols = ["study", "strategy", "strategy_name", "ordering", "seed", "metric", *CL_METRICS, "selector", "rate", "subset_size", "train_s", "total_s", "images_seen", "device", "peak_host_mb", "peak_gpu_mb", "attempts", "executor", "version", "commit", "data_manifests", "run", "params", "baseline", "R"]
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for e in rows:
        w.writerow({**e, "data_manifests": json.dumps(e.get("data_manifests", {})), "ordering": ">".join(e["ordering"]), "params": json.dumps(e["params"]), "baseline": json.dumps(e["baseline"]), "R": json.dumps(e["R"])})
    write_text(paths[1], buf.getvalue())
    write_text(paths[2], json.dumps(rows, indent=1) + "\n")
    from .plots import forgetting_plasticity, heatmaps, replay_rate_curves, saturation_plot

    cl: dict[tuple, list] = defaultdict(list)
    for e in rows:
        if e.get("selector") is None and e["metric"] == "ap50":
            cl[(e["study"], tuple(e["ordering"]))].append(e)
    for (st, order), group in sorted(cl.items()):
        slug = _slug(st, order)
        paths.append(heatmaps(group, out / f"{slug}_R_ap50.png"))
        paths.append(forgetting_plasticity(group, out / f"{slug}_forgetting_plasticity_ap50.png"))
        curves = replay_rate_curves(group, out / f"{slug}_replay_rates_ap50.png")
        if curves is not None:
            paths.append(curves)

    for study in sorted({e["study"] for e in rows if e.get("selector") is not None}):
        mine = [e for e in rows if e["study"] == study]
        for metric in ("ap50", "iou", "pq"):
            paths.append(saturation_plot(mine, metric, out / f"{study}_{metric}_saturation.png"))
    return paths
