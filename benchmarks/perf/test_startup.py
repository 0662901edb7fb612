"""Light commands (issue 12): `dqcl --help` and `dqcl leaderboard build` start in under 2 s, and
`dqcl select` of N = 20,000 x 768 features peaks under 2 GB for the whole process.

Each is timed as a whole process (its best of a few runs, the machine being shared), and the
peak is the child process's largest resident set; both are reported as ratios to their goals.
"""

import json
import subprocess
import sys

import numpy as np

from conftest import report

_STORE = """
import sys
from dqcl.evaluation.metrics import METRICS
from dqcl.results.store import Store
with Store(sys.argv[1]) as store:
    for seed in range(3):
        for label in ("naive", "joint", "cumulative", "replay"):
            R = [[0.7, 0.6]] if label == "joint" else [[0.7, 0.0], [0.1 * seed, 0.6]]
            cfg = {"study": "s", "strategy": {"label": label, "name": label, "params": {}}, "ordering": ["cyto", "histo"], "seed": seed}
            res = {"R": {m: R for m in METRICS}, "baseline": {m: [0.0, 0.0] for m in METRICS},
                   "timings": {"train_s": [1.0], "eval_s": [1.0], "total_s": 2.0}}
            store.put(f"{label}{seed}", cfg, res)
"""


_LAUNCH = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
           "subprocess.run([sys.executable, '-m', 'dqcl', *sys.argv[1:]], check=True, capture_output=True); "
           "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")


def _best_of(argv: list[str], cwd, runs: int = 3) -> tuple[float, float]:
    """(fastest wall seconds, its peak resident set in MiB) of ``python -m dqcl ARGV``.

    Each run is started by a small launcher process: a child's ``ru_maxrss`` carries over the peak
    of the process that started it, and this test session may be large.
    """
    best = None
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _LAUNCH, *argv], cwd=cwd, check=True, capture_output=True, text=True)
        wall, peak = map(float, out.stdout.split())
        best = (wall, peak) if best is None or wall < best[0] else best
    return best


def test_help_and_leaderboard_build_start_in_under_2_s(benchmark, tmp_path):
    subprocess.run([sys.executable, "-c", _STORE, str(tmp_path / "r.sqlite")], check=True)
    help_s, _ = _best_of(["--help"], tmp_path)
    build_s, build_mb = _best_of(["leaderboard", "build", "--store", "r.sqlite", "--out", "lb"], tmp_path)
    benchmark.pedantic(lambda: None, rounds=1)
    worst = max(help_s, build_s)
    report(benchmark, "start-up, 2 s / slower of --help and leaderboard build", 2.0 / worst, 1.0,
           f"--help {help_s:.2f} s; leaderboard build (12 runs, tables, plots, index.html) {build_s:.2f} s, {build_mb:.0f} MiB")


def test_select_20000_features_peaks_under_2_gb(benchmark, tmp_path):
    np.save(tmp_path / "f.npy", np.random.default_rng(0).standard_normal((20000, 768)).astype(np.float32))
    # a fresh child: ru_maxrss of children is a maximum over all of them, so measure in a process of its own
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run([sys.executable, '-m', 'dqcl', 'select', 'f.npy', '--ratio', '0.1', '--bins', '10', "
            "'--variant', 'mmv', '--out', 'o.npy'], check=True, capture_output=True); "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True)
    wall, peak_mb = map(float, out.stdout.split())
    benchmark.pedantic(lambda: None, rounds=1)
    report(benchmark, "dqcl select N=20,000 x 768 (mmv), 2048 MiB / whole-process peak", 2048 / peak_mb, 1.0,
           f"peak {peak_mb:.0f} MiB, {wall:.1f} s; {json.dumps({'n': 20000, 'dim': 768})}")
