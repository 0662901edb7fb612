import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

warnings.filterwarnings("ignore")
# the suite compares runs bit for bit: their thread count must not follow the machine's load
# (dqcl.core.cores.run_threads; tests/test_cores.py tests the choice itself)
os.environ.setdefault("DQCL_THREADS", "keep")
logging.getLogger("cellpose").setLevel(logging.ERROR)

TINY_SPEC = """
[study]
name = "tiny"
seeds = [0]
orderings = [["cyto", "histo"]]
device = "cpu"

[data]
patch_size = 48
stride = 48
cache_dir = "{cache}"

[domains.cyto]
n_train = 2
n_test = 1
size = 96

[domains.histo]
n_train = 2
n_test = 1
size = 96

[model]
widths = [8, 16, 32, 64]

[train]
epochs = 1
batch_size = 4

[eval]
niter = 50
{strategies}
"""


def tiny_spec_text(tmp_path: Path, strategies: str = "[strategies.naive]\n[strategies.replay]\nrate = 0.5\n") -> str:
    return TINY_SPEC.format(cache=(tmp_path / "cache").as_posix(), strategies=strategies)


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(tiny_spec_text(tmp_path))
    return p


def write_pair(folder: Path, stem: str, image: np.ndarray, mask: np.ndarray, img_sfx="_img", mask_sfx="_masks", ext=".png"):
    from skimage import io
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    for arr, sfx in ((image, img_sfx), (mask, mask_sfx)):
        path = folder / f"{stem}{sfx}{ext}"
        if ext in (".tif", ".tiff"):
            tifffile.imwrite(path, arr)
        else:
            io.imsave(path, arr, check_contrast=False)
    return folder


def small_domain_arrays(n: int = 2, size: int = 64, seed: int = 0):
    """(uint16 images, uint16 masks) from the built-in nuclei domain, as files would hold them."""
    from dqcl.data.domains import DOMAINS

    d = DOMAINS.get("nuclei").factory(seed=seed, n_train=n, n_test=1, size=size, generator=1)  # squares of `size` px
    imgs = [(np.clip(i, 0, 1.5) * 40000).astype(np.uint16) for i in d.train.images]
    return imgs, [m.astype(np.uint16) for m in d.train.masks]


def resumed_after_a_kill(cfg, path: Path) -> dict:
    """Run ``cfg`` with a checkpoint at ``path``, stop it as a kill would once the first checkpoint is saved,
    then run it again from that checkpoint; returns the resumed run's result."""
    from dqcl.train.run import run_one

    class Stop(Exception):
        pass

    def stop(msg):
        if msg.startswith("checkpoint saved"):
            raise Stop

    with pytest.raises(Stop):
        run_one(cfg, on_step=stop, checkpoint=path)
    return run_one(cfg, checkpoint=path)
