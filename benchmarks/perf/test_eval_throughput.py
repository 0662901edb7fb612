"""Mask reconstruction for scoring: dqcl's batched `batch_masks` vs Cellpose's per-patch `compute_masks`.

Goal (issue 5): >= 5x the patches/s of per-patch compute_masks on this CPU (>= 50x on a GPU:
see gpu_check.py), with masks that agree at AP@0.5 >= 0.99 on the built-in domains.
"""

import time

import numpy as np

from dqcl.data.domains import DOMAINS
from dqcl.cpnet.masks import flows_to_masks
from dqcl.cpnet.masks import batch_masks, outputs_from_targets
from dqcl.evaluation.metrics import score_masks
from dqcl.data.streams import prepare

from conftest import report


def _outputs(tmp_path):
    parts = []
    for i, kind in enumerate(("cyto", "histo", "nuclei", "brightfield")):
        dom = DOMAINS.get(kind).factory(seed=0, n_train=1, n_test=2, size=448)
        parts.append(outputs_from_targets(prepare(dom, "test", 224, 224, cache_dir=tmp_path).targets, 0.5, seed=i))
    return np.concatenate(parts)  # 32 patches of 224 px, 8 per domain


def test_batched_masks_vs_per_patch_compute_masks(benchmark, tmp_path):
    outputs = _outputs(tmp_path)
    flows_to_masks(outputs[0])
    batch_masks(outputs[:2])  # compile / load both paths once
    t = time.perf_counter()
    ref = [flows_to_masks(o) for o in outputs]
    per_patch = (time.perf_counter() - t) / len(outputs)
    got = benchmark.pedantic(batch_masks, args=(outputs,), rounds=3, iterations=1)
    batched = benchmark.stats.stats.min / len(outputs)
    ap = np.mean([score_masks(r.astype(np.int32), g.astype(np.int32))["ap50"] for r, g in zip(ref, got)])
    same = sum(np.array_equal(r, g) for r, g in zip(ref, got))
    assert ap >= 0.99
    report(benchmark, "mask reconstruction, batched / per-patch compute_masks (CPU)", per_patch / batched, 5,
           f"{len(outputs)} patches of 224 px: per-patch {per_patch * 1000:.1f} ms, batched {batched * 1000:.1f} ms/patch; "
           f"AP@0.5 between them {ap:.4f}, identical masks {same}/{len(outputs)}")
