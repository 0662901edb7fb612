"""`dqcl data fetch`: download (or take from a folder), verify, unpack, convert, register."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from ...core.atomic import write_text
from ...core.provenance import MANIFEST_NAME
from ...core.validation import expand_user
from ...errors import DataError
from .convert import convert
from .download import check_url, download, unpack
from .manifest import register
from .recipes import RECIPES, Recipe

__all__ = ["fetch_dataset", "recipe"]


_OURS = {"downloads", "raw", ".converting"}  # what an interrupted fetch leaves; a rerun resumes from it


def _check_target(out: Path, overwrite: bool) -> None:
    """Refuse to fill a folder holding files dqcl did not put there, unless told to overwrite."""
    if overwrite or not out.exists():
        return
    if not out.is_dir():
        raise DataError(f"{out}: not a folder; give --to a new or empty folder")
    names = {p.name for p in out.iterdir()}
    ours = _OURS | ({"train", "test"} if names & _OURS else set())  # an interrupted fetch renamed its splits in
    theirs = sorted(names - ours)
    if theirs and not (out / MANIFEST_NAME).is_file():
        shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise DataError(f"{out}: not empty and not made by dqcl (it holds {shown}); give a new folder, "
                        "or --overwrite to replace its train/ and test/")


def recipe(name: str) -> Recipe:
    return RECIPES.get(name).factory


def fetch_dataset(
    name: str, to: str | Path, *, mirror: str | None = None, source: str | Path | None = None, skip_bad: bool = False,
    say: Callable[[str], None] = print, progress: Callable[[int, int | None], None] | None = None,
    overwrite: bool = False,
) -> dict:
    """Bring dataset ``name`` into ``to`` (train/ + test/ + manifest); returns the manifest.

    ``source``: a folder the user downloaded by hand (for recipes without a direct download).
    ``mirror``: fetch the recipe's file names from this base URL instead of their own hosts.
    ``overwrite``: allow filling a non-empty folder dqcl did not make (its train/ and test/ are replaced).
    """
    rec = recipe(name)
    out = expand_user(to, "--to").resolve()
    if (out / MANIFEST_NAME).is_file() and (out / "train").is_dir():
        say(f"{name}: already in {out} (delete {out / MANIFEST_NAME} to convert again)")
        return json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    if source is None and not rec.files:
        raise DataError(f"{name}: no direct download (the licence needs a click or a registration). Steps:\n{rec.manual}")
    if source is None and mirror is not None:  # before anything is made: a bad address is the user's typo
        check_url(mirror, label=f"--mirror {mirror[:80]!r}")
    _check_target(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    digests = {}
    if source is None:
        raw = out / "raw"
        for f in rec.files:
            fname = Path(urlsplit(f.url).path).name
            url = mirror.rstrip("/") + "/" + fname if mirror else f.url
            say(f"{name}: downloading {url}")
            dest = out / "downloads" / fname
            digests[fname] = download(url, dest, f.sha256, progress, max_bytes=f.max_bytes)
            if f.sha256 is None:
                say(f"{name}: {fname} has no published checksum; its sha256 {digests[fname]} goes into the manifest")
            unpack(dest, raw)
        src = raw
    else:
        src = expand_user(source, "--from").resolve()
        if not src.is_dir():
            raise DataError(f"{src}: no such folder")
    staging = out / ".converting"
    shutil.rmtree(staging, ignore_errors=True)
    say(f"{name}: converting {rec.source_layout} -> train/ and test/ image/mask pairs")
    convert(rec.converter, src, staging, **rec.options)
    for split in ("train", "test"):
        if not (staging / split).is_dir():
            raise DataError(f"{name}: conversion made no {split}/ split from {src}")
        shutil.rmtree(out / split, ignore_errors=True)
        (staging / split).rename(out / split)
    staging.rmdir()
    manifest = register(name, out, skip_bad=skip_bad)
    if digests:
        manifest["downloads"] = digests
        manifest["recipe"] = {"name": rec.name, "license": rec.license, "homepage": rec.homepage}
        write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")
    return manifest
