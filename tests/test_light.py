"""Light commands stay light: they do not import torch, Avalanche or Cellpose (seconds of start-up
and most of the memory of a small command); `python -m dqcl` works; an unknown command gets one line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import small_domain_arrays, write_pair

HEAVY = ("torch", "avalanche", "cellpose")

_CHILD = """
import json, sys
from dqcl.cli import main
argv = json.loads(sys.argv[1])
if argv and argv[0] == "load_results":
    import dqcl
    dqcl.load_results(argv[1])
    code = 0
else:
    code = main(argv)
print(json.dumps({"code": code, "heavy": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


def _heavy(argv: list[str], cwd) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(argv)], capture_output=True, text=True, cwd=cwd, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["code"] == 0, out.stderr
    return got["heavy"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from dqcl.evaluation.metrics import METRICS
    from dqcl.results.store import Store

    d = tmp_path_factory.mktemp("light")
    imgs, masks = small_domain_arrays(3)
    for i, (im, m) in enumerate(zip(imgs, masks)):
        write_pair(d / "true", f"s{i}", im, m, img_sfx="_img", mask_sfx="_masks")
        write_pair(d / "pred", f"s{i}", im, m, img_sfx="_img", mask_sfx="_cp_masks")
    np.save(d / "f.npy", np.random.default_rng(0).standard_normal((200, 16)))
    with Store(d / "r.sqlite") as store:
        cfg = {"study": "s", "strategy": {"label": "naive", "name": "naive", "params": {}}, "ordering": ["cyto", "histo"], "seed": 0}
        res = {"R": {m: [[0.8, 0.0], [0.1, 0.7]] for m in METRICS}, "baseline": {m: [0.0, 0.0] for m in METRICS},
               "timings": {"train_s": [1.0], "eval_s": [1.0], "total_s": 2.0}}
        store.put("k", cfg, res)
    return d


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["score", "true", "pred"],
    ["select", "f.npy", "--ratio", "0.1", "--out", "o.npy"],
    ["select", "true", "--ratio", "0.5", "--bins", "2", "--out", "names.txt"],
    ["data", "list"],
    ["leaderboard", "build", "--store", "r.sqlite", "--out", "lb"],
    ["load_results", "r.sqlite"],
], ids=["help", "score", "select-features", "select-folder", "data-list", "leaderboard-build", "load_results"])
def test_light_commands_do_not_import_torch_avalanche_or_cellpose(argv, workspace, monkeypatch):
    monkeypatch.setenv("DQCL_HOME", str(workspace / "home"))
    assert _heavy(argv, workspace) == []


def test_python_dash_m_dqcl_and_an_unknown_command(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "dqcl", "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0 and "version" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "dqcl", "trian"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dqcl: error:") and "'trian'" in lines[0], lines
