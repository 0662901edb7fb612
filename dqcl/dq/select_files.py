"""`dqcl select`: a coreset of a feature file or of an image folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..core.atomic import save_npy, write_text
from ..data.folders import files_by_stem, pair_files
from ..data.imageio import IMAGE_EXTENSIONS, read_image, read_mask
from ..errors import DataError, DqclError
from .embedders import embed, embed_options
from .selectors import select

__all__ = ["select_features_file", "select_folder", "folder_items"]


def select_features_file(path: Path, *, ratio: float, bins: int = 10, variant: str = "mmv", seed: int = 0, output: Path) -> np.ndarray:
    path = Path(path)
    try:
        feats = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty or truncated file
        raise DataError(f"{path}: not a NumPy .npy array ({type(exc).__name__}: {exc or 'empty file'})") from None
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
) -> list[str]:
    """Embed a folder's images (resized to 224 px), select, and write names and/or copy the chosen pairs."""
    from skimage.transform import resize

    items = folder_items(folder)
    if not items:
        raise DataError(f"{folder}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
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
        copy_to = Path(copy_to)
        copy_to.mkdir(parents=True, exist_ok=True)
        for stem, img_path, mask_path in chosen:
            # Cellpose's training CLI reads NAME.ext beside NAME_masks.ext
            shutil.copy2(img_path, copy_to / f"{stem}{img_path.suffix}")
            if mask_path is not None:
                shutil.copy2(mask_path, copy_to / f"{stem}_masks{mask_path.suffix}")
    return names
