"""DQ selection speed: exactness against the released loop form, and scale to N = 20,000.

Goals (issue 3): identical to the loop form at N = 2,000 (768-d, float64) and >= 100x
faster; mmv and graphcut at N = 20,000 (768-d, 10 bins, ratio 0.1) in <= 60 s and <= 2 GB
peak memory on a 2-core CPU; time at N = 5k, 10k, 20k.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dqcl.dq.selectors import select

from conftest import report

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from dq_oracle import released_routine  # noqa: E402

_CHILD = """
import json, sys, time
import numpy as np
from dqcl.dq.selectors import select
from dqcl.core.memory import peak_rss_mib
n, variant = int(sys.argv[1]), sys.argv[2]
x = np.random.default_rng(0).standard_normal((n, 768)).astype(np.float32)
base = peak_rss_mib()
t = time.perf_counter()
idx = select(x, 0.1, 10, variant)
print(json.dumps({"s": time.perf_counter() - t, "peak_mb": peak_rss_mib(),
                  "base_mb": base, "k": len(idx)}))
"""


def _child(n: int, variant: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n), variant], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mmv_exact_and_faster_than_the_loop_form(benchmark):
    x = np.random.default_rng(0).standard_normal((2000, 768))
    t = time.perf_counter()
    _, want = released_routine(x, 10, 0.1)
    loop_s = time.perf_counter() - t
    got = benchmark.pedantic(select, args=(x, 0.1, 10, "mmv"), rounds=3, iterations=1)
    assert got.tolist() == want.tolist()
    ours = benchmark.stats.stats.min
    report(benchmark, "mmv at N=2,000 (768-d, float64), loop form / dqcl", loop_s / ours, 100,
           f"identical coreset ({len(got)} indices); loop {loop_s:.1f} s, dqcl {ours:.3f} s")


def test_scale_to_20000(benchmark):
    rows = {}
    for variant in ("mmv", "graphcut"):
        for n in (5000, 10000, 20000):
            rows[(variant, n)] = _child(n, variant)
    lines = [f"{v} N={n}: {r['s']:.1f} s, peak {r['peak_mb'] / 1024:.2f} GB (after imports {r['base_mb'] / 1024:.2f} GB)"
             for (v, n), r in rows.items()]
    print("\n" + "\n".join("[perf] " + line for line in lines))
    worst = max(r["s"] for (v, n), r in rows.items() if n == 20000)
    benchmark.pedantic(lambda: None, rounds=1)
    report(benchmark, "N=20,000 selection, 60 s / slowest of mmv, graphcut", 60 / worst, 1.0,
           "; ".join(lines[2::3]))
    benchmark.extra_info["rows"] = {f"{v}@{n}": r for (v, n), r in rows.items()}
