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
from ...core.provenance import MANIFEST_NAME, content_hash, folder_manifest
from ...core.version import __version__
from ...errors import DataError
from ..folders import LAYOUTS, detect_layout, pair_files, read_pair

__all__ = ["register", "registered", "home"]


def home() -> Path:
    return Path(os.environ.get("DQCL_HOME", "~/.dqcl")).expanduser()


def _file(path: Path, root: Path) -> dict[str, Any]:
    return {"file": path.relative_to(root).as_posix(), "size": path.stat().st_size, "sha256": content_hash(path)}


def register(name: str, folder: str | Path, *, layout: str = "auto", skip_bad: bool = False) -> dict[str, Any]:
    """Validate ``folder`` and write its manifest; returns the manifest."""
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise DataError(f"dataset name {name!r}: use letters, digits, '-', '_' and '.'")
    root = Path(folder).expanduser().resolve()
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
    book = registered()
    book[name] = {"path": str(root), "manifest_hash": manifest["manifest_hash"], "registered": manifest["created"]}
    write_text(home() / "datasets.json", json.dumps(book, indent=1, sort_keys=True) + "\n")
    return manifest


def registered() -> dict[str, dict[str, str]]:
    path = home() / "datasets.json"
    if not path.is_file():
        return {}
    try:
        book = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable dataset list ({err})") from None
    return book if isinstance(book, dict) else {}
