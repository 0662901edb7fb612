"""No output over an input: the one check every command runs on a file or folder the user named
for it to write (``--out``, ``--copy-to``, ``--store``, ``--figure``), before it writes anything.

The rules, in the order they are checked (`check_output`):

1. **Not an input.** The path, after following symbolic links, is none of the files or folders
   the command reads (the spec, the results store it is built from, a source file, a domain
   folder, weights). A link to an input is that input.
2. **Not inside a folder being read.** The path does not lie in (or under) a folder the command
   reads: a domain folder given with ``--path`` or named by a spec, a folder selected from.
3. **Only over its own kind.** Where the path exists it must be what the command writes (a
   file, or for a folder output a folder) and, for a file, must look like the command's own
   earlier output of that `Kind` (a figure Matplotlib drew, the int64 indices ``dqcl select``
   wrote, a leaderboard file beginning as dqcl begins it): rewriting one's own output is
   allowed, replacing anything else (a user's image, notes, an empty placeholder) is refused.
   A results store is opened, never replaced: `dqcl.results.store.Store` refuses, without
   writing, a file that is not a dqcl store. A symbolic link is judged by what it points to;
   dqcl replaces the link itself, never the file behind it.
4. **Somewhere it can be written.** A path not there yet has a folder as its nearest existing
   parent, not a file (``--out results.sqlite/x.md``): refused now, not after the work is done.

Each refusal is an `OutputError` whose one line names the path and why. A folder a command
*fills* (``data fetch --to``, ``select --copy-to``) goes through rules 1 and 2 here; whether its
present files are dqcl's is the filling command's own rule (a mark file it keeps there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..errors import OutputError

__all__ = ["Kind", "check_output", "nearest_existing", "Reading", "FIGURE", "FOLDER", "INDICES", "NAMES", "STORE", "starts_with"]

# (path, what it is to the command: "the domain folder", "the results store it is built from", ...);
# a path that is None or "" stands for an input not given, and is skipped
Reading = Iterable[tuple["str | Path | None", str]]

_PEEK = 4096  # bytes read to recognise a kind: every test below looks at the start of the file only


@dataclass(frozen=True)
class Kind:
    """What a command writes: ``name`` for messages ("a PNG figure"), ``ours(path)`` whether an
    existing regular file at ``path`` looks like an earlier output of this kind (so it may be
    rewritten); ``folder`` for a folder output (its files are checked one by one by the writer)."""

    name: str
    ours: Callable[[Path], bool] = lambda path: False
    folder: bool = False


def _head(path: Path, n: int = _PEEK) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def starts_with(*prefixes: bytes) -> Callable[[Path], bool]:
    """``ours`` for a text file dqcl always begins the same way (its leaderboard files)."""
    return lambda path: _head(path).startswith(prefixes)


def _figure(path: Path) -> bool:
    """A PNG whose Software text is Matplotlib's: every figure dqcl draws is saved by Matplotlib
    (`dqcl.core.atomic.save_figure`); a photo, a scan or an image of a dataset is not."""
    head = _head(path)
    return head.startswith(b"\x89PNG\r\n\x1a\n") and b"tEXtSoftware\x00Matplotlib" in head


def _indices(path: Path) -> bool:
    """A .npy of one axis of int64: what ``dqcl select FEATURES.npy --out`` writes (a feature array
    has two axes, an image array is not int64 row numbers)."""
    import numpy as np

    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(fmt.read_magic(fh))
            if read is None:  # a format version np.save does not write for an int64 array
                return False
            shape, _, dtype = read(fh)
    except (OSError, ValueError, SyntaxError, TypeError):
        return False
    return len(shape) == 1 and dtype == np.dtype("<i8")


def _names(path: Path) -> bool:
    """Text of one bare file name a line (no folder, no control character), ending in a newline:
    what ``dqcl select DIR --out`` writes. A user's notes (a sentence with a '/', a blank line,
    no final newline) are not."""
    if path.stat().st_size > 64 * 2**20:  # far beyond any folder's names: not ours, and not read whole
        return False
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    lines = text.split("\n")
    return (text.endswith("\n") and len(lines) > 1
            and all(n and n not in (".", "..") and "/" not in n and not any(ord(c) < 32 for c in n) for n in lines[:-1]))


FIGURE = Kind("a PNG figure dqcl drew", _figure)
INDICES = Kind("row indices dqcl select wrote (a .npy of int64)", _indices)
NAMES = Kind("a list of file names dqcl select wrote", _names)
# a store is opened, not replaced: `dqcl.results.store.Store` refuses, without writing a byte, a file
# that is not a dqcl store (with a message saying what it is instead), so rule 3 is its own here
STORE = Kind("a results store", lambda path: True)
FOLDER = Kind("a folder", folder=True)


def _resolved(path: Path) -> Path | None:
    try:
        return Path(os.path.realpath(path, strict=False))
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL in the name: the read or write says so
        return None


def nearest_existing(path: str | Path) -> Path:
    """``path`` itself or its nearest ancestor that exists or is a link (a broken one included): where a
    folder that is not there yet would be made from; the root where nothing on the way exists."""
    p = Path(path)
    while not (p.exists() or p.is_symlink()) and p.parent != p:
        p = p.parent
    return p


def check_output(path: str | Path, kind: Kind, *, reading: Reading = (), what: str = "--out") -> Path:
    """Refuse to write ``path`` (given by the user as ``what``) where it would replace or land among
    what the command reads (``reading``), or replace an existing file that is not ``kind``'s own
    (the module docstring has the rules); returns ``path`` as given, unchanged, when it may be
    written. Reads only the start of an existing file (a list of names whole, up to 64 MiB), and
    writes nothing."""
    path = Path(path)
    target = _resolved(path)
    if target is None:
        raise OutputError(f"{path}: cannot be resolved (a symbolic-link loop?); give {what} another path")
    for given, label in reading:
        if given is None or str(given) == "":
            continue
        source = _resolved(Path(given))
        if source is None:
            continue
        shown = "" if Path(given) == path else f" ({given})"
        if target == source:
            raise OutputError(f"{path}: {what} would be written over {label}{shown}; give {what} another path")
        if not source.is_file() and target.is_relative_to(source):  # a folder, or one the command makes and then reads
            raise OutputError(f"{path}: inside {label} {given}, which is read; write {what} elsewhere, "
                              "so nothing there is replaced")
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet: its nearest existing parent must be a folder
        parent = nearest_existing(path.parent)
        if parent.exists() and not parent.is_dir():  # found now, not when the work is done and its output lost
            raise OutputError(f"{path}: {parent} is a file, not a folder; give {what} another path") from None
        return path
    except OSError as err:  # no permission to look: no permission to write either
        raise OutputError(f"{path}: cannot be checked ({err.strerror or err}); give {what} another path") from None
    if kind.folder:
        if not path.is_dir():
            raise OutputError(f"{path}: exists and is not a folder; give {what} a folder")
        return path
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give {what} a file path")
    if not path.exists():
        raise OutputError(f"{path}: a broken symbolic link; give {what} a file path, or remove the link first")
    if not path.is_file():  # a FIFO, a device, a link to one: never opened to be recognised
        raise OutputError(f"{path}: not a regular file; give {what} a file path")
    if not kind.ours(path):
        raise OutputError(f"{path}: an existing file that is not {kind.name}; dqcl replaces only its own output: "
                          f"give {what} a new file, or move this one away first")
    return path
