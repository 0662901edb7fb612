"""Cost of drawing a built-in image (generator 2, dqcl.data.microscopy), per domain.

Goal (issue 17, "keep generation fast"): drawing an image costs less than computing its flow
targets (Cellpose's `labels_to_flows`, which every image needs anyway), i.e. the ratio
flow-target time / generation time is >= 1 for every built-in domain. Images of 224 px at
Cellpose's scale (objects of 30 px).
"""

import time

import numpy as np

from dqcl.cpnet.flows import flow_targets
from dqcl.data.builtin import BUILTIN_LOOKS
from dqcl.data.domains import DOMAINS
from dqcl.data.scale import to_diameter

from conftest import report

N = 6


def _draw_all():
    return {kind: DOMAINS.get(kind).factory(seed=0, n_train=N, n_test=1, size=224) for kind in BUILTIN_LOOKS}


def test_builtin_generation(benchmark):
    per_domain = {}
    warm = DOMAINS.get("nuclei").factory(seed=2, n_train=1, n_test=1, size=64)
    flow_targets(np.stack([warm.train.masks[0][:32, :32]]), None)  # compile Cellpose's kernels first
    for kind in BUILTIN_LOOKS:
        t = time.perf_counter()
        dom = DOMAINS.get(kind).factory(seed=1, n_train=N, n_test=1, size=224)
        gen = (time.perf_counter() - t) / (N + 1)
        masks = [to_diameter(i, m, 30.0)[1] for i, m in zip(dom.train.images, dom.train.masks)]
        t = time.perf_counter()
        for m in masks:
            flow_targets(m[None], None)
        flows = (time.perf_counter() - t) / len(masks)
        per_domain[kind] = (gen, flows)
    benchmark.pedantic(_draw_all, rounds=1, iterations=1)
    worst = min(per_domain, key=lambda k: per_domain[k][1] / per_domain[k][0])
    ratio = per_domain[worst][1] / per_domain[worst][0]
    detail = ", ".join(f"{k} {g * 1000:.0f} ms/image (flows {f * 1000:.0f} ms)" for k, (g, f) in per_domain.items())
    report(benchmark, f"flow targets / generation per image (worst: {worst})", ratio, 1.0, detail)
