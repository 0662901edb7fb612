"""Preparing a domain's patches and flow targets, first (cache miss) vs again (cache hit).

Goal (issue 2): the second preparation is >= 10x faster than the first.
"""

import time

from dqcl.data.domains import DOMAINS
from dqcl.data.streams import prepare

from conftest import report


def test_second_preparation_hits_the_flow_cache(benchmark, tmp_path):
    dom = DOMAINS.get("histo").factory(seed=0, n_train=8, n_test=1, size=448)  # paper patching: 224 / 112
    prepare(dom, "train", 224, 112, cache_dir=tmp_path / "warm")  # load Cellpose's compiled kernels once
    t = time.perf_counter()
    first = prepare(dom, "train", 224, 112, cache_dir=tmp_path / "c")
    cold = time.perf_counter() - t
    again = benchmark.pedantic(prepare, args=(dom, "train", 224, 112), kwargs={"cache_dir": tmp_path / "c"}, rounds=5, iterations=1)
    warm = benchmark.stats.stats.min
    assert (again.targets == first.targets).all()
    report(benchmark, "domain preparation, first / second (flow cache hit)", cold / warm, 10,
           f"{len(first)} patches of 224 px: first {cold:.2f} s, second {warm * 1000:.0f} ms")
