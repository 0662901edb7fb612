"""Reading what `dqcl tune` chose (its JSON result), for a spec's ``tuned = "FILE"``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import SpecError

__all__ = ["read_tuned"]


def read_tuned(path: Path, label: str, name: str, where: str) -> dict[str, float]:
    """The values a tuning result chose for strategy ``label`` (or, where it tuned no such label, for the one
    label it tuned of strategy ``name``), as parameters of a spec's strategy table; a bad file or no such
    strategy is a `SpecError` naming ``where``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = doc["strategies"]
        if doc.get("dqcl_tuning") != 1 or not isinstance(entries, dict):
            raise ValueError("not a dqcl tuning result")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SpecError(f"{where}: {path}: not a dqcl tuning result ({err})") from None
    entry = entries.get(label)
    if entry is None:
        same = [e for e in entries.values() if isinstance(e, dict) and e.get("strategy") == name]
        if len(same) != 1:
            raise SpecError(f"{where}: {path} tuned no strategy '{label}' ({name}); it tuned {', '.join(sorted(entries)) or 'none'}")
        entry = same[0]
    best = entry.get("best") if isinstance(entry, dict) else None
    if not isinstance(best, dict) or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in best.values()):
        raise SpecError(f"{where}: {path}: the values chosen for '{label}' are not numbers")
    return {str(k): float(v) for k, v in best.items()}
