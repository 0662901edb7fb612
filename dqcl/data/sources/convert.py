"""Converters from public datasets' formats to dqcl's folder layout.

Every converter writes ``OUT/train`` and ``OUT/test`` holding ``STEM_img.EXT`` (the image,
copied or, for array formats, written as TIFF) beside ``STEM_masks.tif`` (uint16/uint32
instance labels, 0 = background). Where a dataset has no test split, a fixed fraction of it
becomes the test split, chosen by a hash of each image's name (the same whatever the order
or the machine).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import DataError
from ..imageio import IMAGE_EXTENSIONS

__all__ = ["CONVERTERS", "convert"]


def _score(stem: str) -> float:
    return int(hashlib.sha1(stem.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _test_set(stems: list[str], fraction: float) -> set[str]:
    """The names that form the test split: those whose name hash falls under ``fraction``; at least
    one image in each split where there are two or more."""
    test = {s for s in stems if _score(s) < fraction}
    ranked = sorted(stems, key=_score)
    if not test and len(stems) >= 2:
        test = {ranked[0]}
    if len(test) == len(stems) and len(stems) >= 2:
        test.discard(ranked[-1])
    return test


def _safe_stem(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)


def _write_pair(out: Path, split: str, stem: str, image: Path | np.ndarray, labels: np.ndarray) -> None:
    import tifffile

    folder = out / split
    folder.mkdir(parents=True, exist_ok=True)
    stem = _safe_stem(stem)
    if isinstance(image, Path):
        shutil.copyfile(image, folder / f"{stem}_img{image.suffix.lower()}")
    else:
        tifffile.imwrite(folder / f"{stem}_img.tif", np.asarray(image, np.float32))
    labels = np.asarray(labels)
    dtype = np.uint16 if labels.max(initial=0) < 2**16 else np.uint32
    tifffile.imwrite(folder / f"{stem}_masks.tif", labels.astype(dtype))


def _images_in(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}


def cellpose_pairs(src: Path, out: Path, **_) -> None:
    """Cellpose's own zips: train/ and test/ of NNN_img.png + NNN_masks.png, copied as they are."""
    for split in ("train", "test"):
        folder = src / split
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (a Cellpose dataset unzips to train/ and test/)")
        (out / split).mkdir(parents=True, exist_ok=True)
        n = 0
        for p in sorted(folder.iterdir()):
            if p.is_file() and ("_img" in p.stem or "_masks" in p.stem):
                shutil.copyfile(p, out / split / p.name)
                n += 1
        if n == 0:
            raise DataError(f"{folder}: no *_img / *_masks files")


def instance_folders(src: Path, out: Path, test_fraction: float = 0.2, **_) -> None:
    """DSB 2018 / BBBC038: ID/images/ID.png and ID/masks/*.png, one binary PNG per object."""
    from ..imageio import _read

    items = sorted(p.parent for p in src.rglob("images") if p.is_dir() and (p.parent / "masks").is_dir())
    if not items:
        raise DataError(f"{src}: no ID/images + ID/masks folders found (the BBBC038 layout)")
    test = _test_set([i.name for i in items], test_fraction)
    for item in items:
        imgs = list(_images_in(item / "images").values())
        if len(imgs) != 1:
            raise DataError(f"{item / 'images'}: expected one image, found {len(imgs)}")
        labels = None
        for k, mpath in enumerate(_images_in(item / "masks").values(), start=1):
            m = _read(mpath)
            m = m[..., 0] if m.ndim == 3 else m
            labels = np.zeros(m.shape, np.int32) if labels is None else labels
            if m.shape != labels.shape:
                raise DataError(f"{mpath}: object mask shape {m.shape} differs from the others {labels.shape}")
            labels[m > 0] = k
        if labels is None:
            raise DataError(f"{item / 'masks'}: no object masks")
        _write_pair(out, "test" if item.name in test else "train", item.name, imgs[0], labels)


def _polygon_labels(shape: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    from skimage.draw import polygon as fill

    labels = np.zeros(shape, np.int32)
    for k, xy in enumerate(polygons, start=1):
        if len(xy) < 3:
            continue
        rr, cc = fill(xy[:, 1], xy[:, 0], shape)
        labels[rr, cc] = k
    return labels


def coco(src: Path, out: Path, train: str = "", test: str = "", **_) -> None:
    """COCO JSON instance annotations (LIVECell): polygons drawn into label masks."""
    index = {p.name: p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
    for split, name in (("train", train), ("test", test)):
        found = list(src.rglob(name))
        if not found:
            raise DataError(f"{src}: annotation file {name} not found")
        try:
            doc = json.loads(found[0].read_text(encoding="utf-8"))
            images = {im["id"]: im for im in doc["images"]}
            anns = doc["annotations"]
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{found[0]}: not COCO instance annotations ({type(err).__name__}: {err})") from None
        by_image: dict = {}
        for a in anns:
            by_image.setdefault(a.get("image_id"), []).append(a)
        for iid, im in sorted(images.items(), key=lambda kv: kv[1]["file_name"]):
            path = index.get(Path(im["file_name"]).name)
            if path is None:
                raise DataError(f"{found[0]}: image {im['file_name']} is not in the download")
            polys = []
            for a in by_image.get(iid, []):
                seg = a.get("segmentation")
                if not isinstance(seg, list):
                    raise DataError(f"{found[0]}: annotation {a.get('id')} is run-length encoded; only polygons are supported")
                polys += [np.asarray(s, np.float64).reshape(-1, 2) for s in seg]
            _write_pair(out, split, Path(im["file_name"]).stem, path, _polygon_labels((im["height"], im["width"]), polys))


def npz(src: Path, out: Path, train: str = "", test: str = "", label: int = 0, **_) -> None:
    """TissueNet: X (N, H, W, C) images and y (N, H, W, L) labels; images become the channel mean."""
    for split, name in (("train", train), ("test", test)):
        found = list(src.rglob(name))
        if not found:
            raise DataError(f"{src}: {name} not found")
        try:
            with np.load(found[0], allow_pickle=False) as data:
                X, y = data["X"], data["y"]
        except (ValueError, KeyError, OSError) as err:
            raise DataError(f"{found[0]}: not a TissueNet array file ({type(err).__name__}: {err})") from None
        if X.ndim != 4 or y.ndim != 4 or X.shape[:3] != y.shape[:3]:
            raise DataError(f"{found[0]}: expected X (N, H, W, C) and y (N, H, W, L), got {X.shape} and {y.shape}")
        for i in range(len(X)):
            _write_pair(out, split, f"{Path(name).stem}_{i:05d}", X[i].astype(np.float32).mean(-1), y[i, ..., label])


def polygon_xml(src: Path, out: Path, **_) -> None:
    """MoNuSeg: Aperio ImageScope XML regions (Vertices/Vertex X, Y) beside the tissue images."""
    import xml.etree.ElementTree as ET

    from ..imageio import _read

    for split in ("train", "test"):
        folder = src / split
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (put the training data in train/ and the test data in test/)")
        images = {p.stem: p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
        xmls = sorted(folder.rglob("*.xml"))
        if not xmls:
            raise DataError(f"{folder}: no .xml annotation files")
        for xml in xmls:
            if xml.stem not in images:
                raise DataError(f"{xml}: no image named {xml.stem}.* beside it")
            try:
                root = ET.parse(xml).getroot()
            except ET.ParseError as err:
                raise DataError(f"{xml}: malformed XML ({err})") from None
            polys = []
            for region in root.iter("Region"):
                pts = [(float(v.get("X")), float(v.get("Y"))) for v in region.iter("Vertex")]
                polys.append(np.asarray(pts, np.float64))
            shape = _read(images[xml.stem]).shape[:2]
            _write_pair(out, split, xml.stem, images[xml.stem], _polygon_labels(shape, polys))


def organ_folders(src: Path, out: Path, images: str = "tissue images", masks: str = "label masks modify",
                  test_fraction: float = 0.2, **_) -> None:
    """NuInsSeg: ORGAN/<images>/*.png beside ORGAN/<masks>/*.tif label masks."""
    from ..imageio import read_mask

    organs = sorted(p.parent for p in src.rglob(images) if p.is_dir() and (p.parent / masks).is_dir())
    if not organs:
        raise DataError(f"{src}: no ORGAN/'{images}' + ORGAN/'{masks}' folders found")
    pairs = []
    for organ in organs:
        imgs, msks = _images_in(organ / images), _images_in(organ / masks)
        for stem, img in imgs.items():
            if stem not in msks:
                raise DataError(f"{img}: no label mask {stem}.* in {organ / masks}")
            pairs.append((f"{organ.name}_{stem}", img, msks[stem]))
    test = _test_set([p[0] for p in pairs], test_fraction)
    for name, img, mask in pairs:
        _write_pair(out, "test" if name in test else "train", name, img, read_mask(mask))


CONVERTERS: dict[str, Callable[..., None]] = {
    "cellpose_pairs": cellpose_pairs,
    "instance_folders": instance_folders,
    "coco": coco,
    "npz": npz,
    "polygon_xml": polygon_xml,
    "organ_folders": organ_folders,
}


def convert(kind: str, src: Path, out: Path, **options) -> None:
    CONVERTERS[kind](Path(src), Path(out), **options)
