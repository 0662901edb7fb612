"""A number means one thing (issue 25): runs that differ in their protocol are never pooled or paired,
and a run that broke its own protocol is set aside. Fake stored runs (no training), except where a run
must be refused before it trains."""

from __future__ import annotations

import copy
import json
import sqlite3

import numpy as np
import pytest

from dqcl.cli import main
from dqcl.config.protocol import percent
from dqcl.errors import ProtocolError
from dqcl.evaluation.metrics import METRICS
from dqcl.results.entries import budget_text, entries
from dqcl.results.leaderboard import write_leaderboard
from dqcl.results.store import Store

from conftest import small_domain_arrays, tiny_spec_text, write_pair

SEEDS = (0, 1, 2)
ORDER = ["cyto", "histo"]


def _config(label: str, name: str, seed: int, memory: dict | None = None, study: str = "p") -> dict:
    """A stored config as dqcl 0.4 writes it (every table of a RunConfig), per-seed data."""
    cfg = {"study": study, "strategy": {"label": label, "name": name, "params": {}}, "ordering": list(ORDER), "seed": seed,
           "data_seed": seed, "version": "0.3.0",
           "domains": [{"name": d, "kind": d, "params": {"n_train": 8, "n_test": 2, "size": 96}} for d in ORDER],
           "data_manifests": [[d, f"generated:{d}@2"] for d in ORDER],
           "data": {"patch_size": 64, "stride": 64, "pad": False, "diameter": 16.0},
           "model": {"widths": [16, 32, 64, 128]},
           "train": {"epochs": 100, "steps": 250, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-5,
                     "augment": True, "warmup_epochs": 1.0, "warmup_steps": 25, "reset_optimizer": True, "fast": "auto",
                     "compile": False, "loader_workers": 0},
           "eval": {"flow_threshold": 0.4, "cellprob_threshold": 0.0, "niter": 200, "min_size": 15, "batch_size": 32},
           "device": "cpu"}
    if memory is not None:
        cfg["memory"] = memory
    return cfg


def _result(seed: int, acc: float, held: int | None = None, memory: dict | None = None, per_step=(8, 8), cellpose="4.2.1.1",
            hashes: dict | None = None) -> dict:
    R = [[0.8, 0.0], [acc, 0.7]]
    data = {d: {"train_hash": f"{d}-train-{seed}", "test_hash": f"{d}-test-{seed}", "train_patches": 40, "test_patches": 10,
                "test_objects": 100, "test_in_train": 0} for d in ORDER}
    for d, rec in (hashes or {}).items():
        data[d].update(rec)
    res = {"R": {m: R for m in METRICS}, "baseline": {m: [0.0, 0.0] for m in METRICS},
           "timings": {"train_s": [1.0, 1.0], "eval_s": [1.0], "total_s": 2.0}, "images_seen": 10, "device": "cpu",
           "compute": {"steps": 10, "forward": 80, "backward": 80, "step_forward": 80, "step_backward": 80,
                       "per_step": list(per_step), "samples_per_step": float(np.mean(per_step))},
           "versions": {"cellpose": cellpose, "dqcl": "0.3.0"}, "data": data}
    if memory is not None:
        res["memory"] = {"budget": "x", "size": memory.get("size", 0), "rate": memory.get("rate", 0.0), "protocol": memory["protocol"],
                         "replay_batch": memory.get("replay_batch", 0), "compute": memory["compute"], "held": [held, held],
                         "max_held": held}
    return res


BUDGET = {"size": 32, "rate": 0.0, "protocol": "batch", "replay_batch": 2, "compute": "matched"}
NAIVE = {"size": 0, "rate": 0.0, "protocol": "mix", "replay_batch": 0, "compute": "matched"}


def _study(store, study: str = "p") -> None:
    """naive and replay (32 patches, 2 per step, compute matched) over three seeds: replay ahead on every seed."""
    for s in SEEDS:
        store.put(f"{study}-naive-{s}", _config("naive", "naive", s, NAIVE, study), _result(s, 0.10 + 0.01 * s))
        store.put(f"{study}-replay-{s}", _config("replay", "replay", s, BUDGET, study), _result(s, 0.60 + 0.01 * s, 32, BUDGET))


def _set(cfg: dict, res: dict, path: str, value) -> None:
    """Change one field of a stored run: a config table's setting, a domain's parameters or manifest,
    the data seed, or the Cellpose version of the result."""
    if path == "cellpose":
        res["versions"]["cellpose"] = value
    elif path == "data_seed":
        cfg["data_seed"] = value
        for d in ORDER:  # another draw: other data
            res["data"][d]["train_hash"] += "-other"
            res["data"][d]["test_hash"] += "-other"
    elif path.startswith("domains."):
        cfg["domains"][0]["params"][path.split(".", 1)[1]] = value
    elif path == "data_manifests":
        cfg["data_manifests"][0][1] = value
    else:
        table, key = path.split(".")
        cfg[table][key] = value
        if path == "train.batch_size":  # a batch of another size, every step of it
            res["compute"]["per_step"] = [value, value]


# every field of a run's setting that changes what its number means, with another value
SETTING_CHANGES = [
    ("data.patch_size", 96, "data.patch_size"), ("data.diameter", 30.0, "data.diameter"), ("data.pad", True, "data.pad"),
    ("model.widths", [32, 64, 128, 256], "model.widths"), ("model.norm", "group", "model.norm"),
    ("train.steps", 500, "train.steps"), ("train.lr", 0.1, "train.lr"), ("train.batch_size", 16, "train.batch_size"),
    ("train.warmup_steps", 0, "train.warmup_steps"), ("train.reset_optimizer", False, "train.reset_optimizer"),
    ("eval.flow_threshold", 0.6, "eval.flow_threshold"), ("domains.n_train", 64, "the parameters of domain 'cyto'"),
    ("data_manifests", "generated:cyto@1", "the data of domain 'cyto'"), ("data_seed", 7, "data draw"),
    ("cellpose", "3.1.1.3", "cellpose"),
]


@pytest.mark.parametrize("path,value,named", SETTING_CHANGES, ids=[c[0] for c in SETTING_CHANGES])
def test_runs_that_differ_in_any_setting_field_are_never_pooled(tmp_path, capsys, path, value, named):
    store_path = tmp_path / "r.sqlite"
    with Store(store_path) as store:
        _study(store)
        # seed 0 of naive rerun with one setting changed: one cell would hold it beside seeds 1 and 2
        cfg, res = _config("naive", "naive", 0, NAIVE), _result(0, 0.9)
        _set(cfg, res, path, value)
        store.put("p-naive-0-changed", cfg, res)
    out = tmp_path / "lb"
    assert main(["leaderboard", "build", "--store", str(store_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dqcl: error: study 'p'") and named in err, err
    assert "p-naive-0-changed" in err and "--split-protocols" in err
    assert not out.exists()  # nothing written
    # split: the changed run is a study of its own; no table, claim or figure puts it beside the others
    assert main(["leaderboard", "build", "--store", str(store_path), "--out", str(out), "--split-protocols"]) == 0
    rows = json.loads((out / "leaderboard.json").read_text())
    studies = {r["study"] for r in rows}
    assert len(studies) == 2 and all(st.startswith("p (") and named in st for st in studies), studies
    changed = [r for r in rows if r["run"] == "p-naive-0-changed"]
    (alone,) = {r["study"] for r in changed}
    assert {r["run"] for r in rows if r["study"] == alone} == {"p-naive-0-changed"}
    md = (out / "leaderboard.md").read_text()
    assert sum(line.startswith("## p (") for line in md.splitlines()) == 2


def test_the_published_store_keeps_one_protocol_per_study_and_no_run_broke_it():
    with Store("leaderboard/runs.sqlite", readonly=True) as store:
        rows = [e for e in entries(store) if e["metric"] == "ap50"]
    assert len(rows) >= 388 and not [e["run"] for e in rows if e["broken"]]  # 388 published, and the added seeds as they land
    assert {e["cellpose"] for e in rows} == {"4.2.1.1"} and {e["data_draw"] for e in rows} == {"each seed its own"}


def test_two_budgets_never_share_a_label_and_equal_ones_are_one_budget(tmp_path):
    a, b = ({**BUDGET, "size": 0, "rate": r, "protocol": "mix", "compute": "appended", "replay_batch": 0} for r in (0.3, 0.2999999))
    assert budget_text(a, short=True) != budget_text(b, short=True)
    assert (percent(0.3), percent(0.2999999), percent(0.05), percent(1)) == ("30", "29.99999", "5", "100")
    with Store(tmp_path / "r.sqlite") as store:
        for s in SEEDS:
            store.put(f"n{s}", _config("naive", "naive", s), _result(s, 0.1))
            store.put(f"a{s}", _config("replay", "replay", s, a), _result(s, 0.5, 12, a))
            store.put(f"b{s}", _config("replay", "replay", s, b), _result(s, 0.6 + 0.1 * s, 12, b))
        rows = [e for e in entries(store) if e["metric"] == "ap50"]
    labels = {e["strategy"] for e in rows}
    assert labels == {"naive", "replay [30 %, mixed in, appended]", "replay [29.99999 %, mixed in, appended]"}
    # no figure, health line or table groups the two budgets: every label holds one run per seed
    per_label = {lab: sorted(e["seed"] for e in rows if e["strategy"] == lab) for lab in labels}
    assert all(seeds == list(SEEDS) for seeds in per_label.values())


def test_a_label_at_two_parameter_values_is_two_cells(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        for s in SEEDS:
            for lam in (100.0, 1000.0):
                cfg = _config("ewc", "ewc", s)
                cfg["strategy"]["params"] = {"ewc_lambda": lam}
                store.put(f"ewc{lam}-{s}", cfg, _result(s, 0.2 if lam < 500 else 0.4))
        rows = [e for e in entries(store) if e["metric"] == "ap50"]
    assert {e["strategy"] for e in rows} == {"ewc (ewc_lambda 100)", "ewc (ewc_lambda 1000)"}


# one planted run per invariant a run can break, and the words its health line gives
BROKEN = {
    "memory": (lambda cfg, res: res["memory"].update(held=[1000, 1000], max_held=1000), "memory: held 1,000 patches"),
    "compute": (lambda cfg, res: res["compute"].update(per_step=[6, 10]), "backpropagated 6 to 10 samples"),
    "test = train": (lambda cfg, res: res["data"]["histo"].update(test_hash=res["data"]["histo"]["train_hash"]),
                     "scored on its training patches"),
    "test in train": (lambda cfg, res: res["data"]["cyto"].update(test_in_train=3), "3 test patch(es) of domain 'cyto'"),
    "draw of another seed": (lambda cfg, res: res["data"]["cyto"].update(train_hash="cyto-train-1"),
                             "trained on seed 1's draw"),
}


@pytest.mark.parametrize("what", list(BROKEN))
def test_a_run_that_broke_its_protocol_is_flagged_and_kept_out_of_every_rank(tmp_path, what):
    plant, says = BROKEN[what]
    with Store(tmp_path / "r.sqlite") as store:
        _study(store)
        cfg, res = _config("replay", "replay", 2, BUDGET), _result(2, 0.99, 32, BUDGET)  # the best replay seed of all
        plant(cfg, res)
        store.put("p-replay-2-bad", cfg, res)  # the newest of its cell and seed: it replaces the good one
        out = tmp_path / "lb"
        write_leaderboard(store, out)
    rows = json.loads((out / "leaderboard.json").read_text())
    assert not {"p-replay-2", "p-replay-2-bad"} & {r["run"] for r in rows}  # in no CSV or JSON row
    md = (out / "leaderboard.md").read_text()
    line = next(x for x in md.splitlines() if "protocol broken" in x)
    assert "seed 2" in line and "p-replay-2-bad" in line and says in line, line
    table = md.split("**cyto → histo**")[1].split("\n\n")[1]
    replay_row = next(x for x in table.splitlines() if "| replay" in x)
    assert "| 2 of 3 |" in replay_row  # compared on the two seeds that kept the protocol
    assert "0.99" not in md.split("Health")[0]
    page = (out / "index.html").read_text()
    assert "protocol broken" in page


def test_seeds_of_a_study_of_one_draw_must_share_it_and_strategies_of_a_seed_must_agree(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        for s in SEEDS:
            one = {d: {"train_hash": f"{d}-train", "test_hash": f"{d}-test"} for d in ORDER}
            for label in ("naive", "er"):
                cfg = _config(label, label, s)
                cfg["data_seed"] = 5  # every seed draws data seed 5's images
                hashes = copy.deepcopy(one)
                if (label, s) == ("er", 1):
                    hashes["histo"]["train_hash"] = "histo-train-other"
                store.put(f"{label}-{s}", cfg, _result(s, 0.3, hashes=hashes))
        rows = [e for e in entries(store) if e["metric"] == "ap50"]
    broken = {e["run"]: e["broken"] for e in rows if e["broken"]}
    assert list(broken) == ["er-1"] and "draw" in broken["er-1"]
    assert {e["data_draw"] for e in rows} == {"data seed 5"}


def test_per_seed_draws_of_a_folder_without_resplit_are_one_draw(tmp_path):
    """A folder read as it is split gives every seed the same images: not a broken per-seed draw."""
    with Store(tmp_path / "r.sqlite") as store:
        for s in SEEDS:
            cfg = _config("naive", "naive", s)
            cfg["domains"][0] = {"name": "cyto", "kind": "folder", "params": {"path": "/x", "name": "cyto"}}
            store.put(f"n{s}", cfg, _result(s, 0.3, hashes={"cyto": {"train_hash": "same", "test_hash": "same-test"}}))
        rows = entries(store)
    assert not any(e["broken"] for e in rows)


# ---- refused before a run trains ------------------------------------------------------------------


def _spec(tmp_path, memory: str, strategies: str = "[strategies.replay]\n", orderings: str = '[["cyto", "histo"]]') -> str:
    text = tiny_spec_text(tmp_path, strategies).replace('orderings = [["cyto", "histo"]]', f"orderings = {orderings}")
    text += "\n[domains.nuclei]\nn_train = 2\nn_test = 1\nsize = 96\n" + memory
    p = tmp_path / "s.toml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("memory,strategies,orderings,says", [
    ('[memory]\nsize = 1\nreplay_batch = 3\nprotocol = "batch"\ncompute = "matched"\n', "[strategies.replay]\n",
     '[["cyto", "histo"]]', "takes 3 memory samples every step from a memory of 1 patch"),
    ('[memory]\nsize = 8\nreplay_batch = 1\ncompute = "matched"\n', "[strategies.agem]\n",
     '[["cyto", "histo", "nuclei"]]', "2 at the last domain of a 3-domain ordering"),
    ('[memory]\nrate = [1, 1.0]\n', "[strategies.replay]\n", '[["cyto", "histo"]]', "is the same budget as"),
    ('[memory]\nsize = 8\nreplay_batch = [0, 4]\n', "[strategies.er]\n", '[["cyto", "histo"]]', "is the same budget as"),
], ids=["size below replay batch", "agem one per earlier domain", "rate 1 and 1.0", "replay batch 0 is the batch"])
def test_a_budget_that_cannot_supply_its_replay_batch_is_refused_in_one_line(tmp_path, capsys, memory, strategies, orderings, says):
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", _spec(tmp_path, memory, strategies, orderings), "--store", str(store), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "memory" in err and says in err, err
    assert not store.exists()


def test_a_rate_that_keeps_fewer_patches_than_the_replay_batch_is_refused_before_training(tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    memory = '[memory]\nrate = 0.01\nreplay_batch = 2\nprotocol = "batch"\ncompute = "matched"\n'
    assert main(["run", "benchmark", _spec(tmp_path, memory), "--store", str(store), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "draws 2 memory samples per step from a memory of 1 patch" in err, err
    assert not store.exists()  # refused before the first run stored anything


def test_agem_draws_exactly_its_replay_batch_shared_among_earlier_domains():
    import torch

    from dqcl.train.rehearsal import Budget, EpisodicMemory

    memory = EpisodicMemory(Budget(size=30, protocol="batch", replay_batch=4, compute="matched", batch_size=8), seed=0)
    memory.groups = lambda: [(torch.zeros(10, 1, 4, 4), torch.zeros(10, 4, 4, 4)) for _ in range(3)]
    assert [len(x) for x, _ in memory.draw()] == [2, 1, 1]  # 4 in all, one of each at least


def test_a_folder_whose_test_split_is_its_training_split_is_refused(tmp_path, capsys):
    imgs, masks = small_domain_arrays(n=3, size=96)
    d = tmp_path / "d"
    for i in range(2):
        write_pair(d / "train", f"s{i}", imgs[i], masks[i])
    write_pair(d / "test", "other_name", imgs[0], masks[0])  # a training image under another name
    text = tiny_spec_text(tmp_path, "[strategies.naive]\n").replace(
        "[domains.cyto]\nn_train = 2\nn_test = 1\nsize = 96", f'[domains.cyto]\nkind = "folder"\npath = "{d.as_posix()}"')
    for extra in ("", '\ntrain_dir = "test"', "\nresplit = true"):
        p = tmp_path / "s.toml"
        p.write_text(text.replace(f'path = "{d.as_posix()}"', f'path = "{d.as_posix()}"{extra}'))
        assert main(["run", "benchmark", str(p), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "test image" in err and "is training image" in err, (extra, err)
    with pytest.raises(sqlite3.OperationalError):
        sqlite3.connect(f"file:{tmp_path / 'r.sqlite'}?mode=ro", uri=True).execute("SELECT 1 FROM runs")


def test_a_study_stored_under_another_cellpose_is_not_resumed_under_this_one(tmp_path, capsys):
    """A run's key leaves the Cellpose version out: resuming would count the old runs as done."""
    from importlib import metadata

    store_path = tmp_path / "r.sqlite"
    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    with Store(store_path) as store:
        store.put("old", {**_config("naive", "naive", 0, study="tiny")}, _result(0, 0.3, cellpose="2.0.0"))
    assert main(["run", "benchmark", str(spec), "--store", str(store_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Cellpose 2.0.0" in err and metadata.version("cellpose") in err, err
    with Store(store_path, readonly=True) as store:
        assert [r["key"] for r in store.runs()] == ["old"]  # nothing trained, nothing added


# ---- hostile stores: odd values, settings left out, names that print alike -------------------------


def _changed(change) -> list[tuple[str, dict, dict]]:
    """The runs of `_study` as (key, config, result), seed 0 of naive changed by ``change(cfg, res)``."""
    runs = []
    for s in SEEDS:
        naive = _config("naive", "naive", s, NAIVE), _result(s, 0.1)
        if s == 0:
            change(*naive)
        runs += [(f"naive-{s}", *naive), (f"replay-{s}", _config("replay", "replay", s, BUDGET), _result(s, 0.6, 32, BUDGET))]
    return runs


def _put(tmp_path, runs) -> Store:
    store = Store(tmp_path / "r.sqlite")
    for key, cfg, res in runs:
        store.put(key, cfg, res)
    return store


ODD_VALUES = {
    "domains a number": lambda cfg, res: cfg.update(domains=5),
    "a domain named by a list": lambda cfg, res: cfg["domains"][0].update(name=["cyto"]),
    "steps past a float": lambda cfg, res: cfg["train"].update(steps=10**400),
    "a domain parameter past a float": lambda cfg, res: cfg["domains"][0]["params"].update(n_train=10**400),
    "a strategy parameter past a float": lambda cfg, res: cfg["strategy"].update(params={"lam": 10**400}),
}


@pytest.mark.parametrize("what", list(ODD_VALUES))
def test_odd_values_in_a_stored_config_are_one_line_or_a_study_of_their_own_never_a_traceback(tmp_path, what):
    with _put(tmp_path, _changed(ODD_VALUES[what])) as store:
        try:
            entries(store)
        except ProtocolError as err:
            assert len(str(err).splitlines()) == 1
        rows = entries(store, split_protocols=True)
    assert {e["run"] for e in rows} == {f"{label}-{s}" for label in ("naive", "replay") for s in SEEDS}


LEFT_OUT = {  # a run that leaves a setting out, garbles it, or differs where the fingerprint did not look
    "no domains": (lambda cfg, res: cfg.pop("domains"), "the parameters of domain 'cyto'"),
    "no data manifests": (lambda cfg, res: cfg.update(data_manifests=[]), "the data of domain 'cyto'"),
    "an eval table that is no table": (lambda cfg, res: cfg.update(eval=3), "eval."),
    "a setting this dqcl does not know": (lambda cfg, res: cfg["train"].update(grad_clip=1.0), "train.grad_clip"),
    "the fast path on a GPU": (lambda cfg, res: res.update(device="NVIDIA H100 80GB HBM3"), "train.fast"),
    "steps 2**53 + 1": (lambda cfg, res: cfg["train"].update(steps=2**53 + 1), "train.steps"),
}


@pytest.mark.parametrize("what", list(LEFT_OUT))
def test_a_run_that_leaves_out_garbles_or_hides_a_setting_is_not_pooled(tmp_path, what):
    change, named = LEFT_OUT[what]
    runs = _changed(change)
    if what == "steps 2**53 + 1":  # the others at 2**53: one float, two integers
        for _, cfg, _ in runs[1:]:
            cfg["train"]["steps"] = 2**53
    with _put(tmp_path, runs) as store:
        with pytest.raises(ProtocolError, match="study 'p': its runs differ in") as err:
            entries(store)
        assert named in str(err.value) and "naive-0" in str(err.value), str(err.value)
        rows = entries(store, split_protocols=True)
    assert len({e["study"] for e in rows}) == 2


def _one_run_per_cell_and_seed(rows):
    ap50 = [(e["study"], e["strategy"], tuple(e["ordering"]), e["seed"]) for e in rows if e["metric"] == "ap50"]
    assert len(ap50) == len(set(ap50)), sorted(ap50)


def test_a_split_study_never_takes_the_name_of_another_study_nor_of_another_setting(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        _study(store)
        _study(store, "p (cellpose 3.1.1.3)")  # a study named like a split of p
        cfg, res = _config("naive", "naive", 0, NAIVE), _result(0, 0.9, cellpose="3.1.1.3")
        store.put("p-naive-0-rerun", cfg, res)  # p's seed 0 of naive rerun under Cellpose 3.1.1.3
        _study(store, "q")
        cfg, res = _config("replay", "replay", 1, BUDGET, "q"), _result(1, 0.9, 32, BUDGET)
        cfg["train"]["steps"] = "250"  # text that prints as the number the other runs hold
        store.put("q-replay-1-rerun", cfg, res)
        rows = entries(store, split_protocols=True)
    _one_run_per_cell_and_seed(rows)
    study_of = {e["run"]: e["study"] for e in rows}
    of_p = "p (cellpose 3.1.1.3)"
    assert {run for run, st in study_of.items() if st == of_p} == {f"{of_p}-{label}-{s}" for label in ("naive", "replay") for s in SEEDS}
    assert study_of["p-naive-0-rerun"] == f"{of_p} #2" and study_of["p-naive-1"] == "p (cellpose 4.2.1.1)"
    assert study_of["q-replay-1-rerun"] == 'q (train.steps "250")' and study_of["q-replay-0"] == "q (train.steps 250)"


def test_a_label_that_prints_like_another_cells_label_is_kept_apart(tmp_path):
    b64 = {**BUDGET, "size": 64}
    with Store(tmp_path / "r.sqlite") as store:
        for s in SEEDS:
            store.put(f"n{s}", _config("naive", "naive", s, NAIVE), _result(s, 0.1))
            store.put(f"a{s}", _config("replay", "replay", s, BUDGET), _result(s, 0.5, 32, BUDGET))
            store.put(f"b{s}", _config("replay", "replay", s, b64), _result(s, 0.6, 64, b64))
            # a spec's own label, written as replay's label at 32 patches reads
            store.put(f"c{s}", _config("replay [32 patches, 2 per step, matched]", "replay", s, b64), _result(s, 0.9, 64, b64))
        rows = entries(store)
    _one_run_per_cell_and_seed(rows)
    (own,) = {e["strategy"] for e in rows if e["run"] == "c0"}
    assert own == "replay [32 patches, 2 per step, matched]"
    assert {e["strategy"] for e in rows if e["run"] == "a0"} == {"replay [32 patches, 2 per step, matched] #2"}


def test_a_memory_record_without_counts_per_experience_is_checked_on_its_maximum(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        _study(store)
        cfg, res = _config("replay", "replay", 1, BUDGET), _result(1, 0.99, 32, BUDGET)
        res["memory"].update(held=[None, None], max_held=1000)
        store.put("p-replay-1-rerun", cfg, res)
        broken = {e["run"]: e["broken"] for e in entries(store) if e["broken"]}
    assert list(broken) == ["p-replay-1-rerun"] and "held 1,000 patches at most, over its budget of 32" in broken["p-replay-1-rerun"]


def test_a_seed_scored_on_another_seeds_test_draw_is_set_aside(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        _study(store)
        for label, budget, held in (("naive", NAIVE, None), ("replay", BUDGET, 32)):
            res = _result(1, 0.9, held, budget if held else None, hashes={"cyto": {"test_hash": "cyto-test-0"}})
            store.put(f"p-{label}-1-rerun", _config(label, label, 1, budget), res)  # every strategy of seed 1 alike
        broken = {e["run"]: e["broken"] for e in entries(store) if e["broken"]}
    assert sorted(broken) == ["p-naive-1-rerun", "p-replay-1-rerun"]
    assert all("seed 1 was scored on seed 0's draw of domain 'cyto'" in why for why in broken.values()), broken


def test_seeds_that_split_a_small_folder_alike_by_chance_keep_their_protocol(tmp_path):
    """A folder split anew (resplit) chooses its test pairs by the seed among few: seeds 0 and 2
    choose alike from 3 pairs (numpy's default_rng), a draw each seed made of its own."""
    with Store(tmp_path / "r.sqlite") as store:
        for s in SEEDS:
            for label in ("naive", "ft"):
                cfg = _config(label, "naive", s)
                cfg["domains"][0] = {"name": "cyto", "kind": "folder", "params": {"path": "/x", "name": "cyto", "resplit": True}}
                alike = "a" if s in (0, 2) else "b"
                store.put(f"{label}{s}", cfg, _result(s, 0.3, hashes={"cyto": {"train_hash": f"tr-{alike}", "test_hash": f"te-{alike}"}}))
        rows = entries(store)
    assert not [e["run"] for e in rows if e["broken"]]


def _rows_that_read_alike(md: str) -> list[list[str]]:
    """The strategy names of each Markdown table of ``md`` that shows two rows under one name."""
    out = []
    for block in md.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("| ") and "| rank" not in line]
        names = [line.split("|")[2].strip() for line in rows]
        if len(names) != len(set(names)):
            out.append(names)
    return out


def test_no_table_shows_two_cells_under_one_name(tmp_path):
    from dqcl.results.formats import _markdown

    long = "e" * 195  # a label a spec allows (at most 200 characters), at two parameter values
    b64 = {**BUDGET, "size": 64}
    with Store(tmp_path / "r.sqlite") as store:
        for s in SEEDS:
            store.put(f"n{s}", _config("naive", "naive", s, NAIVE), _result(s, 0.1))
            store.put(f"a{s}", _config("replay", "replay", s, BUDGET), _result(s, 0.5, 32, BUDGET))
            # in the block of 32 patches, replay's label less its budget reads "replay" too
            store.put(f"c{s}", _config("replay [32 patches, 2 per step, matched]", "replay", s, BUDGET), _result(s, 0.9, 32, BUDGET))
            store.put(f"d{s}", _config("er", "er", s, b64), _result(s, 0.6, 64, b64))
            for lam in (100, 1000):
                cfg = _config(long, "ewc", s, NAIVE)
                cfg["strategy"]["params"] = {"ewc_lambda": lam}
                store.put(f"e{lam}-{s}", cfg, _result(s, 0.3 if lam == 100 else 0.4))
        rows = [e for e in entries(store) if not e["broken"]]
    md = _markdown(rows)
    assert "**cyto → histo" in md and not _rows_that_read_alike(md)


def test_a_matched_run_whose_config_leaves_the_batch_at_its_default_is_held_to_it(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        _study(store)
        cfg, res = _config("replay", "replay", 1, BUDGET), _result(1, 0.99, 32, BUDGET, per_step=(6, 10))
        del cfg["train"]["batch_size"]  # the default, 8, as the setting reads it
        store.put("p-replay-1-rerun", cfg, res)
        broken = {e["run"]: e["broken"] for e in entries(store) if e["broken"]}
    assert list(broken) == ["p-replay-1-rerun"] and "not the batch of 8" in broken["p-replay-1-rerun"]


def test_several_studies_are_checked_for_their_cellpose_before_the_first_trains(tmp_path):
    from dqcl.errors import ProtocolError
    from dqcl.study.run import run_specs

    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    second.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n").replace('name = "tiny"', 'name = "later"'))
    store_path = tmp_path / "r.sqlite"
    with Store(store_path) as store:
        store.put("old", _config("naive", "naive", 0, study="later"), _result(0, 0.3, cellpose="2.0.0"))
    with pytest.raises(ProtocolError, match="study 'later' holds runs trained with Cellpose 2.0.0"):
        run_specs([first, second], store=store_path, progress=False)
    with Store(store_path, readonly=True) as store:
        assert [r["key"] for r in store.runs()] == ["old"]  # the first study did not train either
