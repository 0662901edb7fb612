"""What a reviewer would ask about a table, found in the stored runs themselves.

Each flag names a study, an ordering and a strategy, and says what is wrong:

- ``same as naive``: the strategy's runs end with the very weights naive fine-tuning ends
  with, seed for seed: whatever it claims to do did not change training;
- ``joint below``: joint training (the upper bound) has a lower mean ACC than cumulative
  or naive training: the protocol did not let it converge, or the domains conflict;
- ``learned nothing``: a run's score on a domain right after training on it, R[i][i], is
  within 0.05 of the random-init network's (joint: its final score): that run did not learn;
- ``diverged``: a run's training loss became NaN or infinite (its weights with it): its
  scores are those of a broken network, not of the method;
- ``seeds disagree``: the paired difference to naive is above +0.01 for some seeds and below
  -0.01 for others: the comparison depends on the seed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from .entries import naive_label

__all__ = ["health_flags", "LEARNED_MARGIN"]

LEARNED_MARGIN = 0.05  # R[i][i] must beat the random-init score by this much (AP@0.5)


def _learned(e: dict[str, Any]) -> bool:
    R, base = np.asarray(e["R"], float), e["baseline"]
    diag = R[-1] if len(R) == 1 else np.diag(R)
    return all(b is None or d - b >= LEARNED_MARGIN for d, b in zip(diag, base))


def health_flags(rows: list[dict[str, Any]], metric: str = "ap50") -> list[tuple[str, tuple[str, ...], str, str]]:
    """(study, ordering, strategy, problem) for every flag raised by the continual runs on ``metric``."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in rows:
        if e["metric"] == metric and e.get("selector") is None:
            groups[(e["study"], tuple(e["ordering"]), e["strategy"])].append(e)
    flags = []
    for (study, order, label), es in sorted(groups.items()):
        reference = naive_label({k[2] for k in groups if k[:2] == (study, order)}, es[0].get("compute"))
        naive = {e["seed"]: e for e in groups.get((study, order, reference), [])}
        if label != reference and naive:
            same = [e["seed"] for e in es if e["seed"] in naive and e.get("model_sha256")
                    and e.get("model_sha256") == naive[e["seed"]].get("model_sha256")]
            if same:
                flags.append((study, order, label, f"same as naive: identical final weights for seed(s) {same}"))
            diffs = [e["acc"] - naive[e["seed"]]["acc"] for e in es if e["seed"] in naive]
            if any(d > 0.01 for d in diffs) and any(d < -0.01 for d in diffs):
                flags.append((study, order, label, "seeds disagree: ACC above naive's for some seeds and below for others "
                              f"({', '.join(f'{d:+.3f}' for d in diffs)})"))
        gone = sorted(f"{e['seed']} (experience {e['diverged']})" for e in es if e.get("diverged") is not None)
        if gone:
            flags.append((study, order, label, f"diverged: the training loss became NaN or infinite for seed(s) {', '.join(gone)}"))
        bad = sorted(e["seed"] for e in es if not _learned(e))
        if bad:
            flags.append((study, order, label, f"learned nothing: R[i][i] within {LEARNED_MARGIN} of the random-init score "
                          f"for seed(s) {bad}"))
        if label == "joint":
            mean = float(np.mean([e["acc"] for e in es]))
            for other in ("cumulative", reference):
                theirs = groups.get((study, order, other))
                their_mean = float(np.mean([e["acc"] for e in theirs])) if theirs else None
                if their_mean is not None and mean < their_mean:
                    flags.append((study, order, label, f"joint below {other}: mean ACC {mean:.3f} < {their_mean:.3f}"))
    return flags
