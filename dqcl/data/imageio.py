"""Reading microscopy images and instance masks, with the checks a user's folder needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.provenance import check_file_size
from ..errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "read_image", "read_mask", "to_gray", "normalize"]

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
MAX_PIXELS = 2**28  # 16,384 x 16,384: larger images are refused before they are decoded
MAX_VALUES = 4 * MAX_PIXELS  # every axis counted (channels, z, time): a TIFF of many small axes is refused too


def _header_shape(path: Path) -> tuple[int, ...]:
    """Image dimensions from the file's header, without decoding the pixels."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tf:
            return tuple(tf.series[0].shape) if tf.series else ()
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # dqcl applies its own limit below, with a clearer message
    with Image.open(path) as im:
        return (im.size[1], im.size[0])


def _read(path: Path) -> np.ndarray:
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path}: broken symbolic link or symbolic-link loop")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    check_file_size(path)
    try:
        shape = _header_shape(path)
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read as an image ({type(exc).__name__}: {exc})") from None
    plane = sorted(shape)[-2:] if len(shape) >= 2 else shape
    if shape and (float(np.prod(plane, dtype=np.float64)) > MAX_PIXELS or float(np.prod(shape, dtype=np.float64)) > MAX_VALUES):
        raise DataError(f"{path}: image of shape {shape} is over dqcl's limit of {MAX_PIXELS:,} pixels "
                        f"({MAX_VALUES:,} values over every axis); tile it first")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path))
        from skimage import io

        return np.asarray(io.imread(path))
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except Exception as exc:  # every decoder has its own exception types
        raise DataError(f"{path}: cannot read as an image ({type(exc).__name__}: {exc})") from None


def to_gray(image: np.ndarray, path: Path | str = "image") -> np.ndarray:
    """2-D float32 image; RGB(A) becomes the mean of its colour channels (Cellpose chan=0)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3].astype(np.float32).mean(axis=-1)
    elif img.ndim == 3 and img.shape[0] in (3, 4) and img.shape[-1] > 4:
        img = img[:3].astype(np.float32).mean(axis=0)
    if img.ndim != 2:
        raise DataError(f"{path}: expected a 2-D image (or RGB), got shape {tuple(image.shape)}")
    return img.astype(np.float32)


def normalize(image: np.ndarray, lower: float = 1.0, upper: float = 99.0) -> np.ndarray:
    """Percentile normalisation as in Cellpose (`normalize99`): lower -> 0, upper -> 1."""
    lo, hi = np.percentile(image, [lower, upper])
    if hi - lo < 1e-6:
        return np.zeros_like(image, dtype=np.float32)
    return ((image - lo) / (hi - lo)).astype(np.float32)


def read_image(path: Path) -> np.ndarray:
    """A 2-D float32 image, normalised to the 1st-99th percentile range; 8/16-bit and RGB alike. A float image
    with a NaN or infinite pixel is refused, naming the file (its percentiles, and every patch cut from it, would be NaN)."""
    image = to_gray(_read(path), path)
    if not np.isfinite(image).all():
        bad = int(np.size(image) - np.count_nonzero(np.isfinite(image)))
        raise DataError(f"{path}: {bad} of its {image.size} pixels are NaN or infinite; an image must hold finite values")
    return normalize(image)


def read_mask(path: Path) -> np.ndarray:
    """A 2-D int32 instance mask (0 = background); integral floats are accepted, nothing else."""
    raw = _read(path)
    if raw.ndim == 3 and raw.shape[-1] in (3, 4) and np.all(raw[..., :3] == raw[..., :1]):
        raw = raw[..., 0]  # a label image saved as gray-in-RGB
    if raw.ndim != 2:
        raise DataError(f"{path}: expected a 2-D instance mask, got shape {tuple(raw.shape)}")
    if raw.dtype.kind == "b":
        raw = raw.astype(np.int32)
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
            raise DataError(f"{path}: mask holds non-integer values (dtype {raw.dtype}); expected integer labels")
    elif raw.dtype.kind not in "iu":
        raise DataError(f"{path}: mask has dtype {raw.dtype}; expected integer labels")
    if raw.size and raw.min() < 0:
        raise DataError(f"{path}: mask holds negative labels (min {raw.min()})")
    if raw.size and raw.max() > np.iinfo(np.int32).max:
        raise DataError(f"{path}: mask labels exceed int32")
    return raw.astype(np.int32)
