"""Embeddings of image patches, for coreset selection (a registry of embedders).

- ``mae``: timm's ``vit_base_patch16_224.mae``, mean-pooled tokens (as the paper's code
  does with ViT-MAE's last hidden state); the gray patch is replicated to 3 channels,
  resized to 224 and ImageNet-normalised. Weights come from a local file or an existing
  Hugging Face cache; without either it stops at once and says how to provide them.
- ``style``: the Cellpose network's own style vector (the pooled bottleneck of CPnet), from
  the model being trained or a checkpoint (a CellposeNet one). For a CPSAM network being
  trained (``model.arch = "cpsam"``) its `style` is the mean-pooled encoder tokens.
- ``stats``: cheap hand-made features: intensity histogram and moments, texture, and mask
  morphology (cell count, size distribution, density).

`embed` caches results on disk keyed by the embedder, its settings and the patch bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..core.atomic import save_npy
from ..errors import DqclError

if TYPE_CHECKING:  # torch is imported where an embedder needs it: the `stats` embedder and `dqcl select` do not
    import torch

__all__ = ["EMBEDDERS", "embed", "embed_options", "mae_model", "MAE_NAME"]

MAE_NAME = "vit_base_patch16_224.mae"
_HF_REPO = "timm/vit_base_patch16_224.mae"


def _batches(images: np.ndarray, size: int):
    import torch

    for i in range(0, len(images), size):
        yield torch.from_numpy(np.ascontiguousarray(images[i : i + size], dtype=np.float32))


def _find_cached_mae() -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - timm depends on it
        return None
    cache_dir = os.environ.get("HF_HUB_CACHE") or None  # read now, so a changed environment counts
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(_HF_REPO, filename, cache_dir=cache_dir)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def _load_state(path: Path) -> dict[str, "torch.Tensor"]:

    if not path.is_file():
        raise DqclError(f"{path}: MAE weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises its own SafetensorError, or OSError
            raise DqclError(f"{path}: cannot read MAE weights ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else 'damaged'})") from None
    else:
        from ..cpnet.model import read_weights

        state = read_weights(path, "MAE weights")
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # the MAE authors' checkpoints wrap the weights
    if not isinstance(state, dict):
        raise DqclError(f"{path}: MAE weights must be a state dict")
    return state


def mae_model(weights: str | Path | None = None) -> "torch.nn.Module":
    """timm's MAE ViT-B/16 with pretrained weights from ``weights`` or the local HF cache; never downloads."""
    import timm

    path = Path(weights) if weights else _find_cached_mae()
    if path is None:
        raise DqclError(
            f"MAE weights for '{MAE_NAME}' not found: pass --mae-weights PATH (or embedder_weights in the spec) "
            f"pointing at its model.safetensors / .pth, or place it in the Hugging Face cache as {_HF_REPO}; "
            "dqcl never downloads at run time"
        )
    model = timm.create_model(MAE_NAME, pretrained=False, num_classes=0)
    state = _load_state(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own) - {"head.weight", "head.bias"})
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} of another shape (e.g. {wrong[0]})")
        raise DqclError(f"{path}: weights do not match {MAE_NAME}: " + ", ".join(parts))
    model.load_state_dict({k: state[k] for k in own})
    return model.eval()


def _mae(images: np.ndarray, masks: np.ndarray | None, *, weights: str = "", batch_size: int = 32, device: str = "cpu") -> np.ndarray:
    import torch

    model = mae_model(weights or None).to(device)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for x in _batches(images, batch_size):
            x = x.clamp(0, 1).expand(-1, 3, -1, -1)
            x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            tokens = model.forward_features(((x - mean) / std).to(device))
            out.append(tokens.mean(dim=1).float().cpu().numpy())
    return np.concatenate(out)


def _style(images: np.ndarray, masks: np.ndarray | None, *, model: "torch.nn.Module | None" = None, checkpoint: str = "", widths: tuple[int, ...] = (32, 64, 128, 256), batch_size: int = 32) -> np.ndarray:

    from ..cpnet.model import CellposeNet

    if model is None:
        if not checkpoint:
            raise DqclError("the 'style' embedder needs a model or a checkpoint (a CellposeNet state dict)")
        from ..cpnet.model import read_weights

        model = CellposeNet(widths)
        state = read_weights(checkpoint, "a CellposeNet checkpoint")
        try:
            model.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError):
            raise DqclError(f"{checkpoint}: not a CellposeNet checkpoint with widths {list(widths)} "
                            "(its tensors do not fit that network)") from None
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    try:
        for x in _batches(images, batch_size):
            out.append(model.style(x.to(device)).float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out)


def _stats(images: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
    """Intensity (16-bin histogram, mean, std), texture (gradient, Laplacian) and mask morphology."""
    from scipy import ndimage as ndi

    feats = []
    for i, img in enumerate(images):
        im = np.asarray(img, np.float32).reshape(img.shape[-2:])
        hist = np.histogram(np.clip(im, 0, 1), bins=16, range=(0, 1))[0] / im.size
        gy, gx = np.gradient(im)
        grad = np.sqrt(gx**2 + gy**2)
        lap = ndi.laplace(im)
        f = [*hist, im.mean(), im.std(), grad.mean(), grad.std(), np.abs(lap).mean(), lap.std()]
        if masks is not None:
            m = np.asarray(masks[i]).astype(np.int64)
            areas = np.bincount(m.ravel())[1:]
            areas = areas[areas > 0]
            count = len(areas)
            f += [
                count / 100.0,
                (areas.mean() if count else 0.0) / 1000.0,
                (areas.std() if count else 0.0) / 1000.0,
                float((m > 0).mean()),
                (np.median(areas) if count else 0.0) / 1000.0,
            ]
        feats.append(f)
    return np.asarray(feats, dtype=np.float32)


EMBEDDERS: dict[str, Callable[..., np.ndarray]] = {"mae": _mae, "style": _style, "stats": _stats}


def embed_options(embedder: str, weights: str = "", model: "torch.nn.Module | None" = None) -> dict[str, Any]:
    """The options `embed` takes for an embedder setting: for ``style`` the network being trained
    (``model``) or else a checkpoint file (``weights``); for ``mae`` a weights file, if one is named."""
    if embedder == "style":
        return {"model": model} if model is not None else {"checkpoint": weights}
    if embedder == "mae" and weights:
        return {"weights": weights}
    return {}


def _key(name: str, images: np.ndarray, masks: np.ndarray | None, opts: dict[str, Any]) -> str:
    h = hashlib.sha256(f"{name}|{sorted(opts.items())}|{images.shape}|{images.dtype}".encode())
    h.update(np.ascontiguousarray(images).tobytes())
    if masks is not None:
        h.update(np.ascontiguousarray(masks).tobytes())
    return h.hexdigest()[:32]


def embed(name: str, images: np.ndarray, masks: np.ndarray | None = None, cache_dir: Path | None = None, **opts: Any) -> np.ndarray:
    """(N, D) float32 embeddings of patches (N, 1, H, W) or (N, H, W).

    A cache entry is used for ``mae`` and ``stats`` (fixed functions of the pixels); the
    ``style`` of a model that is being trained changes with it and is never cached.
    """
    if name not in EMBEDDERS:
        raise DqclError(f"unknown embedder '{name}'; known: {', '.join(EMBEDDERS)}")
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[:, None]
    cacheable = cache_dir is not None and not (name == "style" and "model" in opts)
    if cacheable:
        path = Path(cache_dir) / f"embed-{name}-{_key(name, images, masks, {k: str(v) for k, v in opts.items()})}.npy"
        if path.is_file():
            try:
                return np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                pass
    feats = EMBEDDERS[name](images, masks, **opts).astype(np.float32)
    if cacheable:
        save_npy(path, feats)
    return feats
