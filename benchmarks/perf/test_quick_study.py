"""The default study end to end: `dqcl run benchmark` (benchmarks/quick.toml) into a fresh store.

Goal: the quick study finishes in under 10 minutes on this 2-core CPU, flow cache cold. The
ratio printed is 600 s / the study's wall time (>= 1 meets the goal); the detail splits the
time into data preparation, training and scoring, summed over runs.
"""

import json
import sqlite3
import time

from dqcl.cli import main

from conftest import report


def test_quick_study_end_to_end(benchmark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the spec's flow cache is relative: start cold
    store = tmp_path / "quick.sqlite"

    def study():
        t = time.perf_counter()
        assert main(["run", "benchmark", "--store", str(store), "--quiet"]) == 0
        return time.perf_counter() - t

    wall = benchmark.pedantic(study, rounds=1, iterations=1)
    with sqlite3.connect(store) as c:
        results = [json.loads(r) for (r,) in c.execute("SELECT result FROM runs")]
    prep = sum(r["timings"]["prepare_s"] for r in results)
    train = sum(sum(r["timings"]["train_s"]) for r in results)
    score = sum(sum(r["timings"]["eval_s"]) for r in results)
    report(benchmark, "quick study, 600 s / wall time", 600 / wall, 1,
           f"{len(results)} runs in {wall:.0f} s: preparing {prep:.0f} s, training {train:.0f} s, scoring {score:.0f} s")
