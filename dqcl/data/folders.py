"""The ``folder`` domain kind: a user's images and instance masks in train/test folders.

Layouts (``layout=``):
- ``cellpose``: ``NAME_img.png`` beside ``NAME_masks.png`` (Cellpose's training layout);
- ``paper``: ``NAME_IM.tif`` beside ``NAME_GT.tif`` (the layout of the paper's released code);
- ``suffix``: ``NAME<image_suffix>`` beside ``NAME<mask_suffix>``, suffixes named by the user;
- ``auto``: whichever of ``cellpose`` and ``paper`` the folder holds.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.text import quoted
from ..core.validation import expand_user
from .domains import Domain, Split, register_domain
from ..errors import DataError
from .imageio import IMAGE_EXTENSIONS, read_image, read_mask

__all__ = ["LAYOUTS", "detect_layout", "files_by_stem", "load_folder", "pair_files", "read_pair", "read_split", "resplit_pairs"]

# layout -> (image suffix, mask suffix), matched before the file extension
LAYOUTS: dict[str, tuple[str, str]] = {"cellpose": ("_img", "_masks"), "paper": ("_IM", "_GT"), "plain": ("", "_masks")}
# "plain": Cellpose's own default naming (``--img_filter`` empty): any image file, its mask beside it as <name>_masks


def _split_name(path: Path) -> tuple[str, str] | None:
    """(stem, extension) of an image-like file, or None for anything else."""
    name = path.name
    for ext in IMAGE_EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)], ext
    return None


def _kind(path: Path) -> str:
    import stat

    mode = path.stat().st_mode
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def files_by_stem(folder: Path, suffix: str, exclude: set[Path] = frozenset()) -> dict[str, Path]:
    """Image-like files of a folder whose stem ends with ``suffix``, by the stem left without it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    try:
        entries = sorted(folder.iterdir())
    except PermissionError:
        raise DataError(f"{folder}: permission denied") from None
    out: dict[str, Path] = {}
    for path in entries:
        parts = _split_name(path)
        if parts is None or path in exclude or not parts[0].endswith(suffix):
            continue
        if path.is_symlink() and not path.exists():
            raise DataError(f"{path}: broken symbolic link or symbolic-link loop")
        if not path.is_file():  # a device, a pipe, a socket, or a folder named like an image: never silently dropped
            raise DataError(f"{path}: not a regular file ({_kind(path)}); remove it or rename it")
        key = parts[0][: len(parts[0]) - len(suffix)]
        if key in out:
            raise DataError(f"{path}: duplicate stem '{key}' (also {out[key].name})")
        out[key] = path
    return out


def pair_files(folder: Path, image_suffix: str, mask_suffix: str) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) triples of a folder, sorted by stem; an unpaired file is an error."""
    masks = files_by_stem(folder, mask_suffix)
    # an empty image suffix takes every file that is not a mask
    images = files_by_stem(folder, image_suffix, exclude=set(masks.values()))
    for key, path in images.items():
        if key not in masks:
            raise DataError(f"{path}: image has no mask (expected {key}{mask_suffix}.*)")
    for key, path in masks.items():
        if key not in images:
            raise DataError(f"{path}: mask has no image (expected {key}{image_suffix}.*)")
    return [(key, images[key], masks[key]) for key in sorted(images)]


def read_pair(img_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An image and its mask, checked: readable, 2-D, same shape, integer labels with at least one object."""
    img, mask = read_image(img_path), read_mask(mask_path)
    if img.shape != mask.shape:
        raise DataError(f"{mask_path}: mask shape {mask.shape} differs from image shape {img.shape}")
    if not mask.any():
        raise DataError(f"{mask_path}: mask has no labelled object (all background)")
    return img, mask


def read_split(folder: Path, image_suffix: str, mask_suffix: str, skipped: list | None = None) -> Split:
    """Every pair of a folder; with ``skipped`` (a list), a bad pair is left out and noted there
    as (path, problem) instead of stopping everything."""
    pairs = pair_files(folder, image_suffix, mask_suffix)
    if not pairs:
        raise DataError(f"{folder}: no '*{image_suffix}' / '*{mask_suffix}' image/mask pairs found")
    images, masks, names = [], [], []
    for key, img_path, mask_path in pairs:
        try:
            img, mask = read_pair(img_path, mask_path)
        except DataError as err:
            if skipped is None:
                raise
            skipped.append(str(err))
            continue
        images.append(img)
        masks.append(mask)
        names.append(key)
    if not names:
        raise DataError(f"{folder}: every image/mask pair is bad ({len(pairs)} skipped)")
    return Split(tuple(images), tuple(masks), tuple(names), ("",) * len(names))


def detect_layout(folder: Path) -> str:
    """The layout (a key of `LAYOUTS`) whose image files ``folder`` holds."""
    stems = [(_split_name(p) or ("", ""))[0] for p in folder.glob("*")]
    for layout, (img_sfx, _) in LAYOUTS.items():
        if img_sfx and any(stem.endswith(img_sfx) for stem in stems):
            return layout
    if any(stem.endswith("_masks") for stem in stems):
        return "plain"
    raise DataError(
        f"{folder}: found neither Cellpose ('*_img.png' or '*.png' + '*_masks.png') nor paper ('*_IM.tif' + '*_GT.tif') files; "
        "set layout = \"suffix\" with image_suffix and mask_suffix"
    )


@register_domain(
    "folder",
    description="a user's own train/ and test/ folders of image/mask pairs (cellpose, paper or custom suffixes)",
    reference="Cellpose training layout; MMV-Lab/biomedseg-efficiency layout",
)
def load_folder(
    path: str | Path = "",
    *,
    seed: int = 0,
    layout: str = "auto",
    image_suffix: str = "",
    mask_suffix: str = "",
    train_dir: str = "train",
    test_dir: str = "test",
    skip_bad: bool = False,
    name: str = "folder",
    diameter: float = 0.0,
    resplit: bool = False,
    holdout: float = 0.0,
) -> Domain:
    """Real images from ``path``/train and ``path``/test (files are read in sorted order).

    ``diameter``: the median object diameter of these images in px, if known (0: each image's is
    measured from its mask); images are rescaled from it to the spec's ``data.diameter``.

    ``resplit``: false (the default): train/ is the train split and test/ the test split, and
    ``seed`` is unused. True: the pairs of train/ and test/ are pooled (train/'s then test/'s,
    each in sorted order; skipped pairs left out) and ``numpy.random.default_rng(seed).choice``
    draws, without replacement, as many of them as test/ holds for the test split; the rest, in
    pool order, is the train split. ``seed`` is the run's data seed, so the same seed gives the
    same split and every pair is in exactly one split. Names become ``<train_dir>/<stem>`` and
    ``<test_dir>/<stem>`` (the folder each pair came from), since a stem may be in both.

    ``holdout`` (0 < holdout < 1): ``path`` is one flat folder of pairs, as a Cellpose user keeps them
    (no ``train_dir``/``test_dir``); ``round(holdout * pairs)`` of them (at least one, never all)
    drawn by ``numpy.random.default_rng(seed).choice`` are the test split, the rest (in sorted order)
    the train split; ``seed`` is the run's data seed."""
    if not str(path):
        raise DataError(f"domain '{name}': kind 'folder' needs a path")
    root = expand_user(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    if holdout:
        return _held_out(root, name, seed, layout, image_suffix, mask_suffix, skip_bad, diameter, holdout, train_dir, test_dir)
    train, test = root / train_dir, root / test_dir
    for sub in (train, test):
        if not sub.is_dir():
            raise DataError(f"{sub}: no such folder (a domain folder holds '{train_dir}/' and '{test_dir}/')")
    sfx = _suffixes(root, train, layout, image_suffix, mask_suffix)
    skipped: list[str] | None = [] if skip_bad else None
    splits = [read_split(sub, *sfx, skipped) for sub in (train, test)]
    if diameter > 0:
        splits = [replace(sp, diameters=(float(diameter),) * len(sp)) for sp in splits]
    if resplit:
        splits = resplit_pairs(splits[0], splits[1], seed, (train_dir, test_dir))
    _check_disjoint(root, *splits)
    return Domain(name, *splits, tuple(skipped or ()))


def _suffixes(root: Path, folder: Path, layout: str, image_suffix: str, mask_suffix: str) -> tuple[str, str]:
    """(image suffix, mask suffix) of ``layout`` for the domain at ``root``; "auto" looks into ``folder``."""
    if layout == "suffix":
        if not mask_suffix:
            raise DataError(f"{root}: layout 'suffix' needs mask_suffix (and usually image_suffix)")
        return image_suffix, mask_suffix
    if layout == "auto":
        return LAYOUTS[detect_layout(folder)]
    if layout in LAYOUTS:
        return LAYOUTS[layout]
    raise DataError(f"{root}: unknown layout '{layout}'; expected auto, {', '.join(LAYOUTS)} or suffix")


def _held_out(root: Path, name: str, seed: int, layout: str, image_suffix: str, mask_suffix: str, skip_bad: bool,
              diameter: float, holdout: float, train_dir: str, test_dir: str) -> Domain:
    """A flat folder split by ``holdout`` (see `load_folder`)."""
    for sub in (train_dir, test_dir):
        if (root / sub).is_dir():
            raise DataError(f"{root}: holds {sub}/ already; holdout splits a flat folder of pairs (leave holdout out to use "
                            f"its {train_dir}/ and {test_dir}/)")
    if not 0 < holdout < 1:
        raise DataError(f"domain '{name}': holdout must be a share in (0, 1), got {holdout:g}")
    skipped: list[str] | None = [] if skip_bad else None
    pool = read_split(root, *_suffixes(root, root, layout, image_suffix, mask_suffix), skipped)
    if diameter > 0:
        pool = replace(pool, diameters=(float(diameter),) * len(pool))
    n = len(pool)
    if n < 2:
        raise DataError(f"{root}: {n} image/mask pair; holdout needs at least 2 (one to train on, one held out to score)")
    held = np.zeros(n, bool)
    held[np.random.default_rng(seed).choice(n, size=min(n - 1, max(1, round(holdout * n))), replace=False)] = True

    def take(keep: np.ndarray) -> Split:
        idx = np.flatnonzero(keep)
        return Split(*(tuple(getattr(pool, f)[i] for i in idx) if getattr(pool, f) else () for f in ("images", "masks", "names", "styles", "diameters")))

    train, test = take(~held), take(held)
    _check_disjoint(root, train, test)
    return Domain(name, train, test, tuple(skipped or ()))


def _check_disjoint(root: Path, train: Split, test: Split) -> None:
    """Refuse a test split that holds a training image (the same pixels and mask, whatever the file
    names or folders: ``train_dir = "test"``, a copy under another name): its scores would measure
    what the network memorised, not how it segments."""
    import hashlib

    def key(image: np.ndarray, mask: np.ndarray) -> bytes:
        h = hashlib.sha256(str(image.shape).encode())
        h.update(np.ascontiguousarray(image).tobytes())
        h.update(np.ascontiguousarray(mask).tobytes())
        return h.digest()

    seen = {key(im, m): n for im, m, n in zip(train.images, train.masks, train.names)}
    for im, m, n in zip(test.images, test.masks, test.names):
        if key(im, m) in seen:
            raise DataError(f"{root}: test image {quoted(n)!r} is training image {quoted(seen[key(im, m)])!r} (same pixels and "
                            "mask); a test split must hold no training image: give train_dir and test_dir folders of different images")


def resplit_pairs(train: Split, test: Split, seed: int, dirs: tuple[str, str] = ("train", "test")) -> list[Split]:
    """[train, test] drawn anew from the pairs of both: a test split of ``len(test)`` pairs chosen
    by ``numpy.random.default_rng(seed)`` from the pool (``train``'s pairs, then ``test``'s), the
    rest as train, both in pool order; names are prefixed with the folder (``dirs``) they came from."""
    n = len(train) + len(test)
    pool_names = tuple(f"{dirs[0]}/{k}" for k in train.names) + tuple(f"{dirs[1]}/{k}" for k in test.names)
    chosen = np.zeros(n, bool)
    chosen[np.random.default_rng(seed).choice(n, size=len(test), replace=False)] = True

    def take(keep: np.ndarray) -> Split:
        idx = np.flatnonzero(keep)

        def pick(field: str) -> tuple:
            a, b = getattr(train, field), getattr(test, field)
            # diameters are stated for every pair or for none
            return tuple((a + b)[i] for i in idx) if len(a) == len(train) and len(b) == len(test) else ()

        return Split(pick("images"), pick("masks"), tuple(pool_names[i] for i in idx), pick("styles"), pick("diameters"))

    return [take(~chosen), take(chosen)]


load_folder.bounds = {"diameter": (0, 10_000), "holdout": (0, 0.95)}  # checked where a spec is read
