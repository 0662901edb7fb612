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
from ...core.validation import env_number
from ...errors import DataError

__all__ = ["download", "sha256_of", "unpack"]

CHUNK = 1 << 20
DOWNLOAD_SECONDS = 6 * 3600  # one file's whole transfer, however slowly its bytes come (DQCL_DOWNLOAD_TIMEOUT)
UNPACKED_BYTES = 64 * 2**30  # an archive's members together (DQCL_MAX_UNPACKED_BYTES)
UNPACK_RATIO = 200  # unpacked bytes per byte of archive (DQCL_MAX_UNPACK_RATIO)


def download(url: str, dest: Path, sha256: str | None = None, progress: Callable[[int, int | None], None] | None = None,
             timeout: float = 60.0) -> str:
    """Fetch ``url`` to ``dest`` (resuming ``dest.part``); returns the file's SHA-256.

    ``timeout`` bounds each wait for bytes; the whole transfer is bounded by DOWNLOAD_SECONDS (or
    DQCL_DOWNLOAD_TIMEOUT), so a server that trickles a byte now and then cannot hold dqcl forever."""
    import time

    limit = env_number("DQCL_DOWNLOAD_TIMEOUT", DOWNLOAD_SECONDS)
    deadline = time.monotonic() + limit
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
    total = None
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resumed = have and resp.status == 206
            total = resp.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total is not None else None
            with open(part, "ab" if resumed else "wb") as fh:
                done = have if resumed else 0
                while block := resp.read1(CHUNK):  # what has arrived, not a full chunk: the deadline is checked often
                    fh.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the transfer took longer than {limit:.0f} s "
                                           "(DQCL_DOWNLOAD_TIMEOUT)")
    except urllib.error.HTTPError as err:
        # 416 to a resume: the part may already be whole, if the server says its size is the part's
        size = (err.headers.get("Content-Range") or "").rpartition("/")[2] if err.headers else ""
        if err.code == 416 and have and size.isdigit() and int(size) == have:
            total = have
        elif err.code == 416 and have:
            part.unlink()
            raise DataError(f"{url}: the server refused to resume ({size or 'size unknown'} bytes on the server, "
                            f"{have} kept); the part was deleted: run the same command again to start over") from None
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


def _members(archive: Path) -> tuple[str, list[tuple[str, int]]]:
    """("zip" or "tar", [(name, unpacked size)]) from the archive's own directory, before extracting anything."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return "zip", [(i.filename, i.file_size) for i in zf.infolist()]
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            return "tar", [(m.name, m.size) for m in tf.getmembers()]
    return "file", []


def _check_sizes(archive: Path, members: list[tuple[str, int]]) -> None:
    total, packed = sum(size for _, size in members), max(1, archive.stat().st_size)
    cap, ratio = env_number("DQCL_MAX_UNPACKED_BYTES", UNPACKED_BYTES), env_number("DQCL_MAX_UNPACK_RATIO", UNPACK_RATIO)
    if total > cap:
        raise DataError(f"{archive}: would unpack to {total:,} bytes, over the limit of {cap:,.0f} "
                        "(raise it with DQCL_MAX_UNPACKED_BYTES); nothing was extracted")
    if total > ratio * packed:
        raise DataError(f"{archive}: would unpack {packed:,} bytes into {total:,} ({total / packed:,.0f} times as many), "
                        f"over the limit of {ratio:,.0f} (a zip bomb? raise it with DQCL_MAX_UNPACK_RATIO); nothing was extracted")


def unpack(archive: Path, into: Path) -> Path:
    """Unpack a .zip or .tar(.gz/.bz2/.xz) into ``into``; any other file is copied there.

    The archive's directory is checked first (sizes, ratio, names, links), members go to a
    staging folder, and only a complete extraction is moved into ``into``: a refused or
    broken archive leaves nothing half-extracted behind."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    try:
        kind, members = _members(archive)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"{archive}: damaged archive ({err})") from None
    if kind == "file":
        shutil.copy2(archive, into / archive.name)
        return into
    _check_sizes(archive, members)
    staging = into / f".unpacking-{archive.name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _extract(archive, kind, staging)
        for entry in staging.iterdir():
            target = into / entry.name
            if target.is_dir() and entry.is_dir():
                shutil.copytree(entry, target, dirs_exist_ok=True)
            else:
                os.replace(entry, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise DataError(f"{archive}: damaged archive ({err}); nothing was extracted") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return into


def _extract(archive: Path, kind: str, into: Path) -> None:
    if kind == "zip":
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
    else:
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
