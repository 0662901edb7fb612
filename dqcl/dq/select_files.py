"""`dqcl select`: a coreset of a feature file or of an image folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_open, save_npy, write_text
from ..core.outputs import FOLDER, INDICES, NAMES, check_output
from ..data.folders import files_by_stem, pair_files
from ..data.imageio import IMAGE_EXTENSIONS, read_image, read_mask
from ..errors import DataError, DqclError
from .embedders import embed, embed_options
from .selectors import select

__all__ = ["select_features_file", "select_folder", "folder_items", "check_copy_target", "COPY_MARK"]


def select_features_file(path: Path, *, ratio: float, bins: int = 10, variant: str = "mmv", seed: int = 0, output: Path) -> np.ndarray:
    path = Path(path)
    try:
        feats = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty or truncated file
        raise DataError(f"{path}: not a NumPy .npy array ({type(exc).__name__}: {exc or 'empty file'})") from None
    check_output(output, INDICES, reading=[(path, "the file selected from")])
    try:
        idx = select(feats, ratio, bins, variant, seed)
    except DqclError as err:
        raise DqclError(f"{path}: {err}") from None
    save_npy(output, idx.astype(np.int64))
    return idx


def folder_items(folder: Path) -> list[tuple[str, Path, Path | None]]:
    """(stem, image, mask or None): Cellpose-layout pairs if the folder has masks, else every image."""
    folder = Path(folder)
    if not files_by_stem(folder, "_masks"):
        return [(k, p, None) for k, p in sorted(files_by_stem(folder, "").items())]
    # Cellpose's own layout is NAME.png beside NAME_masks.png; dqcl's folders use NAME_img.png
    image_suffix = "_img" if files_by_stem(folder, "_img") else ""
    return [(k, i, m) for k, i, m in pair_files(folder, image_suffix, "_masks")]


def select_folder(
    folder: Path, *, ratio: float, bins: int = 10, variant: str = "mmv", seed: int = 0, output: Path | None = None,
    copy_to: Path | None = None, embedder: str = "stats", mae_weights: str = "", checkpoint: str = "", cache_dir: Path | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Embed a folder's images (resized to 224 px), select, and write names and/or copy the chosen pairs.

    ``copy_to`` must not be ``folder`` itself nor hold files dqcl did not copy there (``overwrite``
    allows the latter); that is checked before anything is read."""
    from skimage.transform import resize

    if copy_to is not None:
        check_copy_target(Path(copy_to), Path(folder), overwrite)

    items = folder_items(folder)
    if not items:
        raise DataError(f"{folder}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
    if output is not None:  # the files first: "over a file selected from" says more than "inside the folder"
        files = [(p, "a file selected from") for _, img, mask in items for p in (img, mask) if p is not None]
        weights = [(mae_weights if embedder == "mae" else checkpoint, "the weights file")]
        check_output(output, NAMES, reading=[*files, (folder, "the folder selected from"), *weights])
    images, masks = [], []
    for _, img_path, mask_path in items:
        images.append(resize(read_image(img_path), (224, 224), order=1, preserve_range=True, anti_aliasing=True))
        if mask_path is not None:
            masks.append(resize(read_mask(mask_path), (224, 224), order=0, preserve_range=True, anti_aliasing=False).astype(np.int32))
    opts = embed_options(embedder, mae_weights if embedder == "mae" else checkpoint)
    feats = embed(embedder, np.stack(images).astype(np.float32), np.stack(masks) if len(masks) == len(images) else None, cache_dir=cache_dir, **opts)
    idx = select(feats, ratio, min(bins, len(items)), variant, seed)
    chosen = [items[i] for i in idx]
    names = [p.name for _, p, _ in chosen]
    if output is not None:
        write_text(output, "".join(n + "\n" for n in names))
    if copy_to is not None:
        _copy_pairs(chosen, Path(copy_to), folder)
    return names


# the list of files a `--copy-to` folder got from dqcl: it marks the folder as dqcl's to refill
COPY_MARK = ".dqcl_selection"


def check_copy_target(target: Path, source: Path, overwrite: bool = False) -> None:
    """Refuse ``--copy-to`` the source folder or a folder inside it (`dqcl.core.outputs`), or a folder
    holding files dqcl did not put there (unless ``overwrite``), by the rule of ``data fetch --to``;
    checked before any work."""
    target = Path(target)
    check_output(target, FOLDER, reading=[(source, "the folder selected from")], what="--copy-to")
    if overwrite or not target.exists():
        return
    names = sorted(p.name for p in target.iterdir())
    ours = set(_marked(target)) | {COPY_MARK}
    theirs = [n for n in names if n not in ours]
    if theirs:
        shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise DataError(f"{target}: not empty and not filled by dqcl select (it holds {shown}); give a new folder, "
                        "or --overwrite to add the selection beside (and over) what is there")


def _marked(target: Path) -> list[str]:
    try:
        return [n for n in (target / COPY_MARK).read_text(encoding="utf-8").splitlines() if n and "/" not in n and n not in (".", "..")]
    except (OSError, UnicodeDecodeError):
        return []


def _copy_pairs(chosen: list[tuple[str, Path, Path | None]], target: Path, source: Path) -> None:
    """Copy the chosen pairs into ``target`` (Cellpose's training layout: NAME.ext beside NAME_masks.ext),
    replacing an earlier selection dqcl copied there, each file whole or not at all."""
    target.mkdir(parents=True, exist_ok=True)
    for name in _marked(target):  # the earlier selection goes: the folder holds this selection only
        (target / name).unlink(missing_ok=True)
    copied = []
    for stem, img_path, mask_path in chosen:
        for src, dest in ((img_path, f"{stem}{img_path.suffix}"), (mask_path, f"{stem}_masks{mask_path.suffix}" if mask_path else "")):
            if src is None:
                continue
            try:
                with atomic_open(target / dest, "wb") as fh, open(src, "rb") as fin:
                    shutil.copyfileobj(fin, fh)
            except OSError as err:
                raise DataError(f"{src}: cannot copy to {target / dest} ({err.strerror or err})") from None
            copied.append(dest)
    write_text(target / COPY_MARK, "".join(n + "\n" for n in copied))
