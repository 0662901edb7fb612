import fastremap
import numpy as np
import pytest
from cellpose.metrics import average_precision
from scipy import ndimage as ndi

from dqcl.results.cl_metrics import cl_metrics
from dqcl.data.domains import DOMAINS
from dqcl.evaluation.metrics import METRICS, score_masks


def _perturbed_pairs():
    dom = DOMAINS.get("nuclei").factory(seed=1, n_train=4, n_test=1, size=96)
    rng = np.random.default_rng(0)
    for true in dom.train.masks:
        shifted = ndi.shift(true, (1, 2), order=0)
        eroded = np.where(ndi.grey_erosion(true, size=3) == true, true, 0)
        dropped = true.copy()
        dropped[np.isin(dropped, rng.choice(np.arange(1, true.max() + 1), true.max() // 3))] = 0
        merged = np.where(true == 2, 1, true)
        yield true, shifted
        yield true, eroded
        yield true, dropped
        yield true, merged


def test_ap_agrees_with_cellpose_average_precision():
    # Cellpose counts objects as the largest label, so it is given consecutive labels (as its own masks are)
    for true, pred in _perturbed_pairs():
        true, pred = fastremap.renumber(true)[0], fastremap.renumber(pred)[0]
        ours = score_masks(true, pred)
        ap, *_ = average_precision(true, pred, threshold=[0.5, 0.75, 0.9])
        assert [ours["ap50"], ours["ap75"], ours["ap90"]] == pytest.approx(list(ap), abs=1e-6)


def test_label_numbering_does_not_matter():
    true, pred = next(_perturbed_pairs())
    gappy = np.where(pred > 0, pred * 7 + 100, 0)
    assert score_masks(true, gappy) == pytest.approx(score_masks(true, pred))


def test_hand_computed_example():
    true = np.zeros((10, 10), np.int32)
    true[0:4, 0:4] = 1  # 16 px
    true[6:10, 6:10] = 2  # 16 px
    pred = np.zeros_like(true)
    pred[0:4, 0:3] = 1  # 12 px inside object 1: IoU 0.75
    pred[6:8, 6:10] = 2  # 8 px inside object 2: IoU 0.5 (not > 0.5, so no PQ match)
    pred[9, 0:2] = 3  # 2 px false positive
    s = score_masks(true, pred)
    tp, fp, fn = 20, 2, 12
    assert s["iou"] == pytest.approx(tp / (tp + fp + fn))
    assert s["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert s["precision"] == pytest.approx(tp / (tp + fp))
    assert s["recall"] == pytest.approx(tp / (tp + fn))
    assert s["accuracy"] == pytest.approx((100 - fp - fn) / 100)
    assert s["ap50"] == pytest.approx(2 / (2 + 1 + 0))  # IoU >= 0.5 counts, as in Cellpose
    assert s["ap75"] == pytest.approx(1 / (1 + 2 + 1))
    assert s["ap90"] == 0.0
    # PQ: one match above 0.5 (IoU 0.75); RQ = 1 / (1 + 0.5*2 + 0.5*1)
    assert s["pq"] == pytest.approx(0.75 * 1 / 2.5)
    # AJI: I = 12 + 8, U = 16 + 16 + unmatched prediction 2
    assert s["aji"] == pytest.approx(20 / 34)


def test_empty_masks():
    z = np.zeros((8, 8), np.int32)
    one = z.copy()
    one[2:5, 2:5] = 1
    assert all(v == 1.0 for v in score_masks(z, z).values())
    missed = score_masks(one, z)
    assert missed["ap50"] == 0 and missed["recall"] == 0 and missed["pq"] == 0 and missed["aji"] == 0
    assert set(missed) == set(METRICS)


def test_cl_metrics_formulas():
    R = [[0.8, 0.1, 0.0], [0.5, 0.7, 0.2], [0.6, 0.4, 0.9]]
    b = [0.0, 0.05, 0.1]
    m = cl_metrics(R, b)
    assert m["acc"] == pytest.approx((0.6 + 0.4 + 0.9) / 3)
    assert m["bwt"] == pytest.approx(((0.6 - 0.8) + (0.4 - 0.7)) / 2)
    assert m["forgetting"] == pytest.approx(((0.8 - 0.6) + (0.7 - 0.4)) / 2)
    assert m["fwt"] == pytest.approx(((0.1 - 0.05) + (0.2 - 0.1)) / 2)
    assert m["plasticity"] == pytest.approx((0.8 + 0.7 + 0.9) / 3)


def test_forgetting_is_max_based_not_initial_minus_final():
    # domain 0 peaks after experience 1, not 0: forgetting counts from the peak
    m = cl_metrics([[0.5, 0.0, 0.0], [0.9, 0.5, 0.0], [0.6, 0.5, 0.5]], [0, 0, 0])
    assert m["forgetting"] == pytest.approx(((0.9 - 0.6) + (0.5 - 0.5)) / 2)
    assert m["bwt"] == pytest.approx(((0.6 - 0.5) + 0) / 2)


def test_single_row_has_only_acc():
    m = cl_metrics([[0.5, 0.7]], [0.0, 0.0])
    assert m["acc"] == pytest.approx(0.6)
    assert m["bwt"] is m["forgetting"] is m["fwt"] is m["plasticity"] is None
