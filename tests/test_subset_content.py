"""benchmarks/subset_content.py reads each redundancy run's kept patches against its own data draw:
under data_seed = "per_seed" every seed draws its own images, so seed 1's indices mean nothing in
seed 0's patches. Fake runs and fake patches, no training."""

import importlib.util
from pathlib import Path

import numpy as np

from dqcl.config.expand import expand
from dqcl.config.parse import parse_spec
from dqcl.data.streams import PatchData
from dqcl.evaluation.metrics import METRICS
from dqcl.results.store import Store

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
[study]
name = "red"
seeds = [0, 1]
data_seed = "per_seed"
device = "cpu"
[redundancy]
domain = "cyto"
rates = [0.5]
selectors = ["random"]
steps = 5
[data]
patch_size = 16
stride = 16
diameter = 8
[domains.cyto]
n_train = 2
n_test = 1
size = 48
"""


def test_each_run_is_read_against_its_own_draw(tmp_path, monkeypatch, capsys):
    spec_path = tmp_path / "red.toml"
    spec_path.write_text(SPEC)
    cfgs = [c for c in expand(parse_spec(__import__("tomllib").loads(SPEC), str(spec_path))) if c.subset]
    store = tmp_path / "r.sqlite"
    with Store(store) as s:
        for c in cfgs:  # every run kept patches 0 and 1 of its own draw
            res = {"R": {m: [[0.5]] for m in METRICS}, "baseline": {m: [0.0] for m in METRICS},
                   "timings": {"train_s": [1.0], "eval_s": [1.0], "total_s": 2.0}, "subset": {"indices": [0, 1], "size": 2}}
            s.put(c.key, c.to_dict(), res)

    def draw(domain, cfg):
        """Four patches; data seed 0's kept two hold 1 object each, data seed 1's kept two hold 3 each;
        the others 1. Read against seed 0's draw, seed 1's run would look like seed 0's."""
        objects = {0: [1, 1, 1, 1], 1: [3, 3, 1, 1]}[cfg.data_seed]
        targets = np.zeros((4, 4, 16, 16), np.float32)
        for i, n in enumerate(objects):
            for k in range(n):
                targets[i, 0, k, :] = k + 1
        data = PatchData("cyto", "train", np.zeros((4, 1, 16, 16), np.float32), targets, tuple("abcd"))
        return data, data

    import dqcl.train.run

    monkeypatch.setattr(dqcl.train.run, "prepare_domain", draw)
    spec = importlib.util.spec_from_file_location("subset_content", ROOT / "benchmarks" / "subset_content.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--spec", str(spec_path), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "data seed 0: 4 training patches" in out and "data seed 1: 4 training patches" in out
    row = next(line for line in out.splitlines() if line.startswith("| random |"))
    # seed 0 keeps its mean (1.0 of 1.0), seed 1 keeps 3 objects per patch of a mean of 2 (1.5): mean 1.25
    assert "| 2 | 1.250 ± 0.354" in row, row
