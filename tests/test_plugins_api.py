import json
import sys

import pytest

from dqcl.cli import main
from dqcl.config.strategies import STRATEGIES

from conftest import tiny_spec_text

PLUGIN = '''
from avalanche.training import Naive
from dqcl.train import Base, register_strategy


@register_strategy("lab_slow_naive", description="fine-tuning at a fraction of the learning rate", reference="a lab")
def lab_slow_naive(base: Base, *, factor: float = 0.1) -> Naive:
    for g in base.optimizer.param_groups:
        g["lr"] *= factor
    return Naive(**base.kwargs())
'''


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "lab_strategies.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "lab_strategies"
    STRATEGIES.unregister("lab_slow_naive")
    sys.modules.pop("lab_strategies", None)


def test_a_strategy_from_outside_the_repo_runs_and_ranks(tmp_path, plugin_module, capsys):
    import dqcl

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n[strategies.lab_slow_naive]\nfactor = 0.5\n"))
    store = tmp_path / "r.sqlite"
    assert main(["--plugin", plugin_module, "run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    df = dqcl.load_results(store)
    assert set(df["strategy"]) == {"naive", "lab_slow_naive"}
    row = df[(df.strategy == "lab_slow_naive") & (df.metric == "ap50")].iloc[0]
    assert json.loads(row["params"]) == {"factor": 0.5} and len(row["R"]) == 2 and row["ordering"] == "cyto>histo"
    assert {"acc", "bwt", "forgetting", "fwt", "plasticity"} <= set(df.columns)
    # the columns to group by hold hashable values
    assert len(df.groupby(["strategy", "ordering", "params", "metric"])["acc"].mean()) == 2 * 10


def test_plugin_that_does_not_import(capsys):
    assert main(["--plugin", "no_such_lab_module", "strategies", "list"]) == 2
    assert "plugin 'no_such_lab_module' does not import: ModuleNotFoundError" in capsys.readouterr().err


def test_api_run_takes_a_dict(tmp_path):
    import tomllib

    import dqcl

    raw = tomllib.loads(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    summary = dqcl.run(raw, store=tmp_path / "r.sqlite", progress=False)
    assert (summary.total, summary.ran) == (1, 1)
    assert len(dqcl.load_results(tmp_path / "r.sqlite")) == 10  # one run x 10 metrics


def test_the_example_script_runs_on_a_published_style_leaderboard_json(tmp_path):
    """examples/compare_strategies.py reads leaderboard.json (as published) and prints the comparison."""
    import subprocess
    from pathlib import Path

    from dqcl.evaluation.metrics import METRICS
    from dqcl.results.leaderboard import write_leaderboard
    from dqcl.results.store import Store

    with Store(tmp_path / "r.sqlite") as store:
        for seed in range(3):
            for label, R in (("naive", [[0.8, 0.0], [0.1, 0.7]]), ("cumulative", [[0.8, 0.0], [0.6, 0.6 + 0.01 * seed]])):
                cfg = {"study": "s", "strategy": {"label": label, "name": label, "params": {}}, "ordering": ["cyto", "histo"], "seed": seed}
                res = {"R": {m: R for m in METRICS}, "baseline": {m: [0.0, 0.0] for m in METRICS},
                       "timings": {"train_s": [1.0], "eval_s": [1.0], "total_s": 2.0}}
                store.put(f"{label}{seed}", cfg, res)
        write_leaderboard(store, tmp_path / "lb")
    script = Path(__file__).resolve().parents[1] / "examples" / "compare_strategies.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "lb" / "leaderboard.json")],
                         capture_output=True, text=True, check=True).stdout
    row = next(line for line in out.splitlines() if "cumulative" in line).split()
    assert row[:3] == ["s", "cyto>histo", "cumulative"] and row[3] == "3"
    assert float(row[-1]) > 0.2  # cumulative's paired ACC gain over naive: 0.25 + 0.005 * seed
