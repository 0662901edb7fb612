"""The how-to's measured table (benchmarks/update_howto.py): its sentences follow benchmarks/howto/update.toml's
rules on the runs stored, each seed is shown on its own, and a seed counts as done only when all three ways
of updating are stored (the runner resumes a seed cut off between them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dqcl.results.store import Store

from test_protocol import _config, _result

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("update_howto", ROOT / "benchmarks" / "update_howto.py")
howto = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(howto)


def _put(store: Store, study: str, label: str, seed: int, before: list[float], after: list[float], train_s: float) -> None:
    """A stored run as the how-to's runner keeps it: AP@0.5 on (old, new) before and after, training seconds."""
    config = _config(label, label, seed, study=study)
    result = _result(seed, 0.0)
    result["baseline"]["ap50"] = before
    result["R"]["ap50"] = [after, after]
    result["timings"]["train_s"] = [train_s]
    result["threads"] = 1
    result["versions"].update({"dqcl": "9.9.9", "dqcl_commit": f"c{seed}" * 6})
    store.put(f"{study}-{label}-{seed}", config, result)


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "howto.sqlite"
    monkeypatch.setattr(howto, "STORE", path)
    return path


def _fill(path: Path, seeds, methods=("dq_replay", "naive", "joint")) -> None:
    with Store(path) as s:
        for seed in seeds:
            jitter = 0.01 * seed
            _put(s, "update_howto_source", "naive", seed, [0.01, 0.0], [0.75 + jitter, 0.0], 60)
            for m in methods:
                old, new, t = {"dq_replay": (0.74 + jitter, 0.60 + jitter, 80), "naive": (0.10 + jitter, 0.30 - jitter, 50),
                               "joint": (0.75 + jitter, 0.61 + jitter, 100)}[m]
                _put(s, "update_howto", m, seed, [0.75 + jitter, 0.20], [old, new], t)


def test_the_table_reads_each_verdict_from_the_rules(store):
    _fill(store, range(4))
    md = howto.table()
    lines = md.splitlines()
    dq = next(x for x in lines if x.startswith("- `dqcl update`"))
    naive = next(x for x in lines if x.startswith("- naive"))
    # forgetting 0.01 every seed: inside the 0.05 margin; new AP 0.01 under joint's every seed: inside +-0.05
    assert "kept the old AP" in dq and "as good on the new images as retraining on all" in dq
    assert "training time 0.80x joint's" in dq
    # naive forgets 0.65 and trails joint by 0.31 + 0.02 * seed on new images: both beyond the margins
    assert "lost old AP" in naive and "worse on the new images than retraining on all" in naive
    assert "Seeds [0, 1, 2, 3] (4)" in md
    # each seed on its own row, with the old / new AP of every way
    row = next(x for x in lines if x.startswith("| 2 |"))
    assert row == "| 2 | 0.770 / 0.200 | 0.760 / 0.620 | 0.120 / 0.280 | 0.770 / 0.630 |"
    # every dqcl version that made a run is named, not only the first run's
    assert "c0c0c0c0c0c0" in md and "c3c3c3c3c3c3" in md


def test_a_wide_spread_is_undecided(store):
    with Store(store) as s:
        for seed, old in enumerate([0.74, 0.20, 0.70]):  # one seed collapsed: forgetting 0.01, 0.55, 0.05
            _put(s, "update_howto_source", "naive", seed, [0.01, 0.0], [0.75, 0.0], 60)
            _put(s, "update_howto", "dq_replay", seed, [0.75, 0.2], [old, 0.6], 80)
            _put(s, "update_howto", "naive", seed, [0.75, 0.2], [0.1, 0.3], 50)
            _put(s, "update_howto", "joint", seed, [0.75, 0.2], [0.75, 0.6], 100)
    dq = next(x for x in howto.table().splitlines() if x.startswith("- `dqcl update`"))
    assert "undecided on the old AP" in dq


def test_a_seed_is_done_only_with_every_method_stored(store):
    assert not howto._done(0)  # no store yet
    _fill(store, [0], methods=("dq_replay",))  # cut off after dqcl update stored its own run
    assert not howto._done(0)
    _fill(store, [1])
    assert howto._done(1) and not howto._done(2)
    # a seed missing a method is left out of the table rather than averaged over fewer methods
    assert "Seeds [1] (1)" in howto.table()
