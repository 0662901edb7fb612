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
from .summary import results_in_words
from .tables import _SWAP_HEADERS, MEMORY_HEADERS, _cell, _cl_tables, _health_lines, _provenance, _shown, _split_rows

__all__ = ["LEGEND", "MEMORY_LEGEND"]

LEGEND = """\
R[i][j] = score on domain j (training order) after experience i; T experiences; b[j] = score of the random-init network.

| column | formula |
| --- | --- |
| ACC | mean_j R[T-1][j] |
| BWT | mean_{j<T-1} (R[T-1][j] − R[j][j]) — negative = forgetting |
| Forgetting | mean_{j<T-1} (max_{j≤i<T-1} R[i][j] − R[T-1][j]) — max-based |
| FWT | mean_{j>0} (R[j-1][j] − b[j]) |
| Plasticity | mean_j R[j][j] |
| Avg inc. ACC | mean_i (mean_{j≤i} R[i][j]) — the mean score on the domains seen so far, after every experience |
| Intransigence | mean_j (J[j] − R[j][j]), J = joint training's final scores (same ordering and seed) — the shortfall of learning in the stream |
| final: D | R[T-1][j] for domain D |

Cells are mean ± std over seeds (ddof = 1; n = number of seeds) and, where marked, the 95 % Student-t interval
over seeds. `ACC − naive` is the difference to naive fine-tuning paired by seed (same initial network, batch
order and, with per-seed data, images). Every pair of strategies in a table (block) is compared on the seeds
both ran, and the p-values are Holm-adjusted over the block's pairs (`dqcl.results.compare`): `group` is a
compact letter display — strategies that share a letter are not told apart, and two that share none differ
(Holm-adjusted paired t-test, p < 0.05); `mean rank` is the rank averaged over the seeds every strategy of the
block ran. `ACC − naive` shows the interval at the level Holm used for that pair (it excludes 0 exactly where
"better"/"worse" is printed) and the Holm-adjusted exact sign-flip p-value, a check that does not lean on
normality ("t only": the t-test tells the two apart and the sign-flip test does not; with n seeds its p-value
cannot go below 2 / 2^n before adjustment). `n` "3 of 10": compared on its 3 seeds. A strategy with fewer than
two seeds has no group (—).
`joint` trains once on all domains, so it has only ACC and final scores.
"""

MEMORY_LEGEND = """\
Where the runs recorded them: `memory (patches)` is the most patches of earlier domains a strategy held (over its
seeds; "all" where it keeps every patch, and for joint, which trains on every domain at once; — where it keeps
none) and `samples/step` the mean samples backpropagated per optimiser step. A study whose rehearsal strategies
ran at several memory budgets has one table per budget, ranked on its own, each with the strategies that keep
no bounded memory (no budget changes their runs).
"""


def _legend(continual: list[dict[str, Any]]) -> str:
    """The legend, with the memory columns and budget blocks explained where some run recorded a
    memory, its samples per step or a budget."""
    recorded = any(k in e for e in continual for k in ("memory_held", "samples_per_step", "memory"))
    return LEGEND + ("\n" + MEMORY_LEGEND if recorded else "")


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


def _orders(rows: list[dict[str, Any]], study: str) -> list[str]:
    """The order-sensitivity table of a study that ran several orderings of one set of domains (`dqcl.results.orders`)."""
    from tabulate import tabulate

    from .orders import order_table

    found = order_table(rows, study, name=_md)
    if found is None:
        return []
    headers, table = found
    return ["**Order sensitivity (ap50)**: final ACC over the orders (each order's mean over its seeds; interval over "
            "the orders), its spread across orders against the spread across seeds within an order, the forgetting of the "
            "domain trained at each position, and the first domain that gives the best final ACC.", "",
            tabulate(table, headers, tablefmt="github", disable_numparse=True), ""]


def _health(rows: list[dict[str, Any]], study: str, set_aside: list[dict[str, Any]] = ()) -> list[str]:
    flags = _health_lines(rows, study, _md, set_aside)
    if not flags:
        return ["Health: no flag (every run learned each domain it trained on; no strategy equals naive; "
                "joint is not below cumulative or naive; seeds agree in sign).", ""]
    return ["Health flags (see `dqcl.results.health` for what each means):", ""] + [f"- {f}" for f in flags] + [""]


def group_figure_name(slug: str, k: int, blocks: int) -> str:
    """The file of the groups figure of the ``k``-th of ``blocks`` ranked blocks of one (study, ordering)."""
    return f"{slug}_groups_ap50.png" if blocks == 1 else f"{slug}_groups_ap50_block{k + 1}.png"


def _markdown(rows: list[dict[str, Any]], cost: bool = False, set_aside: list[dict[str, Any]] = (),
              trials: list[dict[str, Any]] = ()) -> str:
    """The leaderboard.md of ``rows`` (entries of runs that kept their protocol); the runs ``set_aside``
    (broke it) are listed in their study's health lines, in no table."""
    from tabulate import tabulate

    redundancy = [e for e in rows if e.get("selector") is not None]
    continual = [e for e in rows if e.get("selector") is None]
    lines = ["# dqcl leaderboard", "", _legend(continual)]
    if cost:
        lines += ["Cost columns: mean wall time per run (data preparation, training and scoring), mean training "
                  "images seen per run (the training batches: replayed samples mixed into the data count, DER++'s, A-GEM's and "
                  "GEM's extra memory passes do not), the largest peak memory of any run (GPU "
                  "allocation where a GPU was used, else the process's resident set), and the devices.", ""]
    lines += claims_markdown(rows)
    words = results_in_words(rows, name=_md)
    if words:
        lines += ["## Results in words", "",
                  "Generated from the tables below (`dqcl.results.summary`): per ranked block (ap50), what the Holm-adjusted "
                  "all-pairs comparison tells apart, then each claim's outcome.", "", *words, ""]
    lines += _tuning_markdown(continual, trials)
    last = None
    slugs = _order_slugs(continual)
    tables = _cl_tables(continual, cost, name=_md)
    for i, (study, metric, order, block, headers, table) in enumerate(tables):
        if last is None or last[0] != study:
            if last is not None:
                lines += _orders(continual, last[0]) + _split_table(continual, last[0]) + _health(continual, last[0], set_aside)
            lines += [f"## {_md(study)}", "", _provenance(rows, study, _md), ""]
        if (study, metric) != last:
            lines += [f"### {_md(study)} — {metric}", ""]
            last = (study, metric)
        title = " → ".join(_md(d) for d in order) + (f" — {_md(block)}" if block else "")
        as_text = [1] + [i for i, h in enumerate(headers) if h in MEMORY_HEADERS]  # "8.0" samples per step stays "8.0"
        lines += [f"**{title}**", "", tabulate(table, headers, tablefmt="github", disable_numparse=as_text), ""]
        if metric == "ap50":
            same = [t for t in tables if t[:3] == (study, metric, order)]
            k = sum(1 for t in tables[:i] if t[:3] == (study, metric, order))
            lines += [f"![groups]({group_figure_name(slugs[(study, tuple(order))], k, len(same))})", ""]
        if metric == "ap50" and tables[i + 1:i + 2] != [] and tables[i + 1][:3] == (study, metric, order):
            continue  # another block of this ordering follows: its figures come after the last one
        if metric == "ap50":
            slug = slugs[(study, tuple(order))]
            from .plots import has_budget_curves

            budgets = has_budget_curves([e for e in continual if e["study"] == study and e["metric"] == "ap50"
                                         and tuple(e["ordering"]) == tuple(order)])
            lines += [f"![R matrices]({slug}_R_ap50.png) ![forgetting vs plasticity]({slug}_forgetting_plasticity_ap50.png) "
                      f"![training curves]({slug}_training_curves.png) ![seeds]({slug}_seeds_ap50.png)"
                      + (f" ![ACC against memory]({slug}_memory_ap50.png) ![ACC against compute]({slug}_compute_ap50.png)"
                         if budgets else ""), ""]
    if last is not None:
        lines += _orders(continual, last[0]) + _split_table(continual, last[0]) + _health(continual, last[0], set_aside)
    if redundancy:
        lines += _redundancy_markdown(redundancy)
    return "\n".join(lines) + "\n"


def _tuning_markdown(continual: list[dict[str, Any]], trials: list[dict[str, Any]] = ()) -> list[str]:
    from tabulate import tabulate

    from .tuning import trial_section, tuning_table

    lines = []
    got = tuning_table(continual, name=_md)
    if got is not None:
        headers, table = got
        lines += ["## Tuned beside untuned (ap50)", "",
                  "Each strategy some study ran at values `dqcl tune` chose, beside its untuned cells at the same ordering and "
                  "memory budget (`dqcl.results.tuning`). Rows of different protocols stand side by side and are never pooled: "
                  "a gap between them is the tuning and the protocol together.", "",
                  tabulate(table, headers, tablefmt="github", disable_numparse=True), ""]
    for tuning in trials:
        title, how, headers, table = trial_section(tuning, name=_md)
        lines += [f"## {title}", "", how, "", tabulate(table, headers, tablefmt="github", disable_numparse=True), ""]
    return lines


def _latex(rows: list[dict[str, Any]]) -> str:
    """The ap50 and IoU tables as LaTeX; every cell, header and caption is literal text (`tex_text`)."""
    esc = tex_text

    parts = ["% dqcl leaderboard: mean ± std over seeds; see leaderboard.md for the formulas"]
    for study, metric, order, block, headers, table in _cl_tables([e for e in rows if e.get("selector") is None]):
        if metric not in ("ap50", "iou"):
            continue
        within = f", {esc(_shown(block))}" if block else ""
        parts += [
            r"\begin{table}[t]\centering\small",
            rf"\caption{{{esc(_shown(study))}: {esc(metric)}, {esc(' → '.join(_shown(d) for d in order))}{within}}}",
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
    # what runs of dqcl 0.4 on record: columns only where some run has them (an older store's CSV is as it was)
    recorded = [c for c in ("memory_budget", "memory_held", "samples_per_step", "memory_old_share") if any(c in e for e in rows)]
    cols[cols.index("version"):cols.index("version")] = recorded
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for e in rows:
        cells = {**e, "data_manifests": json.dumps(e.get("data_manifests", {})), "ordering": ">".join(e["ordering"]), "params": json.dumps(e["params"]), "baseline": json.dumps(e["baseline"]), "R": json.dumps(e["R"])}
        w.writerow({k: csv_cell(v) for k, v in cells.items()})  # names whole, but never a formula
    return buf.getvalue()


def _write_html(rows: list[dict[str, Any]], out: Path, images: dict[str, list[str]], summary: Path | None,
                set_aside: list[dict[str, Any]] = (), trials: list[dict[str, Any]] = ()) -> Path:
    from .claims import claims
    from .html import index_html

    continual = [e for e in rows if e.get("selector") is None]
    studies = sorted({e["study"] for e in rows})
    splits = {st: (_SWAP_HEADERS, t) for st in studies if (t := _split_rows(continual, st))}
    from .orders import order_table

    orders = {st: t for st in studies if (t := order_table(continual, st, name=_shown)) is not None}
    from .tuning import trial_section, tuning_table

    page = index_html(
        studies, {st: _provenance(rows, st) for st in studies}, _cl_tables(continual), claims(rows),
        {st: _health_lines(continual, st, set_aside=set_aside) for st in studies}, splits, images,
        summary.name if summary is not None else None, _legend(continual), orders, tuning_table(continual, name=_shown),
        [trial_section(t, name=_shown) for t in trials],
    )
    path = out / "index.html"
    write_text(path, page)
    return path
