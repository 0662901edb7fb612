"""The results in words, generated from the entries the tables are made of, so that no sentence about a
ranking or a claim can drift from the store: per ranked block (ap50) which strategies the Holm-adjusted
all-pairs comparison tells apart from naive and from each other (`dqcl.results.compare`), and per claim its
rule's outcome (`dqcl.results.claims`). `dqcl leaderboard build` writes them into leaderboard.md;
`benchmarks/readme_results.py` puts the same text into the README, and a test holds the two equal.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .claims import claims
from .compare import compare
from .entries import naive_label
from .tables import _block_heading, block_names, ranked_blocks

__all__ = ["results_in_words"]

Name = Callable[[Any], str]


def _plain(name: Any) -> str:
    return str(name)


def _block_lines(study: str, order: tuple[str, ...], budget: dict | None, heading: str | None, block: dict[str, list[dict]],
                 plain: Name) -> list[str]:
    name = block_names(budget, block, plain)
    accs = {lab: {e["seed"]: e["acc"] for e in es} for lab, es in block.items()}
    cmp = compare(accs)
    mean = {lab: float(np.mean(list(v.values()))) for lab, v in accs.items()}
    order_by = sorted(accs, key=lambda lab: (-mean[lab], lab))
    seeds = sorted({len(v) for v in accs.values()})
    where = " → ".join(plain(d) for d in order) + (f", {plain(heading)}" if heading else "")
    lines = [f"- **{plain(study)}, {where}** ({len(accs)} strategies, {seeds[0]}"
             + (f"–{seeds[-1]}" if len(seeds) > 1 else "") + f" seeds, {cmp.family} pairs, Holm-adjusted):"]
    best = [lab for lab in order_by if "a" in cmp.groups[lab]]
    lines.append("  best group (`a`): " + ", ".join(f"{name(lab)} {mean[lab]:.3f}" for lab in best) + ".")
    naive = naive_label(set(accs), budget["compute"] if budget else None)
    if naive in accs:
        above, below = [], []
        for lab in order_by:
            if lab == naive:
                continue
            p = cmp.pair(lab, naive)
            if p is not None and p.apart:
                text = f"{name(lab)} {p.diff.mean:+.3f} [{p.lo:+.3f}, {p.hi:+.3f}]"
                (above if p.diff.mean > 0 else below).append(text)
        lines.append(f"  beyond noise above {name(naive)} ({mean[naive]:.3f}): " + (", ".join(above) or "none") + "; below: "
                     + (", ".join(below) or "none") + ".")
    others = []
    for a_i, a in enumerate(order_by):
        for b in order_by[a_i + 1:]:
            if naive in (a, b):
                continue
            p = cmp.pair(a, b)
            if p is not None and p.apart:
                others.append(f"{name(a)} ahead of {name(b)} ({p.diff.mean:+.3f} [{p.lo:+.3f}, {p.hi:+.3f}])")
    lines.append("  told apart among the others: " + ("; ".join(others) or "none") + ".")
    apart = [p for p in cmp.pairs.values() if p.apart]
    agree = [p for p in apart if not p.flagged]
    if apart:
        lines.append(f"  the exact sign-flip test agrees with {len(agree)} of these {len(apart)} differences"
                     + ("." if len(agree) == len(apart) else " (the others: t only)."))
    few = [lab for lab in order_by if len(accs[lab]) < seeds[-1]]
    if few:
        told = [lab for lab in few if any(p.apart for p in cmp.pairs.values() if lab in (p.a, p.b))]
        lines.append(f"  run on fewer seeds ({', '.join(name(lab) for lab in few)}): "
                     + ("told apart from nothing." if not told else f"told apart from something: {', '.join(map(name, told))}."))
    return lines


def results_in_words(rows: list[dict[str, Any]], studies: tuple[str, ...] | None = None, name: Name = _plain) -> list[str]:
    """Markdown bullets: per ranked ap50 block of the continual ``rows`` (of ``studies``, default all) what its
    groups say, then every claim and its outcome. Names are shown by ``name`` (a writer's escaping)."""
    continual = [e for e in rows if e.get("selector") is None and (studies is None or e["study"] in studies)]
    lines: list[str] = []
    for study, _, order, key, budget, block in ranked_blocks(continual, ("ap50",)):
        lines += _block_lines(study, order, budget, _block_heading(key, budget), block, name)
    found = claims([e for e in rows if studies is None or e["study"] in studies], "ap50", name)
    for c in found:
        verdict = c.verdict if "**" in c.verdict else f"**{c.verdict}**"
        lines.append(f"- *{name(c.claim)}* ({name(c.study)}, {c.pair}): {verdict}.")
    return lines
