"""Registering a dataset folder: validate every pair, write a manifest, remember the name.

`register(name, folder)` reads every image/mask pair of ``folder/train`` and ``folder/test``
with the checks a training run applies (readable, 2-D, same shape, integer non-negative
labels, at least one object, size limit), and writes ``folder/dqcl_manifest.json``: each
file's path, size and SHA-256, each pair's shape and object count, whether its labels had
gaps (they are renumbered when read), image statistics, the pairs skipped with
``skip_bad`` and why, and the manifest hash — the same hash every run on that folder records
as its data manifest (`dqcl.core.provenance`). The name is kept in ``$DQCL_HOME/datasets.json``
(default ``~/.dqcl``) for `dqcl data list`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...core.atomic import write_text
from ...core.provenance import MANIFEST_NAME, check_file_size, content_hash, folder_manifest
from ...core.validation import expand_user
from ...core.version import __version__
from ...errors import DataError
from ..folders import LAYOUTS, detect_layout, pair_files, read_pair

__all__ = ["register", "registered", "home"]


def home() -> Path:
    """dqcl's own folder: ``$DQCL_HOME``, or ``~/.dqcl`` when it is unset or empty (an empty value is taken
    as unset, not as the working directory, where datasets.json would otherwise land)."""
    return expand_user(os.environ.get("DQCL_HOME", "").strip() or "~/.dqcl", "DQCL_HOME")


def _file(path: Path, root: Path) -> dict[str, Any]:
    return {"file": path.relative_to(root).as_posix(), "size": path.stat().st_size, "sha256": content_hash(path)}


def register(name: str, folder: str | Path, *, layout: str = "auto", skip_bad: bool = False) -> dict[str, Any]:
    """Validate ``folder`` and write its manifest; returns the manifest."""
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise DataError(f"dataset name {name!r}: use letters, digits, '-', '_' and '.'")
    book = registered()  # a broken list is reported before the folder is read, not after
    root = expand_user(folder).resolve()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    splits: dict[str, list] = {}
    skipped: list[str] = []
    means, stds = [], []
    for split in ("train", "test"):
        sub = root / split
        if not sub.is_dir():
            raise DataError(f"{sub}: no such folder (a dataset folder holds train/ and test/)")
        sfx = LAYOUTS[detect_layout(sub)] if layout == "auto" else LAYOUTS[layout]
        entries = []
        for stem, img_path, mask_path in pair_files(sub, *sfx):
            try:
                img, mask = read_pair(img_path, mask_path)
            except DataError as err:
                if not skip_bad:
                    raise
                skipped.append(str(err))
                continue
            labels = np.unique(mask[mask > 0])
            entries.append({
                "stem": stem, "image": _file(img_path, root), "mask": _file(mask_path, root),
                "shape": list(mask.shape), "objects": int(len(labels)),
                "label_gaps": bool(len(labels) and labels[-1] != len(labels)),
            })
            means.append(float(img.mean()))
            stds.append(float(img.std()))
        if not entries:
            raise DataError(f"{sub}: no usable image/mask pair")
        splits[split] = entries
    manifest = {
        "name": name,
        "root": str(root),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dqcl": __version__,
        "layout": layout,
        "splits": splits,
        "skipped": skipped,
        "stats": {
            split: {"pairs": len(e), "objects": sum(x["objects"] for x in e),
                    "pixels": int(sum(np.prod(x["shape"]) for x in e))} for split, e in splits.items()
        } | {"normalised_intensity": {"mean": float(np.mean(means)), "std_mean": float(np.mean(stds))}},
        "manifest_hash": folder_manifest(root),
    }
    write_text(root / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")
    book[name] = {"path": str(root), "manifest_hash": manifest["manifest_hash"], "registered": manifest["created"]}
    write_text(home() / "datasets.json", json.dumps(book, indent=1, sort_keys=True) + "\n")
    return manifest


_ENTRY_KEYS = ("path", "manifest_hash", "registered")  # what `dqcl data list` shows of each entry


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _book_problem(book: Any) -> str | None:
    """What is wrong with the shape of a parsed datasets.json ({NAME: {path, manifest_hash, registered}}), or None."""
    if not isinstance(book, dict):
        return f"expected an object of NAME: {{path, manifest_hash, registered}}, got {_json_kind(book)}"
    for name, entry in book.items():
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            return f"dataset name {name[:60]!r} is not one dqcl registers (letters, digits, '-', '_' and '.')"
        if not isinstance(entry, dict):
            return f"entry {name[:60]!r} is {_json_kind(entry)}, not an object"
        missing = next((k for k in _ENTRY_KEYS if not isinstance(entry.get(k), str)), None)
        if missing:
            return f"entry {name[:60]!r} has no text '{missing}'"
    return None


def registered() -> dict[str, dict[str, str]]:
    """The registered folders from ``$DQCL_HOME/datasets.json`` ({} when there is none): a one-line DataError
    naming the file when it cannot be read or is not of the shape `register` writes."""
    path = home() / "datasets.json"
    if not path.exists():
        return {}
    try:
        check_file_size(path)
        book = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # the last: JSON nested thousands deep
        raise DataError(f"{path}: unreadable dataset list ({' '.join(str(err).split())[:120]})") from None
    problem = _book_problem(book)
    if problem:
        raise DataError(f"{path}: not a dataset list ({problem}); fix it, or delete it and register the folders again")
    return book
