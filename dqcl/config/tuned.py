"""Reading what `dqcl tune` chose (its JSON result), for a spec's ``tuned = "FILE"``."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from ..errors import SpecError

__all__ = ["read_tuned"]


def read_tuned(path: Path, label: str, name: str, where: str) -> tuple[dict[str, float], dict[str, Any]]:
    """The values a tuning result chose for strategy ``label`` (or, where it tuned no such label, for the one
    label it tuned of strategy ``name``), as parameters of a spec's strategy table, and the tuning's provenance
    the run keeps (file name and SHA-256, study, trials per strategy, validation share, the space searched,
    the validation ACC of the values); a bad file or no such strategy is a `SpecError` naming ``where``."""
    try:
        raw = Path(path).read_bytes()
        doc = json.loads(raw.decode("utf-8"))
        entries = doc["strategies"]
        if doc.get("dqcl_tuning") != 1 or not isinstance(entries, dict):
            raise ValueError("not a dqcl tuning result")
    except RecursionError:  # the parser recurses once per level: a file of nested brackets exhausts the stack
        raise SpecError(f"{where}: {path}: not a dqcl tuning result (nested too deeply)") from None
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
    space = entry.get("space") if isinstance(entry.get("space"), dict) else {}
    number = lambda v: float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None  # noqa: E731
    provenance = {
        "file": Path(path).name, "sha256": hashlib.sha256(raw).hexdigest()[:16], "study": str(doc.get("study", "")),
        "trials": number(doc.get("trials_per_strategy")), "validation": number(doc.get("validation")),
        "space": {str(k): [number(x) for x in v][:2] for k, v in space.items() if isinstance(v, list)},
        "validation_acc": number(entry.get("validation_acc")),
    }
    return {str(k): float(v) for k, v in best.items()}, provenance
