"""Crash safety and determinism: a study killed again and again at random moments (SIGKILL)
ends, once resumed, with exactly the runs and numbers of an uninterrupted study; the same
spec and seed give the same R matrices on this CPU."""

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time

from dqcl.cli import main

from conftest import tiny_spec_text

STRATS = "[strategies.naive]\n[strategies.ewc]\n[strategies.replay]\nrate = 0.5\n"


def _rows(store):
    with sqlite3.connect(store) as c:
        return {k: json.loads(r) for k, r in c.execute("SELECT key, result FROM runs")}


def _spec(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(tiny_spec_text(tmp_path, STRATS))
    return p


def test_repeated_random_sigkills_leave_exactly_the_uninterrupted_results(tmp_path):
    spec = _spec(tmp_path)
    ref_store = tmp_path / "ref.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(ref_store), "--quiet"]) == 0
    ref = _rows(ref_store)

    store = tmp_path / "k" / "k.sqlite"
    ckdir = store.parent / "checkpoints"
    rng = random.Random(7)
    code = "import sys; from dqcl.cli import main; sys.exit(main(sys.argv[1:]))"

    def state():
        count = 0
        if store.exists():
            with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as c:
                try:
                    count = c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                except sqlite3.Error:
                    pass
        cks = {(p.name, p.stat().st_mtime_ns) for p in ckdir.glob("*.pt")} if ckdir.is_dir() else set()
        return count, cks

    kills = 0
    for attempt in range(30):
        proc = subprocess.Popen([sys.executable, "-c", code, "run", "benchmark", str(spec), "--store", str(store), "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        start = state()
        # kill at a random moment after the study has made progress (a run stored or a checkpoint
        # written): sometimes at once, sometimes while it trains or scores the next experience
        while proc.poll() is None and state() == start:
            time.sleep(0.02)
        if proc.poll() is None:
            time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read()
        break
    else:
        raise AssertionError("the study never finished")
    assert kills >= 3  # it really was killed, again and again
    got = _rows(store)
    assert sorted(got) == sorted(ref)
    for key in ref:
        assert got[key]["R"] == ref[key]["R"] and got[key]["images_seen"] == ref[key]["images_seen"]
        assert got[key]["model_sha256"] == ref[key]["model_sha256"]  # bit-identical trained networks
    with sqlite3.connect(store) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == len(ref)
    assert not list((store.parent / "checkpoints").glob("*")) if (store.parent / "checkpoints").exists() else True


def test_same_spec_and_seed_give_the_same_r_matrices(tmp_path):
    spec = _spec(tmp_path)
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(a), "--quiet"]) == 0
    assert main(["run", "benchmark", str(spec), "--store", str(b), "--quiet"]) == 0
    ra, rb = _rows(a), _rows(b)
    assert sorted(ra) == sorted(rb)
    for key in ra:
        assert ra[key]["R"] == rb[key]["R"] and ra[key]["baseline"] == rb[key]["baseline"]
        assert ra[key]["model_sha256"] == rb[key]["model_sha256"]  # the weights, not only the (coarse) scores


class _Payload:
    """What a hostile checkpoint would carry: unpickling it runs code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_in_the_checkpoint_folder_is_refused_not_run(tmp_path, capsys):
    import torch

    from dqcl.config.expand import expand
    from dqcl.config.parse import load_spec

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    (cfg,) = expand(load_spec(spec))
    store = tmp_path / "r.sqlite"
    marker = tmp_path / "pwned.txt"
    ck = tmp_path / "checkpoints" / f"{cfg.key}.pt"
    ck.parent.mkdir()
    torch.save({"format": 1, "key": cfg.key, "done": 1, "state": _Payload(str(marker))}, ck)
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    assert not marker.exists()  # the payload never ran
    (res,) = _rows(store).values()
    assert res["resumed_from"] == 0  # the run started over instead
    assert ck.with_suffix(".refused").exists() and not ck.exists()


def test_leftovers_of_a_kill_between_storing_and_cleaning_up_are_removed_on_resume(tmp_path):
    """A kill after a run was stored but before its checkpoint was removed, or during a checkpoint
    write, leaves files in checkpoints/; the next start of the study removes them."""
    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    keys = sorted(_rows(store))
    ckdir = tmp_path / "checkpoints"
    ckdir.mkdir(exist_ok=True)
    (ckdir / f"{keys[0]}.pt").write_bytes(b"stale")
    (ckdir / f".{keys[-1]}.pt.x1y2z3.tmp").write_bytes(b"half")
    (ckdir / "notes.txt").write_text("the user's")  # not dqcl's: stays
    before = _rows(store)
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    assert sorted(p.name for p in ckdir.iterdir()) == ["notes.txt"]
    assert _rows(store) == before
