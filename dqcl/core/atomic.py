"""Writing files whole or not at all: a temp file in the same folder, then a rename."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from ..errors import OutputError

__all__ = ["atomic_open", "discard", "save_figure", "save_npy", "write_text"]


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **kw) -> Iterator[IO]:
    """Write ``path`` whole or not at all. A place that cannot be written (a folder under a file, no
    permission, a name too long) is an `OutputError` naming it; an error while writing removes the
    temporary file and leaves any earlier ``path`` as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"{path}: cannot write here ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, mode, **kw) as f:
            yield f
            f.flush()
            # mkstemp makes the file 0600; a file written in place would get 0666 less the umask
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a lost mount: the earlier file stays, nothing half-written
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({err.strerror or err})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask sets it to read it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def discard(path: str | Path) -> None:
    """Remove ``path`` and the temporary files a killed `atomic_open` of it left behind."""
    import glob

    path = Path(path)
    path.unlink(missing_ok=True)
    for tmp in path.parent.glob(f".{glob.escape(path.name[:200])}.*.tmp"):
        tmp.unlink(missing_ok=True)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, array)


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Write a matplotlib figure as a PNG, whole or not at all, and close the figure."""
    import matplotlib.pyplot as plt

    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.1)  # long labels are not cut off
    finally:
        plt.close(fig)
    return Path(path)


def folder_problem(path: str | Path) -> str | None:
    """Why files could not be written in the folder ``path`` (made where missing), or None when they
    could. Nothing is created: the nearest existing ancestor must be a writable folder."""
    import os

    from .outputs import nearest_existing

    p = nearest_existing(path)
    if p.is_symlink() and not p.exists():
        return f"{p}: a broken link"
    if not p.is_dir():
        return f"{p}: is a file, so {path} cannot be made"
    if not os.access(p, os.W_OK | os.X_OK):
        return f"{p}: not writable"
    return None
