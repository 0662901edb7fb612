"""Untrusted structure (issue 13): a results store or a leaderboard.json someone sends you may hold
valid JSON of the wrong shape. `dqcl leaderboard build`, `dqcl.load_results` and `dqcl.load_curves`
refuse it with one line naming the file, the row and what is wrong (a `StoreError`), never a
traceback; and whatever JSON a row holds, reading it either works or fails that way."""

import copy
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import event, given, settings, strategies as st

import dqcl
from dqcl.cli import main
from dqcl.errors import DqclError, StoreError
from dqcl.evaluation.metrics import METRICS
from dqcl.results.store import Store

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "leaderboard" / "runs.sqlite"
PUBLISHED_JSON = ROOT / "leaderboard" / "leaderboard.json"
HOSTILE = "hostile-run"  # the key of the row under test, beside one good run


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dqcl: error: ") and "Traceback" not in err, err
    return err


def _short_line(err: DqclError) -> str:
    text = str(err)
    assert text.splitlines() == [text] and len(text) < 500, text
    return text


# ---- one good run ----------------------------------------------------------------------------


def _made_up_run() -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A run row of the shape `dqcl.train.run` stores, for a checkout without the published store."""
    cfg = {"study": "baselines", "strategy": {"label": "naive", "name": "naive", "params": {}}, "ordering": ["cyto", "histo"],
           "seed": 0, "version": "0.3.0", "data_manifests": [["cyto", "generated:cyto"], ["histo", "generated:histo"]]}
    res = {"R": {m: [[0.9, 0.1], [0.6, 0.95]] for m in METRICS}, "baseline": {m: [0.0, 0.0] for m in METRICS},
           "timings": {"prepare_s": 0.1, "train_s": [1.0, 1.0], "eval_s": [0.5, 0.5, 0.5], "total_s": 3.0},
           "curve": [{"experience": e, "epoch": 0, "loss": 1.0 - e / 4, "lr": 0.05, "images": 8 * (e + 1), "steps": e + 1} for e in (0, 1)],
           "norm_swap": {k: {m: [0.5] for m in METRICS} for k in ("new_weights_old_stats", "old_weights_new_stats")},
           "device": "cpu", "images_seen": 16, "peak_memory_mb": {"host": 100.0}, "steps": [1, 1], "model_sha256": "0" * 64,
           "versions": {"dqcl_commit": "0" * 40}, "attempts": 1, "executor": "local", "subset": None}
    return "made-up-run", cfg, res


def _real_run() -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(key, config, result) of a real run: a published naive run with its training curve and
    normalisation swap (no training needed), else a made-up one of the same shape."""
    if not PUBLISHED.is_file():
        return _made_up_run()
    with sqlite3.connect(f"file:{PUBLISHED}?mode=ro&immutable=1", uri=True) as c:
        for key, cfg, res in c.execute("SELECT key, config, result FROM runs WHERE label = 'naive' ORDER BY key"):
            cfg, res = json.loads(cfg), json.loads(res)
            if res.get("curve") and res.get("norm_swap") and len(cfg["ordering"]) == 2:
                return key, cfg, res
    return _made_up_run()


def _recorded(cfg: dict[str, Any], res: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run with what dqcl 0.4 runs record beside their scores, where it has none (the published
    runs are older): a [memory] table, compute counts, the memory held and the data record, so that
    the cases and the fuzzing below reach those fields too. A published naive run records its memory
    as null (it keeps none): it gets the record of a budgeted run too."""
    def put(part: dict, name: str, value: Any) -> None:
        if part.get(name) is None:
            part[name] = value

    put(cfg, "memory", {"size": 32, "rate": 0.0, "protocol": "batch", "replay_batch": 4, "compute": "matched"})
    put(res, "compute", {"steps": 4, "forward": 32, "backward": 32, "step_forward": 32, "step_backward": 32,
                         "per_step": [8, 8], "samples_per_step": 8.0})
    put(res, "memory", {"budget": "32 patches", "size": 32, "rate": None, "protocol": "batch", "replay_batch": 4,
                        "compute": "matched", "held": [0, 32], "max_held": 32})
    put(res, "data", {d: {"train_hash": "0" * 16, "test_hash": "1" * 16, "train_patches": 40, "test_patches": 10,
                          "test_objects": 120} for d in cfg["ordering"]})
    return cfg, res


KEY, CONFIG, RESULT = _real_run()
CONFIG, RESULT = _recorded(CONFIG, RESULT)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A store holding the one good run, whole in its main file (a copy of the file is the store)."""
    path = tmp_path_factory.mktemp("good") / "store.sqlite"
    with Store(path) as store:
        store.put(KEY, CONFIG, RESULT)
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return path


def _with_row(good: Path, dest: Path, config: Any, result: Any, key: Any = HOSTILE) -> Path:
    """A copy of the good store with one more row, written raw (as a hand edit or another program would)."""
    shutil.copy(good, dest)
    with sqlite3.connect(dest) as c:
        c.execute("DELETE FROM runs WHERE key = ?", (key,))
        c.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                  (key, CONFIG["study"], "naive", "naive", json.dumps(CONFIG["ordering"]), 0, config, result, time.time() + 1))
    c.close()
    return dest


def _texts(change: Callable[[dict, dict], Any]) -> tuple[Any, Any]:
    """The stored (config, result) texts of the good run (as a second run, seed 1) after ``change``,
    which edits copies of its config and result in place or returns the two texts itself."""
    cfg, res = copy.deepcopy(CONFIG), copy.deepcopy(RESULT)
    cfg["seed"] = 1 - cfg["seed"] if cfg["seed"] in (0, 1) else 0  # another cell than the good run's
    texts = change(cfg, res)
    return texts if isinstance(texts, tuple) else (json.dumps(cfg), json.dumps(res))


def _set(part: str, path: str, value: Any) -> Callable[[dict, dict], None]:
    """A change setting config/result field ``path`` (dots between keys) to ``value``."""
    def change(cfg: dict, res: dict) -> None:
        *parents, last = path.split(".")
        node = cfg if part == "config" else res
        for name in parents:
            node = node[name]
        node[last] = value

    return change


def _drop(part: str, name: str) -> Callable[[dict, dict], None]:
    return lambda cfg, res: (cfg if part == "config" else res).pop(name)


def _all_metrics(R: list) -> Callable[[dict, dict], None]:
    return lambda cfg, res: res.update(R={m: copy.deepcopy(R) for m in METRICS})


def _joint(one_row: set[str]) -> Callable[[dict, dict], None]:
    """A change making the run a joint-trained one (one R row allowed) with one row for ``one_row`` metrics,
    under the good run's label."""
    def change(cfg: dict, res: dict) -> None:
        cfg["strategy"]["name"] = "joint"
        res["R"].update({m: res["R"][m][-1:] for m in one_row})

    return change


DEEP = "[" * 100_000 + "]" * 100_000  # json.loads recurses once per level: RecursionError

# case -> (change to the good run, what the message must say)
STORE_CASES: dict[str, tuple[Callable[[dict, dict], Any], str]] = {
    "R_null": (_set("result", "R", None), "result.R is null, expected an object"),
    "R_empty": (_set("result", "R", {}), "result.R.iou is null, expected a list of 2 rows"),
    "R_metric_empty": (_set("result", "R.ap50", []), "result.R.ap50 is an empty list"),
    "R_ragged": (_set("result", "R.ap50", [[0.5, 0.5], [0.5]]), "result.R.ap50[1] has 1 score, expected 2"),
    "R_strings": (_set("result", "R.ap50", [["0.5", 0.5], [0.5, 0.5]]), 'result.R.ap50[0][0] is "0.5", expected a finite score in [0, 1]'),
    "R_nan": (_set("result", "R.ap50", [[0.5, float("nan")], [0.5, 0.5]]), "result.R.ap50[0][1] is NaN"),
    "R_infinite": (_set("result", "R.pq", [[0.5, 0.5], [float("inf"), 0.5]]), "result.R.pq[1][0] is Infinity"),
    "R_huge_int": (_set("result", "R.ap50", [[10**400, 0.5], [0.5, 0.5]]), "result.R.ap50[0][0] is 1000000"),
    "R_out_of_range": (_set("result", "R.ap50", [[0.5, 7.5], [0.5, 0.5]]), "result.R.ap50[0][1] is 7.5, expected a finite score in [0, 1]"),
    "R_bool": (_set("result", "R.ap50", [[True, 0.5], [0.5, 0.5]]), "result.R.ap50[0][0] is true"),
    "R_nested_lists": (_set("result", "R.ap50", [[[0.5], 0.5], [0.5, 0.5]]), "result.R.ap50[0][0] is a list of 1 item"),
    "R_one_row_for_naive": (_all_metrics([[0.5, 0.5]]), "result.R.iou has 1 row, expected 2 rows of 2 scores"),
    "R_rows_differ_by_metric": (_joint({"ap50"}), "result.R has matrices of 1 and 2 rows"),
    "R_one_row_beside_runs_of_two": (_joint(set(METRICS)), "its R matrices have 1 row but those of run"),
    "result_without_R": (_drop("result", "R"), "result.R is null"),
    "baseline_short": (_set("result", "baseline.ap50", [0.0]), "result.baseline.ap50 has 1 score, expected 2"),
    "result_a_list": (lambda c, r: (json.dumps(c), "[1, 2]"), "result is a list of 2 items, expected an object"),
    "config_a_list": (lambda c, r: ('["naive"]', json.dumps(r)), "config is a list of 1 item, expected an object"),
    "config_null": (lambda c, r: ("null", json.dumps(r)), "config is null, expected an object"),
    "study_missing": (_drop("config", "study"), "config.study is null, expected a non-empty string"),
    "study_a_number": (_set("config", "study", 5), "config.study is 5"),
    "label_missing": (lambda c, r: c["strategy"].pop("label"), "config.strategy.label is null"),
    "label_a_list": (_set("config", "strategy.label", ["naive"]), "config.strategy.label is a list of 1 item"),
    "strategy_a_string": (_set("config", "strategy", "naive"), 'config.strategy is "naive", expected an object'),
    "params_a_list": (_set("config", "strategy.params", [1]), "config.strategy.params is a list of 1 item"),
    "ordering_a_string": (_set("config", "ordering", "cyto>histo"), 'config.ordering is "cyto>histo", expected a non-empty list'),
    "ordering_of_numbers": (_set("config", "ordering", [1, 2]), "config.ordering[0] is 1, expected a non-empty string"),
    "ordering_empty": (_set("config", "ordering", []), "config.ordering is an empty list"),
    "seed_negative": (_set("config", "seed", -1), "config.seed is -1, expected an integer in [0, 4294967296)"),
    "seed_too_large": (_set("config", "seed", 2**32), "config.seed is 4294967296"),
    "seed_a_string": (_set("config", "seed", "0"), 'config.seed is "0"'),
    "seed_a_float": (_set("config", "seed", 1.5), "config.seed is 1.5"),
    "subset_rate_a_string": (_set("config", "subset", {"selector": "mmv", "rate": "10 %"}), 'config.subset.rate is "10 %"'),
    "manifests_not_pairs": (_set("config", "data_manifests", [["cyto"]]), "config.data_manifests[0] is a list of 1 item"),
    "timings_missing": (_drop("result", "timings"), "result.timings is null, expected an object"),
    "curve_not_objects": (_set("result", "curve", [1, 2]), "result.curve[0] is 1, expected an object"),
    "curve_loss_a_string": (lambda c, r: r["curve"][0].update(loss="nan"), 'result.curve[0].loss is "nan", expected a number'),
    "curve_without_steps": (lambda c, r: r["curve"][0].pop("steps"), "result.curve[0].steps is null"),
    "norm_swap_wrong": (_set("result", "norm_swap", {"new_weights_old_stats": []}), "result.norm_swap.new_weights_old_stats is an empty list"),
    "peak_memory_a_list": (_set("result", "peak_memory_mb", [1]), "result.peak_memory_mb is a list of 1 item"),
    "deep_result": (lambda c, r: (json.dumps(c), DEEP), "its stored result is nested too deeply"),
    "deep_but_parseable": (_set("config", "strategy.params", {"x": json.loads("[" * 40 + "]" * 40)}), "its stored config is nested too deeply"),
    "truncated_json": (lambda c, r: (json.dumps(c), json.dumps(r)[:40]), "its stored result is not valid JSON"),
    "not_utf8": (lambda c, r: (json.dumps(c), b"\xff\xfe\x00"), "its stored result is not valid JSON"),
    # a JSON escape of a lone surrogate is valid JSON, but no UTF-8 file (md, csv, tex) can hold what it reads as
    "study_a_lone_surrogate": (_set("config", "study", "a\ud800b"), "config.study holds U+D800, a lone surrogate"),
    "domain_a_lone_surrogate": (_set("config", "ordering", ["cyto", "\udcff"]), "config.ordering[1] holds U+DCFF"),
    "manifest_a_lone_surrogate": (_set("config", "data_manifests", [["cyto", "x\udfff"]]), "config.data_manifests[0][1] holds U+DFFF"),
    "curve_key_a_lone_surrogate": (lambda c, r: r["curve"][0].update({"\ud800": 1.0}), "result.curve[0] (a key) holds U+D800"),
    # load_curves adds these columns to each row: a row's own would relabel the run
    "curve_key_naming_the_run": (lambda c, r: r["curve"][0].update(study=1.0), 'result.curve[0] has the key "study"'),
    # what dqcl 0.4 runs record: the memory budget, compute, the memory held, the data record
    "memory_table_a_list": (_set("config", "memory", [32]), "config.memory is a list of 1 item, expected an object"),
    "memory_size_a_string": (_set("config", "memory.size", "32"), 'config.memory.size is "32", expected an integer'),
    "memory_size_huge": (_set("config", "memory.size", 10**400), "config.memory.size is 1000000"),
    "memory_rate_nan": (_set("config", "memory.rate", float("nan")), "config.memory.rate is NaN, expected a finite number in [0, 1]"),
    "memory_protocol_a_number": (_set("config", "memory.protocol", 3), "config.memory.protocol is 3, expected a string"),
    "compute_a_string": (_set("result", "compute", "8 per step"), 'result.compute is "8 per step", expected an object'),
    "samples_per_step_a_string": (_set("result", "compute.samples_per_step", "8"), 'result.compute.samples_per_step is "8"'),
    "samples_per_step_nan": (_set("result", "compute.samples_per_step", float("nan")), "result.compute.samples_per_step is NaN"),
    "samples_per_step_infinite": (_set("result", "compute.samples_per_step", float("inf")),
                                  "result.compute.samples_per_step is Infinity"),
    "samples_per_step_huge": (_set("result", "compute.samples_per_step", 1e300),
                              "result.compute.samples_per_step is 1e+300, expected a finite number in [0, 9.22337e+18]"),
    "per_step_of_three": (_set("result", "compute.per_step", [1, 2, 3]),
                          "result.compute.per_step is a list of 3 items, expected a list of 2 sample counts"),
    "steps_negative": (_set("result", "compute.steps", -4), "result.compute.steps is -4, expected an integer"),
    "memory_record_a_list": (_set("result", "memory", [32]), "result.memory is a list of 1 item, expected an object"),
    "max_held_huge": (_set("result", "memory.max_held", 2**70), "result.memory.max_held is 1180591620717411303424"),
    "max_held_a_float": (_set("result", "memory.max_held", 31.5), "result.memory.max_held is 31.5, expected an integer"),
    "held_not_a_list": (_set("result", "memory.held", 32), "result.memory.held is 32, expected a list of patch counts"),
    "held_of_strings": (_set("result", "memory.held", ["0", 32]), 'result.memory.held[0] is "0", expected an integer'),
    "data_a_list": (_set("result", "data", [1]), "result.data is a list of 1 item, expected an object"),
    "data_record_a_number": (lambda c, r: r["data"].update(cyto=5), 'result.data["cyto"] is 5, expected an object'),
    "test_objects_negative": (lambda c, r: r["data"][c["ordering"][0]].update(test_objects=-1), ".test_objects is -1"),
    "test_objects_nan": (lambda c, r: r["data"][c["ordering"][0]].update(test_objects=float("nan")), ".test_objects is NaN"),
    "train_hash_a_number": (lambda c, r: r["data"][c["ordering"][0]].update(train_hash=7), ".train_hash is 7, expected a string"),
}


@pytest.mark.parametrize("name", list(STORE_CASES))
def test_a_stored_row_of_the_wrong_shape_is_refused_in_one_line_naming_it(name, good, tmp_path, capsys):
    change, says = STORE_CASES[name]
    store = _with_row(good, tmp_path / "store.sqlite", *_texts(change))
    before = store.read_bytes()
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "lb")]) == 2
    err = _one_line(capsys)
    assert str(store) in err and f'run "{HOSTILE}"' in err and says in err, err
    for load in (dqcl.load_results, dqcl.load_curves):
        with pytest.raises(StoreError) as got:
            load(store)
        text = _short_line(got.value)
        assert str(store) in text and f'run "{HOSTILE}"' in text and says in text
    assert store.read_bytes() == before


def test_a_hostile_run_key_does_not_break_the_line(good, tmp_path, capsys):
    store = _with_row(good, tmp_path / "store.sqlite", *_texts(_set("result", "R", None)), key="evil\nkey\u2028" + "k" * 300)
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "lb")]) == 2
    err = _one_line(capsys)
    assert '"evil\\nkey' in err and "result.R is null" in err and len(err) < 500


def test_the_good_store_and_every_published_run_pass(good, tmp_path):
    """The checks refuse nothing dqcl writes: the good run, and every run and entry published."""
    assert len(dqcl.load_results(good)) == len(METRICS) and len(dqcl.load_curves(good)) == len(RESULT["curve"])
    if PUBLISHED.is_file():
        shutil.copy(PUBLISHED, tmp_path / "published.sqlite")  # read a copy: the published file is never opened for writing
        assert len(dqcl.load_results(tmp_path / "published.sqlite")) > 0
        assert len(dqcl.load_curves(tmp_path / "published.sqlite")) > 0
    if PUBLISHED_JSON.is_file():
        assert len(dqcl.load_results(PUBLISHED_JSON)) > 0


# ---- leaderboard.json ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_json(good) -> str:
    """The good run's leaderboard.json text, as `dqcl leaderboard build` writes it."""
    from dqcl.results.leaderboard import entries

    with Store(good, readonly=True) as store:
        return json.dumps(entries(store), indent=1) + "\n"


def _entry(change: Callable[[dict], Any]) -> Callable[[str], str]:
    """A leaderboard.json text whose first entry is changed by ``change``."""
    def text(good: str) -> str:
        rows = json.loads(good)
        change(rows[0])
        return json.dumps(rows)

    return text


JSON_CASES: dict[str, tuple[Callable[[str], Any], str]] = {
    "an_object": (lambda g: '{"study": "s"}', 'it holds an object with keys "study", not a list of entries'),
    "a_number": (lambda g: "3", "it holds 3, not a list of entries"),
    "rows_not_objects": (lambda g: "[1, 2]", "entry 0: the entry is 1, expected an object"),
    "row_without_study": (_entry(lambda e: e.pop("study")), "entry 0: study is null, expected a non-empty string"),
    "strategy_a_list": (_entry(lambda e: e.update(strategy=["naive"])), "entry 0: strategy is a list of 1 item"),
    "ordering_of_numbers": (_entry(lambda e: e.update(ordering=[1, 2])), "entry 0: ordering[0] is 1"),
    "ordering_missing": (_entry(lambda e: e.pop("ordering")), "entry 0: ordering is null"),
    "seed_a_string": (_entry(lambda e: e.update(seed="0")), 'entry 0: seed is "0"'),
    "acc_a_string": (_entry(lambda e: e.update(acc="0.5")), 'entry 0: acc is "0.5", expected a number'),
    "R_of_strings": (_entry(lambda e: e.update(R=[["x"]])), 'entry 0: R[0][0] is "x"'),
    "too_deep": (lambda g: DEEP, "nested too deeply"),
    "not_json": (lambda g: g[:30], "not valid JSON"),
    "not_utf8": (lambda g: b"\xff\xfe\x00", "not valid JSON"),
}


@pytest.mark.parametrize("name", list(JSON_CASES))
def test_a_leaderboard_json_of_the_wrong_shape_is_refused_in_one_line(name, good_json, tmp_path):
    make, says = JSON_CASES[name]
    path = tmp_path / "leaderboard.json"
    text = make(good_json)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(StoreError) as got:
        dqcl.load_results(path)
    line = _short_line(got.value)
    assert str(path) in line and says in line, line


# ---- files that are no store at all ---------------------------------------------------------


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE users (name TEXT)")
    c.close()


def _other_columns(path: Path) -> None:
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        c.execute("INSERT INTO meta VALUES ('schema', '1')")
        c.execute("CREATE TABLE runs (name TEXT)")
    c.close()


FILE_CASES: dict[str, tuple[Callable[[Path], Any], str]] = {
    "missing": (lambda p: None, "no results store here"),
    "a_directory": (lambda p: p.mkdir(), "not a file"),
    "empty": (lambda p: p.write_bytes(b""), "not a usable dqcl results store"),
    "text": (lambda p: p.write_text("hello"), "not an SQLite database"),
    "corrupted": (lambda p: p.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8), "not a usable dqcl results store"),
    "someone_elses_database": (_foreign, "not a dqcl results store"),
    "other_columns": (_other_columns, "cannot read results"),
}


@pytest.mark.parametrize("load", ["load_results", "load_curves"])
@pytest.mark.parametrize("name", list(FILE_CASES))
def test_the_python_api_raises_only_store_errors_for_what_a_file_can_be(name, load, tmp_path):
    make, says = FILE_CASES[name]
    path = tmp_path / "store.sqlite"
    make(path)
    with pytest.raises(StoreError) as got:
        getattr(dqcl, load)(path)
    assert says in _short_line(got.value)


@pytest.mark.parametrize("name", ["missing", "a_directory"])
def test_a_leaderboard_json_that_is_no_file_is_a_store_error(name, tmp_path):
    path = tmp_path / "leaderboard.json"
    FILE_CASES[name][0](path)
    with pytest.raises(StoreError, match="not a readable leaderboard.json"):
        dqcl.load_results(path)


@pytest.mark.parametrize("kind", ["link_to_dev_zero", "fifo", "over_the_size_limit"])
def test_a_leaderboard_json_that_never_ends_or_is_too_big_is_refused_before_it_is_read(kind, tmp_path, monkeypatch):
    """/dev/zero would be read until memory runs out and a FIFO would wait for a writer forever."""
    import os

    path = tmp_path / "leaderboard.json"
    if kind == "link_to_dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("[" * 5000)
        monkeypatch.setenv("DQCL_MAX_FILE_BYTES", "1000")
    with pytest.raises(StoreError, match="not a readable leaderboard.json: (not a regular file|5,000 bytes, over)"):
        dqcl.load_results(path)


def test_load_curves_given_a_leaderboard_json_says_it_holds_no_curves(good_json, tmp_path):
    (tmp_path / "leaderboard.json").write_text(good_json)
    with pytest.raises(StoreError, match="holds no training curves"):
        dqcl.load_curves(tmp_path / "leaderboard.json")


# ---- any JSON at all -------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``value`` (the first three items of a list)."""
    out = [prefix]
    items = value.items() if isinstance(value, dict) else enumerate(value[:3]) if isinstance(value, list) else ()
    for k, v in items:
        out += _paths(v, prefix + (k,))
    return out


PATHS = [p for p in _paths({"config": CONFIG, "result": RESULT}) if p]  # not (): a row is always a config and a result
ENTRY_KEYS = ("study", "strategy", "strategy_name", "ordering", "seed", "metric", "acc", "bwt", "R", "baseline", "params", "data_manifests")
ENTRY_PATHS = [(), (0,), *[(0, k) for k in ENTRY_KEYS], (0, "R", 0), (0, "R", 0, 1), (0, "ordering", 0), (1,)]
KEYS = sorted({k for p in PATHS for k in p if isinstance(k, str)} | set(ENTRY_KEYS))
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
           | st.sampled_from([-1, 2**32, 2**63, 10**400, 0.5, "naive", "joint", "cyto", "histo", "mmv", "all"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4), max_leaves=12)


def _changed(doc: Any, changes: list[tuple]) -> Any:
    """``doc`` (a deep copy) with each change (path, value, drop) applied where its path still leads
    somewhere: the value put there, or, with ``drop``, that key removed."""
    doc = copy.deepcopy(doc)
    for path, value, drop in changes:
        if not path:
            doc = value
            continue
        node = doc
        try:
            for k in path[:-1]:
                node = node[k]
            if drop and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change removed or replaced what this one leads to
    return doc


def _read_or_refuse(read: Callable[[], Any]) -> None:
    """Reading either works or raises a DqclError of one short line; anything else fails the test."""
    try:
        read()
        event("read")
    except DqclError as err:
        _short_line(err)
        event("refused")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scratch")


@settings(derandomize=True, max_examples=100, deadline=None)
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), JSON | st.just(None), st.booleans()), min_size=1, max_size=3))
def test_any_json_in_a_stored_row_is_read_or_refused_in_one_line(good, scratch, changes):
    doc = _changed({"config": CONFIG, "result": RESULT}, changes)
    if isinstance(doc, dict) and "config" in doc and "result" in doc:
        texts = (json.dumps(doc["config"]), json.dumps(doc["result"]))
    else:  # the whole document replaced: it is the config, and the result too
        texts = (json.dumps(doc), json.dumps(doc))
    store = _with_row(good, scratch / "store.sqlite", *texts)
    _read_or_refuse(lambda: dqcl.load_results(store))
    _read_or_refuse(lambda: dqcl.load_curves(store))


@settings(derandomize=True, max_examples=100, deadline=None)
@given(changes=st.lists(st.tuples(st.sampled_from(ENTRY_PATHS), JSON | st.just(None), st.booleans()), min_size=1, max_size=3))
def test_any_json_as_a_leaderboard_json_is_read_or_refused_in_one_line(good_json, scratch, changes):
    path = scratch / "leaderboard.json"
    path.write_text(json.dumps(_changed(json.loads(good_json), changes)))
    _read_or_refuse(lambda: dqcl.load_results(path))
