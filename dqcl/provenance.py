"""Where a run's data came from: a content hash (manifest hash) per domain, part of each run's key.

A built-in domain is generated from its parameters and seed, which the run's config already
holds, so its manifest is just "generated:<kind>". A folder domain's manifest hashes every
file under the folder (relative path, size, SHA-256 of the bytes): changing, adding or
removing an image makes new run keys, so a rerun trains on the new data instead of reusing
results of the old. Hashes are memoised per process by (path, size, mtime).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["domain_manifest", "folder_manifest"]

_MEMO: dict[tuple, str] = {}


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_manifest(folder: Path) -> str:
    """Hash of every regular file under ``folder`` (path, size, content); "missing" if there is no such folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return "missing"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        memo_key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        if memo_key not in _MEMO:
            _MEMO[memo_key] = _file_hash(p)
        h.update(f"{p.relative_to(folder).as_posix()}\0{st.st_size}\0{_MEMO[memo_key]}\n".encode())
    return h.hexdigest()[:24]


def domain_manifest(kind: str, params: dict) -> str:
    if kind == "folder":
        return "folder:" + folder_manifest(Path(params["path"]))
    return f"generated:{kind}"
