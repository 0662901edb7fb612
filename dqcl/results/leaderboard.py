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
from typing import Any, Callable

import numpy as np

from ..core.atomic import write_text
from ..core.text import NAME_LIMIT, bounded, csv_cell, markdown_text, quoted, safe_stem, shorten, tex_text
from ..evaluation.metrics import METRICS
from .cl_metrics import CL_METRICS, cl_metrics
from .claims import claims_markdown
from .health import health_flags
from .stats import fmt, paired, summarise
from .store import Store

__all__ = ["entries", "write_leaderboard", "LEGEND"]

Name = Callable[[Any], str]  # how a writer shows a name from a spec or store (see `dqcl.core.text`)

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


def _shown(name: Any) -> str:
    """A name as a table or heading shows it before its format's escaping: at most NAME_LIMIT characters."""
    return shorten(str(name), NAME_LIMIT)


def _md(name: Any) -> str:
    """A name in leaderboard.md: shortened, then literal Markdown."""
    return markdown_text(_shown(name))


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
                    # names past NAME_LIMIT (a spec refuses them; a store someone sent may hold them) are cut
                    # here, once, so no table, file or figure pays for a name of a million characters
                    "study": bounded(cfg["study"]),
                    "strategy": bounded(cfg["strategy"]["label"]),
                    "strategy_name": bounded(cfg["strategy"]["name"]),
                    "params": cfg["strategy"]["params"],
                    "ordering": [bounded(d) for d in cfg["ordering"]],
                    "seed": cfg["seed"],
                    "metric": metric,
                    "R": R,
                    "baseline": [None if v is None or math.isnan(v) else v for v in base],
                    **cl_metrics(R, base),
                    "run": bounded(run["key"]),
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
                    "data_manifests": {bounded(str(d)): bounded(str(m)) for d, m in dict(cfg.get("data_manifests") or []).items()},
                    "model_sha256": res.get("model_sha256"),
                    "steps": res.get("steps"),
                    "diverged": _diverged(res.get("curve")),
                    **_norm_swap(R, res.get("norm_swap"), metric),
                }
            )
    return out


def _diverged(curve: list[dict] | None) -> int | None:
    """The first experience whose training loss became NaN or infinite, or None."""
    for row in curve or []:
        if not math.isfinite(row["loss"]):
            return int(row["experience"])
    return None


def _norm_swap(R: list[list[float]], swap: dict | None, metric: str) -> dict[str, float | None]:
    """Means over earlier domains j of the 2 x 2 of weights x BatchNorm statistics (see
    `dqcl.train.run.norm_swap_scores`): before = R[j][j], after = R[T-1][j], and the two swaps."""
    if not swap or len(R) < 2 or len(R) != len(R[0]):
        return {"before": None, "after": None, "new_weights_old_stats": None, "old_weights_new_stats": None}
    t = len(R)
    return {"before": float(np.mean([R[j][j] for j in range(t - 1)])), "after": float(np.mean([R[t - 1][j] for j in range(t - 1)])),
            "new_weights_old_stats": float(np.mean(swap["new_weights_old_stats"][metric])),
            "old_weights_new_stats": float(np.mean(swap["old_weights_new_stats"][metric]))}


def _cell(values, interval: bool = False) -> str:
    """mean ± std over seeds (ddof = 1), with the 95 % interval if asked; one seed: the value; none: —."""
    return fmt(summarise(values), interval=interval)


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


def _ranks(accs: dict[str, dict[int, float]]) -> dict[str, str]:
    """Rank by mean ACC; a strategy ranks below the one above it only where their paired difference
    (over the seeds both ran) has a 95 % interval above zero, else it shares that rank. Fewer than
    two shared seeds: no ranks."""
    order = sorted(accs, key=lambda k: -float(np.mean(list(accs[k].values()))))
    out, rank = {}, 1
    for pos, label in enumerate(order):
        if pos:
            diff = paired(accs[order[pos - 1]], accs[label])
            if diff is None or diff.n < 2:
                return {k: "—" for k in accs}
            if diff.lo > 0:
                rank = pos + 1
        out[label] = str(rank)
    return out


def _versus(es: list[dict[str, Any]], naive: list[dict[str, Any]]) -> str:
    """ACC minus naive's, paired by seed, with its interval and a word only where the interval excludes 0."""
    diff = paired({e["seed"]: e["acc"] for e in es}, {e["seed"]: e["acc"] for e in naive})
    if diff is None:
        return "—"
    word = " better" if diff.excludes_zero() and diff.lo > 0 else " worse" if diff.excludes_zero() else ""
    return fmt(diff, signed=True) + word


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _cost_cells(es: list[dict[str, Any]], name: Name = _shown) -> list[str]:
    """Wall time per run, training images seen, largest peak memory, devices (each shown by ``name``)."""
    wall, seen = _mean([e["total_s"] for e in es]), _mean([e["images_seen"] for e in es])
    peaks = [e.get("peak_gpu_mb") or e.get("peak_host_mb") for e in es]
    peak = max((p for p in peaks if p is not None), default=None)
    gpu = any(e.get("peak_gpu_mb") for e in es)
    return [
        "—" if wall is None else f"{wall:.0f}",
        "—" if seen is None else f"{seen:.0f}",
        "—" if peak is None else f"{peak:.0f} ({'GPU' if gpu else 'host'})",
        ", ".join(name(d) for d in sorted({str(e.get("device")) for e in es})),
    ]


COST_HEADERS = ["wall s/run", "images seen", "peak MiB", "device"]


TABLE_METRICS = ("ap50", "iou")  # in leaderboard.md; the CSV and JSON hold every metric


def _cl_tables(rows: list[dict[str, Any]], cost: bool = False, metrics=TABLE_METRICS,
               name: Name = _shown) -> list[tuple[str, str, tuple[str, ...], list[str], list[list]]]:
    """(study, metric, ordering, headers, rows) for every continual table, best ACC first. Strategy,
    domain and device names in headers and rows are shown by ``name``; study and ordering are
    returned as stored, for the writer to show."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in rows:
        groups[(e["study"], e["metric"], tuple(e["ordering"]), e["strategy"])].append(e)
    out = []
    for study in sorted({e["study"] for e in rows}):
        for metric in metrics:
            for order in sorted({k[2] for k in groups if k[0] == study and k[1] == metric}):
                labels = sorted({k[3] for k in groups if k[:3] == (study, metric, order)})
                ranks = _ranks({lab: {e["seed"]: e["acc"] for e in groups[(study, metric, order, lab)]} for lab in labels})
                naive = groups.get((study, metric, order, "naive"), [])
                table = []
                for label in labels:
                    es = groups[(study, metric, order, label)]
                    row = [ranks[label], name(label), len(es), _cell([e["acc"] for e in es], interval=True),
                           "—" if label == "naive" else _versus(es, naive)]
                    row += [_cell([e[k] for e in es], interval=k == "forgetting") for k in CL_METRICS if k != "acc"]
                    row += [_cell([e["R"][-1][j] for e in es]) for j in range(len(order))]
                    if cost:
                        row += _cost_cells(es, name)
                    table.append(row)
                table.sort(key=lambda r: -float(r[3].split(" ")[0]) if r[3] != "—" else math.inf)
                headers = ["rank", "strategy", "n", "ACC [95 % CI]", "ACC − naive (paired)", "BWT", "Forgetting [95 % CI]",
                           "FWT", "Plasticity"] + [f"final: {name(d)}" for d in order]
                headers += COST_HEADERS if cost else []
                out.append((study, metric, order, headers, table))
    return out


_SWAP_KEYS = ("before", "new_weights_old_stats", "old_weights_new_stats", "after")
_SWAP_HEADERS = ["ordering", "strategy", "n", "old weights + old stats", "new weights + old stats [95 % CI]",
                 "old weights + new stats [95 % CI]", "new weights + new stats [95 % CI]"]


def _split_rows(rows: list[dict[str, Any]], study: str, metric: str = "ap50", name: Name = _shown) -> list[list]:
    """Earlier domains scored with weights and BatchNorm statistics from before and after, per ordering
    and strategy (domain and strategy names shown by ``name``)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in rows:
        if e["study"] == study and e["metric"] == metric and e.get("before") is not None:
            groups[(tuple(e["ordering"]), e["strategy"])].append(e)
    return [[" → ".join(name(d) for d in order), name(label), len(es), *(_cell([e[k] for e in es], k != "before") for k in _SWAP_KEYS)]
            for (order, label), es in sorted(groups.items())]


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


def _health_lines(rows: list[dict[str, Any]], study: str, name: Name = _shown) -> list[str]:
    """One line per health flag of ``study``: ordering, strategy (shown by ``name``) and the problem."""
    return [f"{' → '.join(name(d) for d in order)}, {name(label)}: {problem}"
            for st, order, label, problem in health_flags(rows) if st == study]


def _health(rows: list[dict[str, Any]], study: str) -> list[str]:
    flags = _health_lines(rows, study, _md)
    if not flags:
        return ["Health: no flag (every run learned each domain it trained on; no strategy equals naive; "
                "joint is not below cumulative or naive; seeds agree in sign).", ""]
    return ["Health flags (see `dqcl.results.health` for what each means):", ""] + [f"- {f}" for f in flags] + [""]


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
                f"study {quoted(study)!r}: its runs used different data for domain {quoted(domain)!r} (manifests "
                f"{quoted(', '.join(sorted(manifests)), 200)}); rerun the older runs on the current data, give the new data "
                "another study name, or pass --allow-mixed-data"
            )


def _provenance(rows: list[dict[str, Any]], study: str, name: Name = _shown) -> str:
    """The Data line of ``study``: each domain's data manifests and the dqcl versions and commits of its
    runs, every one of them (store content) shown by ``name``."""
    mine = [e for e in rows if e["study"] == study]
    data: dict[str, set[str]] = defaultdict(set)
    for e in mine:
        for domain, manifest in e.get("data_manifests", {}).items():
            data[domain].add(manifest)
    versions = sorted({f"{name(e.get('version'))} ({name(str(e.get('commit') or 'unknown')[:12])})" for e in mine})
    parts = [f"{name(d)} `{' / '.join(name(x) for x in sorted(m))}`" for d, m in sorted(data.items())]
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
    _check_not_the_store(store.path, out)
    write_text(paths[0], _markdown(rows, cost) if rows else "# dqcl leaderboard\n\nNo runs stored yet.\n")
    write_text(paths[3], _latex(rows))
    cols = ["study", "strategy", "strategy_name", "ordering", "seed", "metric", *CL_METRICS, "selector", "rate", "subset_size", "train_s", "total_s", "images_seen", "device", "peak_host_mb", "peak_gpu_mb", "attempts", "executor", "version", "commit", "data_manifests", "before", "new_weights_old_stats", "old_weights_new_stats", "after", "model_sha256", "run", "params", "baseline", "R"]
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for e in rows:
        cells = {**e, "data_manifests": json.dumps(e.get("data_manifests", {})), "ordering": ">".join(e["ordering"]), "params": json.dumps(e["params"]), "baseline": json.dumps(e["baseline"]), "R": json.dumps(e["R"])}
        w.writerow({k: csv_cell(v) for k, v in cells.items()})  # names whole, but never a formula
    write_text(paths[1], buf.getvalue())
    write_text(paths[2], json.dumps(rows, indent=1) + "\n")
    from .plots import forgetting_plasticity, heatmaps, replay_rate_curves, saturation_plot, summary_figure, training_curves

    images: dict[str, list[str]] = defaultdict(list)

    def keep(study_name: str, path: Path | None) -> None:
        if path is not None:
            paths.append(path)
            images[study_name].append(path.name)

    cl: dict[tuple, list] = defaultdict(list)
    for e in rows:
        if e.get("selector") is None and e["metric"] == "ap50":
            cl[(e["study"], tuple(e["ordering"]))].append(e)
    curves = _curve_runs(store, study)
    slugs = _order_slugs([e for e in rows if e.get("selector") is None])
    for (st, order), group in sorted(cl.items()):
        slug = slugs[(st, order)]
        keep(st, heatmaps(group, out / f"{slug}_R_ap50.png"))
        keep(st, forgetting_plasticity(group, out / f"{slug}_forgetting_plasticity_ap50.png"))
        keep(st, replay_rate_curves(group, out / f"{slug}_replay_rates_ap50.png"))
        keep(st, training_curves([c for c in curves if (c["study"], tuple(c["ordering"])) == (st, order)],
                                 out / f"{slug}_training_curves.png"))
    for st in sorted({e["study"] for e in rows if e.get("selector") is not None}):
        mine = [e for e in rows if e["study"] == st]
        for metric in ("ap50", "iou", "pq"):
            keep(st, saturation_plot(mine, metric, out / f"{_slug(st)}_{metric}_saturation.png"))
    summary = summary_figure(rows, out / "summary_ap50.png")
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


def _curve_runs(store: Store, study: str | None) -> list[dict[str, Any]]:
    """The training curve of each stored run (the newest of each cell), with its study, strategy and ordering."""
    return [{"study": bounded(r["config"]["study"]), "strategy": bounded(r["config"]["strategy"]["label"]),
             "ordering": [bounded(d) for d in r["config"]["ordering"]], "curve": r["result"].get("curve")} for r in _latest(list(store.runs(study)))
            if r["result"].get("curve") and not r["config"].get("subset")]


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
