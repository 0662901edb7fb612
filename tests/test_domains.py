from collections import Counter

import numpy as np
import pytest

from dqcl.data.builtin import BUILTIN_STYLES
from dqcl.data.domains import DOMAINS, list_domains
from dqcl.errors import RegistryError

BUILTIN = ["brightfield", "cyto", "histo", "nuclei"]


def test_registry_lists_builtin_domains_and_folder():
    assert set(BUILTIN) | {"folder"} <= set(list_domains())
    assert list_domains("*o") == ["cyto", "histo"]


def test_unknown_domain_suggests_the_close_name():
    with pytest.raises(RegistryError, match="did you mean 'histo'"):
        DOMAINS.get("hist")


@pytest.mark.parametrize("kind", BUILTIN)
def test_builtin_domain_contract(kind):
    """Deterministic per seed, grayscale float images with int32 instance masks of the same shape."""
    make = DOMAINS.get(kind).factory
    a = make(seed=3, n_train=6, n_test=2, size=96)
    b = make(seed=3, n_train=6, n_test=2, size=96)
    c = make(seed=4, n_train=6, n_test=2, size=96)
    assert len(a.train) == 6 and len(a.test) == 2
    for img, mask in zip(a.train.images + a.test.images, a.train.masks + a.test.masks):
        assert img.shape == mask.shape == (96, 96)
        assert img.dtype == np.float32 and mask.dtype == np.int32
        assert mask.min() == 0 and mask.max() >= 1
    assert all(np.array_equal(x, y) for x, y in zip(a.train.images, b.train.images))
    assert all(np.array_equal(x, y) for x, y in zip(a.train.masks, b.train.masks))
    assert not np.array_equal(a.train.images[0], c.train.images[0])
    # more training images must not change the test set
    d = make(seed=3, n_train=2, n_test=2, size=96)
    assert all(np.array_equal(x, y) for x, y in zip(a.test.images, d.test.images))


@pytest.mark.parametrize("kind", BUILTIN)
def test_builtin_domains_are_long_tailed_mixtures(kind):
    styles = BUILTIN_STYLES[kind]
    assert len(styles) >= 4
    dom = DOMAINS.get(kind).factory(seed=0, n_train=40, n_test=1, size=48)
    counts = Counter(dom.train.styles)
    assert set(counts) == {s.name for s in styles}  # every rare style shows up
    common, n_common = counts.most_common(1)[0]
    assert common == styles[0].name and n_common >= 0.35 * 40
    assert min(counts.values()) <= 0.15 * 40


@pytest.mark.parametrize("kind,bright_cells", [("cyto", True), ("nuclei", True), ("histo", False), ("brightfield", False)])
def test_cells_have_the_polarity_the_domain_claims(kind, bright_cells):
    dom = DOMAINS.get(kind).factory(seed=0, n_train=4, n_test=1, size=128)
    diffs = [img[m > 0].mean() - img[m == 0].mean() for img, m in zip(dom.train.images, dom.train.masks)]
    assert (np.mean(diffs) > 0.1) if bright_cells else (np.mean(diffs) < -0.1)


def test_histo_is_denser_and_smaller_than_cyto():
    cyto = DOMAINS.get("cyto").factory(seed=0, n_train=10, n_test=1, size=128)
    histo = DOMAINS.get("histo").factory(seed=0, n_train=10, n_test=1, size=128)
    mean_area = lambda d: np.mean([np.mean(np.bincount(m.ravel())[1:]) for m in d.train.masks])
    count = lambda d: np.mean([m.max() for m in d.train.masks])
    assert mean_area(histo) < 0.5 * mean_area(cyto)
    assert count(histo) > 2 * count(cyto)


def test_gallery_writes_a_png(tmp_path):
    from dqcl.data.gallery import write_gallery

    out = write_gallery(DOMAINS.get("histo").factory(seed=0, n_train=4, n_test=1, size=64), tmp_path / "g.png", n=4)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
