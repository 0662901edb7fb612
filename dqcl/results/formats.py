"""The leaderboard's files: Markdown, LaTeX, CSV and index.html, and the figures' file names.

Each writer shows a name from the store as literal text of its format (`markdown_text`,
`tex_text`, `csv_cell`, the HTML page's own escaping); a figure's file name comes from
`safe_stem`, so that no name can lead a file outside the output folder.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..core.atomic import write_text
from ..core.text import csv_cell, markdown_text, safe_stem, tex_text
from .cl_metrics import CL_METRICS
from .claims import claims_markdown
from .tables import _SWAP_HEADERS, _cell, _cl_tables, _health_lines, _provenance, _shown, _split_rows

__all__ = ["LEGEND"]

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

Cells are mean ± std over seeds (ddof = 1; n = number of seeds) and, where marked, the 95 % Student-t interval
over seeds. `ACC − naive` is the difference to naive fine-tuning paired by seed (same initial network and batch
order), with its 95 % interval; "better"/"worse" is printed only where that interval excludes 0. A strategy ranks
below the one above it only where their paired ACC difference's interval lies above 0; otherwise they share the
rank. `joint` trains once on all domains, so it has only ACC and final scores.
"""


def _md(name: Any) -> str:
    """A name in leaderboard.md: shortened, then literal Markdown."""
    return markdown_text(_shown(name))


def _slug(study: str, order: tuple[str, ...] = ()) -> str:
    """A file-name stem for a study (and ordering), see `safe_stem`: a name can never lead a file
    outside the output folder."""
    return safe_stem(f"{study}_{'-'.join(order)}" if order else study)


def _order_slugs(rows: list[dict[str, Any]]) -> dict[tuple[str, tuple[str, ...]], str]:
    """The figure stem of each (study, ordering) of ``rows``: `_slug`'s, except where two share one
    (study 'a_b' over c, d and study 'a' over b_c, d are both 'a_b_c-d'): then each of those gets a
    hash of its study and ordering, so that neither's figures replace the other's."""
    import hashlib

    by: dict[str, set[tuple[str, tuple[str, ...]]]] = defaultdict(set)
    for e in rows:
        pair = (e["study"], tuple(e["ordering"]))
        by[_slug(*pair)].add(pair)
    out = {}
    for slug, pairs in by.items():
        for pair in pairs:
            tag = hashlib.sha256(json.dumps(pair, ensure_ascii=True).encode()).hexdigest()[:12]
            out[pair] = slug if len(pairs) == 1 else f"{slug}_{tag}"
    return out


def _redundancy_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """One table per (study, metric): selectors x training-subset rates, score after training from scratch.
    Study, selector and domain names are escaped for Markdown."""
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
                table.append([_md(sel)] + [_cell(cells.get((sel, r), [])) for r in rates if r < 1.0]
                             + [_cell(cells.get(("all", 1.0), []))])
            headers = ["selector"] + [f"{r * 100:g} %" for r in rates if r < 1.0] + ["100 %"]
            n = len({e["seed"] for e in mine})
            lines += [f"## {_md(study)} — {metric} (redundancy: {_md(mine[0]['ordering'][0])} from scratch on subsets, n = {n} seeds)", "",
                      tabulate(table, headers, tablefmt="github", disable_numparse=[0]), "",
                      f"![saturation]({_slug(study)}_{metric}_saturation.png)", ""]
    return lines


def _split_table(rows: list[dict[str, Any]], study: str, metric: str = "ap50") -> list[str]:
    from tabulate import tabulate

    table = _split_rows(rows, study, metric, _md)
    if not table:
        return []
    return [f"**Weights or statistics? ({metric})** Earlier domains scored by the network right after learning them "
            "(old weights, old BatchNorm statistics), at the end (new, new), and with the two swapped: where "
            "the final weights with the old statistics score high, the statistics carry the forgetting; where "
            "the old weights with the final statistics score low, the statistics alone destroy the domain.", "",
            tabulate(table, _SWAP_HEADERS, tablefmt="github", disable_numparse=[0, 1]), ""]


def _health(rows: list[dict[str, Any]], study: str) -> list[str]:
    flags = _health_lines(rows, study, _md)
    if not flags:
        return ["Health: no flag (every run learned each domain it trained on; no strategy equals naive; "
                "joint is not below cumulative or naive; seeds agree in sign).", ""]
    return ["Health flags (see `dqcl.results.health` for what each means):", ""] + [f"- {f}" for f in flags] + [""]


def _markdown(rows: list[dict[str, Any]], cost: bool = False) -> str:
    from tabulate import tabulate

    redundancy = [e for e in rows if e.get("selector") is not None]
    continual = [e for e in rows if e.get("selector") is None]
    lines = ["# dqcl leaderboard", "", LEGEND]
    if cost:
        lines += ["Cost columns: mean wall time per run (data preparation, training and scoring), mean training "
                  "images seen per run (the training batches: replayed samples mixed into the data count, DER++'s, A-GEM's and "
                  "GEM's extra memory passes do not), the largest peak memory of any run (GPU "
                  "allocation where a GPU was used, else the process's resident set), and the devices.", ""]
    lines += claims_markdown(rows)
    last = None
    slugs = _order_slugs(continual)
    for study, metric, order, headers, table in _cl_tables(continual, cost, name=_md):
        if last is None or last[0] != study:
            if last is not None:
                lines += _split_table(continual, last[0]) + _health(continual, last[0])
            lines += [f"## {_md(study)}", "", _provenance(rows, study, _md), ""]
        if (study, metric) != last:
            lines += [f"### {_md(study)} — {metric}", ""]
            last = (study, metric)
        lines += [f"**{' → '.join(_md(d) for d in order)}**", "",
                  tabulate(table, headers, tablefmt="github", disable_numparse=[1]), ""]
        if metric == "ap50":
            slug = slugs[(study, tuple(order))]
            lines += [f"![R matrices]({slug}_R_ap50.png) ![forgetting vs plasticity]({slug}_forgetting_plasticity_ap50.png) "
                      f"![training curves]({slug}_training_curves.png)", ""]
    if last is not None:
        lines += _split_table(continual, last[0]) + _health(continual, last[0])
    if redundancy:
        lines += _redundancy_markdown(redundancy)
    return "\n".join(lines) + "\n"


def _latex(rows: list[dict[str, Any]]) -> str:
    """The ap50 and IoU tables as LaTeX; every cell, header and caption is literal text (`tex_text`)."""
    esc = tex_text

    parts = ["% dqcl leaderboard: mean ± std over seeds; see leaderboard.md for the formulas"]
    for study, metric, order, headers, table in _cl_tables([e for e in rows if e.get("selector") is None]):
        if metric not in ("ap50", "iou"):
            continue
        parts += [
            r"\begin{table}[t]\centering\small",
            rf"\caption{{{esc(_shown(study))}: {esc(metric)}, {esc(' → '.join(_shown(d) for d in order))}}}",
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


def _csv(rows: list[dict[str, Any]]) -> str:
    """Every entry as a CSV row; lists and dicts as JSON, names whole, no cell read as a formula (`csv_cell`)."""
    cols = ["study", "strategy", "strategy_name", "ordering", "seed", "metric", *CL_METRICS, "selector", "rate", "subset_size", "train_s", "total_s", "images_seen", "device", "peak_host_mb", "peak_gpu_mb", "attempts", "executor", "version", "commit", "data_manifests", "before", "new_weights_old_stats", "old_weights_new_stats", "after", "model_sha256", "run", "params", "baseline", "R"]
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for e in rows:
        cells = {**e, "data_manifests": json.dumps(e.get("data_manifests", {})), "ordering": ">".join(e["ordering"]), "params": json.dumps(e["params"]), "baseline": json.dumps(e["baseline"]), "R": json.dumps(e["R"])}
        w.writerow({k: csv_cell(v) for k, v in cells.items()})  # names whole, but never a formula
    return buf.getvalue()


def _write_html(rows: list[dict[str, Any]], out: Path, images: dict[str, list[str]], summary: Path | None) -> Path:
    from .claims import claims
    from .html import index_html

    continual = [e for e in rows if e.get("selector") is None]
    studies = sorted({e["study"] for e in rows})
    splits = {st: (_SWAP_HEADERS, t) for st in studies if (t := _split_rows(continual, st))}
    page = index_html(
        studies, {st: _provenance(rows, st) for st in studies}, _cl_tables(continual), claims(rows),
        {st: _health_lines(continual, st) for st in studies}, splits, images,
        summary.name if summary is not None else None, LEGEND,
    )
    path = out / "index.html"
    write_text(path, page)
    return path
