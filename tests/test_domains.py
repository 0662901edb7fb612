from collections import Counter

import numpy as np
import pytest

from dqcl.data.builtin import BUILTIN_LOOKS, BUILTIN_STYLES, REFERENCE_DIAMETER
from dqcl.data.domains import DOMAINS, list_domains
from dqcl.data.microscopy import MODALITIES
from dqcl.data.scale import median_diameter, to_diameter
from dqcl.errors import RegistryError

BUILTIN = ["brightfield", "cyto", "cytoplasm", "histo", "nuclei"]
SPECIALISTS = ["brightfield", "cytoplasm", "histo", "nuclei"]


def test_registry_lists_builtin_domains_and_folder():
    assert set(BUILTIN) | {"folder"} <= set(list_domains())
    assert list_domains("*o") == ["cyto", "histo"]


def test_unknown_domain_suggests_the_close_name():
    with pytest.raises(RegistryError, match="did you mean 'histo'"):
        DOMAINS.get("hist")


@pytest.mark.parametrize("kind", BUILTIN)
def test_builtin_domain_contract(kind):
    """Deterministic per seed, grayscale float images with int32 instance masks of the same shape,
    about ``size`` px once rescaled to 30 px objects."""
    make = DOMAINS.get(kind).factory
    a = make(seed=3, n_train=6, n_test=2, size=96)
    b = make(seed=3, n_train=6, n_test=2, size=96)
    c = make(seed=4, n_train=6, n_test=2, size=96)
    assert len(a.train) == 6 and len(a.test) == 2
    for img, mask in zip(a.train.images + a.test.images, a.train.masks + a.test.masks):
        assert img.shape == mask.shape and img.shape[0] == img.shape[1]
        assert img.dtype == np.float32 and mask.dtype == np.int32
        assert mask.min() == 0 and mask.max() >= 1
        scaled, _, _ = to_diameter(img, mask, REFERENCE_DIAMETER)
        assert 0.5 * 96 <= scaled.shape[0] <= 2.0 * 96  # objects cut by the border or by neighbours measure smaller
    assert all(np.array_equal(x, y) for x, y in zip(a.train.images, b.train.images))
    assert all(np.array_equal(x, y) for x, y in zip(a.train.masks, b.train.masks))
    assert not np.array_equal(a.train.images[0], c.train.images[0])
    # more training images must not change the test set
    d = make(seed=3, n_train=2, n_test=2, size=96)
    assert all(np.array_equal(x, y) for x, y in zip(a.test.images, d.test.images))


@pytest.mark.parametrize("kind", BUILTIN)
def test_builtin_domains_are_long_tailed_mixtures(kind):
    looks = BUILTIN_LOOKS[kind]
    assert len(looks) >= 5 and abs(sum(x.weight for x in looks) - 1) < 1e-9
    dom = DOMAINS.get(kind).factory(seed=0, n_train=60, n_test=1, size=48)
    counts = Counter(dom.train.styles)
    assert set(counts) == {x.name for x in looks}  # every rare look shows up
    common, n_common = counts.most_common(1)[0]
    if kind != "cyto":  # the generalist's commonest modality is checked below; its looks are closer in share
        assert common == looks[0].name and n_common >= 0.35 * 60
    assert min(counts.values()) <= 0.1 * 60


def _dark(img: np.ndarray, mask: np.ndarray) -> bool:
    """Objects darker than the background around them (a ring of 4 px outside each), for most objects:
    measured locally, so that uneven illumination cannot flip it."""
    from scipy import ndimage as ndi

    diffs = []
    for label in range(1, int(mask.max()) + 1):
        obj = mask == label
        ring = ndi.binary_dilation(obj, iterations=4) & (mask == 0)
        if obj.any() and ring.any():
            diffs.append(img[obj].mean() - img[ring].mean())
    return bool(np.median(diffs) < 0)


def test_the_generalist_mixes_modalities_and_a_fifth_to_a_third_of_its_images_have_dark_objects():
    dom = DOMAINS.get("cyto").factory(seed=0, n_train=200, n_test=1, size=48)
    looks = {x.name: x for x in BUILTIN_LOOKS["cyto"]}
    dark = [_dark(i, m) for i, m in zip(dom.train.images, dom.train.masks)]
    assert 0.2 <= np.mean(dark) <= 1 / 3, np.mean(dark)
    assert dark == [looks[s].dark for s in dom.train.styles]  # the dark ones are the transmitted-light looks
    modalities = Counter(looks[s].modality for s in dom.train.styles)
    assert set(modalities) == set(MODALITIES)  # fluorescence, membranes, transmitted light, H&E, non-cells
    assert modalities.most_common(1)[0][0] == "fluo_cyto"  # fluorescent cytoplasm the largest share


@pytest.mark.parametrize("kind", SPECIALISTS)
def test_a_specialist_is_one_modality_of_one_polarity(kind):
    assert len({x.modality for x in BUILTIN_LOOKS[kind]}) == 1
    dom = DOMAINS.get(kind).factory(seed=0, n_train=40, n_test=1, size=64)
    dark = [_dark(i, m) for i, m in zip(dom.train.images, dom.train.masks)]
    assert len(set(dark)) == 1 and dark[0] == BUILTIN_LOOKS[kind][0].dark


def test_the_generalist_is_more_diverse_than_every_specialist():
    from dqcl.dq.diversity import domain_diversity

    scores = domain_diversity(BUILTIN, n_images=40, patch=64, diameter=16)
    assert all(scores["cyto"] > scores[k] for k in SPECIALISTS), scores


def test_generator_1_still_draws_the_data_of_runs_stored_before_generator_2():
    """A stored run's data manifest names its generator: 'generated:cyto' is dqcl 0.3's."""
    from dqcl.core.provenance import domain_manifest
    from dqcl.data.prepared import PreparedDomains

    assert domain_manifest("cyto", {}) == "generated:cyto@2"
    assert domain_manifest("cyto", {"generator": 1}) == "generated:cyto"
    old = PreparedDomains().domain("cyto", {"n_train": 2, "n_test": 1, "size": 64}, 0, "generated:cyto")
    again = DOMAINS.get("cyto").factory(seed=0, n_train=2, n_test=1, size=64, generator=1)
    new = DOMAINS.get("cyto").factory(seed=0, n_train=2, n_test=1, size=64)
    assert all(np.array_equal(x, y) for x, y in zip(old.train.images, again.train.images))
    assert old.train.styles[0] in {s.name for s in BUILTIN_STYLES["cyto"]}
    assert not np.array_equal(old.train.images[0], new.train.images[0])


def test_rescaling_brings_objects_to_the_asked_diameter():
    dom = DOMAINS.get("nuclei").factory(seed=1, n_train=4, n_test=1, size=128)
    for img, mask in zip(dom.train.images, dom.train.masks):
        scaled_img, scaled_mask, factor = to_diameter(img, mask, 16.0)
        assert scaled_img.shape == scaled_mask.shape
        assert abs(median_diameter(scaled_mask) - 16.0) < 1.5
        assert abs(factor - 16.0 / median_diameter(mask)) < 1e-6


def test_gallery_writes_a_png(tmp_path):
    from dqcl.data.gallery import write_gallery

    out = write_gallery(DOMAINS.get("histo").factory(seed=0, n_train=4, n_test=1, size=64), tmp_path / "g.png", n=4)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# What generator 2 draws at seed 0 (size 160; 3 train + 1 test image): image sides, objects per image,
# mean intensity and foreground share. Stored runs name their data only by 'generated:<kind>@2': a
# change to what the generator draws must come with a new generator version, or stored results
# would be served for data they were never trained on.
FINGERPRINT = {
    "brightfield": ([181, 143, 114, 136], [8, 12, 19, 11], 0.6617, 0.2717),
    "cyto": ([202, 94, 218, 180], [24, 10, 30, 28], 0.2257, 0.4439),
    "cytoplasm": ([246, 223, 275, 245], [11, 8, 11, 8], 0.1710, 0.2568),
    "histo": ([76, 82, 81, 64], [11, 16, 16, 12], 0.6069, 0.2825),
    "nuclei": ([113, 199, 124, 113], [9, 9, 8, 9], 0.1427, 0.2119),
}


@pytest.mark.parametrize("kind", sorted(FINGERPRINT))
def test_generator_2_draws_what_its_stored_runs_were_trained_on(kind):
    from dqcl.core.provenance import BUILTIN_GENERATOR

    assert BUILTIN_GENERATOR == 2, "a new generator version: record its fingerprint here"
    d = DOMAINS.get(kind).factory(seed=0, n_train=3, n_test=1, size=160)
    images, masks = d.train.images + d.test.images, d.train.masks + d.test.masks
    sides, counts, mean, share = FINGERPRINT[kind]
    assert [im.shape[0] for im in images] == sides and [int(m.max()) for m in masks] == counts, (
        f"{kind}: generator 2 draws other data than its stored runs had; bump BUILTIN_GENERATOR")
    assert abs(np.mean([im.mean() for im in images]) - mean) < 2e-3
    assert abs(np.mean([(m > 0).mean() for m in masks]) - share) < 2e-3
