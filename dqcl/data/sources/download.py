"""Downloading, checking and unpacking a recipe's files, safely.

- Downloads go to ``NAME.part`` and are renamed when complete; an interrupted download
  resumes with an HTTP Range request (a server that ignores it is read from the start).
- A file whose SHA-256 differs from the recipe's is deleted and refused.
- Archives are unpacked member by member into the target folder; a member whose path would
  land outside it (absolute, ``..``, links) is refused rather than written.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from ...core.provenance import sha256_of
from ...errors import DataError

__all__ = ["download", "sha256_of", "unpack"]

CHUNK = 1 << 20


def download(url: str, dest: Path, sha256: str | None = None, progress: Callable[[int, int | None], None] | None = None,
             timeout: float = 60.0) -> str:
    """Fetch ``url`` to ``dest`` (resuming ``dest.part``); returns the file's SHA-256."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        digest = sha256_of(dest)
        if sha256 is None or digest == sha256:
            return digest
        dest.unlink()  # a stale or foreign file under the same name
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resumed = have and resp.status == 206
            total = resp.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total is not None else None
            with open(part, "ab" if resumed else "wb") as fh:
                done = have if resumed else 0
                for block in iter(lambda: resp.read(CHUNK), b""):
                    fh.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part file is already complete
            pass
        else:
            raise DataError(f"{url}: download failed (HTTP {err.code} {err.reason})") from None
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise DataError(f"{url}: download interrupted ({reason}); run the same command again to resume "
                        f"({part.stat().st_size if part.is_file() else 0} bytes kept in {part})") from None
    if total is not None and part.stat().st_size < total:
        raise DataError(f"{url}: download interrupted at {part.stat().st_size} of {total} bytes; "
                        f"run the same command again to resume")
    digest = sha256_of(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        raise DataError(f"{dest.name}: checksum mismatch (expected sha256 {sha256}, got {digest}); the file was deleted")
    os.replace(part, dest)
    return digest


def _inside(root: Path, name: str) -> Path:
    target = (root / name).resolve()
    if name.startswith(("/", "\\")) or ".." in Path(name).parts or not target.is_relative_to(root.resolve()):
        raise DataError(f"archive member '{name}' would be written outside {root}; refusing the archive")
    return target


def _write_member(src, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)


def unpack(archive: Path, into: Path) -> Path:
    """Unpack a .zip or .tar(.gz/.bz2/.xz) into ``into``; any other file is copied there."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    target = _inside(into, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise DataError(f"{archive}: member '{info.filename}' is a symbolic link; refusing the archive")
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    with zf.open(info) as src:
                        _write_member(src, target)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    target = _inside(into, member.name)
                    if not (member.isfile() or member.isdir()):
                        raise DataError(f"{archive}: member '{member.name}' is a link or device; refusing the archive")
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    with tf.extractfile(member) as src:
                        _write_member(src, target)
        else:
            shutil.copy2(archive, into / archive.name)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise DataError(f"{archive}: damaged archive ({err})") from None
    return into
