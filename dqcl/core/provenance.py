"""Provenance: where a run's data came from, and which code and packages made it.

Data: a content hash (manifest hash) per domain, part of each run's key.

A built-in domain is generated from its parameters and seed, which the run's config already
holds, so its manifest is just "generated:<kind>". A folder domain's manifest hashes every
file under the folder (relative path, size, SHA-256 of the bytes): changing, adding or
removing an image makes new run keys, so a rerun trains on the new data instead of reusing
results of the old. Hashes are memoised per process by (path, size, mtime).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["MANIFEST_NAME", "check_file_size", "content_hash", "domain_manifest", "folder_manifest", "sha256_of", "source_version", "versions"]

MANIFEST_NAME = "dqcl_manifest.json"  # written by `dqcl data register`; not part of the data

_MEMO: dict[tuple, str] = {}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


MAX_FILE_BYTES = 8 * 2**30  # a file larger than this (8 GiB) is refused before it is hashed or read


def max_file_bytes() -> int:
    """The per-file size limit: 8 GiB, or the environment's DQCL_MAX_FILE_BYTES."""
    from .validation import env_number

    return int(env_number("DQCL_MAX_FILE_BYTES", MAX_FILE_BYTES))


def check_file_size(path: Path, size: int | None = None) -> None:
    """Refuse (a DataError naming it) a file over `max_file_bytes` before anything reads it: a huge or
    sparse file in a data folder must not hang dqcl. ``size``: the file's size, if already known."""
    size, limit = Path(path).stat().st_size if size is None else size, max_file_bytes()
    if size > limit:
        from ..errors import DataError

        raise DataError(f"{path}: {size:,} bytes, over dqcl's limit of {limit:,} per file "
                        "(raise it with DQCL_MAX_FILE_BYTES)")


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes, memoised by (path, size, mtime): a file is read once per process.
    A file over the size limit is refused before a byte is read (`check_file_size`)."""
    st = Path(path).stat()
    check_file_size(path, st.st_size)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _MEMO:
        _MEMO[key] = sha256_of(path)
    return _MEMO[key]


def folder_manifest(folder: Path) -> str:
    """Hash of every regular file under ``folder`` (path, size, content); "missing" if there is no such folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return "missing"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST_NAME)
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.relative_to(folder).as_posix()}\0{p.stat().st_size}\0{content_hash(p)}\n".encode())
    return h.hexdigest()[:24]


BUILTIN_GENERATOR = 2  # the version of the built-in domains' generator new runs use (dqcl.data.builtin.GENERATOR)


def domain_manifest(kind: str, params: dict) -> str:
    if kind == "folder":
        return "folder:" + folder_manifest(Path(params["path"]))
    # built-in data are a function of the generator's version (1: dqcl 0.3, named without a suffix)
    generator = params.get("generator", BUILTIN_GENERATOR)
    return f"generated:{kind}" if generator == 1 else f"generated:{kind}@{generator}"


def source_version() -> str:
    """The git commit of the dqcl source in use ("+dirty" with uncommitted changes), or "unknown"."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


_SOURCE: dict[str, str] = {}  # the commit, asked of git once per process


def versions() -> dict[str, str]:
    """Python, the dqcl commit and the versions of the packages a result depends on."""
    import platform
    from importlib import metadata

    if "commit" not in _SOURCE:
        _SOURCE["commit"] = source_version()
    out = {"python": platform.python_version(), "dqcl_commit": _SOURCE["commit"]}
    for pkg in ("dqcl", "torch", "torchvision", "cellpose", "avalanche-lib", "numpy", "scipy", "numba", "ray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def cpu_identity() -> dict[str, str]:
    """What decides a CPU run's float sums besides the thread count: the processor's model name, the
    vector instruction sets it offers (the avx* and amx* flags: oneDNN and MKL pick their kernels by
    them) and the capability torch dispatches to. Two runs train to the same weights bit for bit only
    where these agree; where they differ, a run lands elsewhere in its cell's distribution."""
    import platform

    import torch

    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = sorted({f for f in value.split() if f.startswith(("avx", "amx", "fma", "sse4"))})
                break
    except OSError:
        pass
    return {"model": model[:200], "isa": " ".join(flags)[:1000], "torch_capability": torch.backends.cpu.get_cpu_capability()}
