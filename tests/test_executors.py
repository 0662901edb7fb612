"""Executors, resumable studies and their bad input: real worker processes, a real local Ray
instance and real kills (SIGKILL, SIGINT) of real `dqcl run` processes."""

import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dqcl.cli import main

from conftest import tiny_spec_text

STRATS = "[strategies.naive]\n[strategies.replay]\nrate = 0.5\n"


def _spec(tmp_path: Path, seeds="[0, 1]", orderings='[["cyto", "histo"]]', extra="") -> Path:
    text = tiny_spec_text(tmp_path, STRATS).replace("seeds = [0]", f"seeds = {seeds}")
    text = text.replace('orderings = [["cyto", "histo"]]', f"orderings = {orderings}") + extra
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def _stored(store: Path) -> dict[str, dict]:
    with sqlite3.connect(store) as c:
        return {k: json.loads(r) for k, r in c.execute("SELECT key, result FROM runs")}


def _count(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as c:
            return c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0


def _dqcl(*args: str) -> subprocess.Popen:
    """``dqcl ARGS`` as a user starts it from a terminal: with Ctrl-C's default disposition. (A child
    inherits an ignored SIGINT, and under Cellpose 4 something earlier in the suite leaves the
    pytest process ignoring it; a terminal's dqcl never starts that way.)"""
    import signal

    code = "import sys; from dqcl.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _reference(tmp_path_factory, threads: int | None):
    import torch

    tmp = tmp_path_factory.mktemp("ref")
    spec = _spec(tmp)
    store = tmp / "ref.sqlite"
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    finally:
        torch.set_num_threads(before)
    return spec, _stored(store)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted study, run with the local executor (torch's default thread count,
    as a `dqcl run` process has)."""
    return _reference(tmp_path_factory, None)


@pytest.fixture(scope="module")
def reference_2_workers(tmp_path_factory):
    """The same, with the thread count each of 2 workers gets (cores / 2): CPU float sums depend on it."""
    return _reference(tmp_path_factory, max(1, (os.cpu_count() or 1) // 2))


def _same_results(got: dict, ref: dict) -> None:
    assert sorted(got) == sorted(ref)
    for key in ref:
        assert got[key]["R"] == ref[key]["R"], f"run {key} differs from the uninterrupted local study"
        assert got[key]["model_sha256"] == ref[key]["model_sha256"], f"run {key} trained different weights"
        # the processor, recorded with every CPU run: bit-identity holds only on the same kind (README, Determinism)
        assert got[key]["cpu"] == ref[key]["cpu"] and got[key]["cpu"]["torch_capability"]


def test_process_executor_gives_the_local_results(reference_2_workers, tmp_path):
    spec, ref = reference_2_workers
    store = tmp_path / "p.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet", "--executor", "process", "--workers", "2"]) == 0
    got = _stored(store)
    _same_results(got, ref)
    assert {r["executor"] for r in got.values()} == {"process"}
    assert len({r["worker"]["pid"] for r in got.values()}) == 2  # two workers took runs
    assert not (tmp_path / "checkpoints").exists()  # stored runs leave no checkpoint behind


def test_ray_executor_on_a_local_ray_instance_gives_the_local_results(reference_2_workers, tmp_path, capsys):
    pytest.importorskip("ray")
    spec, ref = reference_2_workers
    store = tmp_path / "ray.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet", "--executor", "ray", "--workers", "2"]) == 0
    got = _stored(store)
    _same_results(got, ref)
    assert {r["executor"] for r in got.values()} == {"ray"}
    assert all(r["worker"]["pid"] != os.getpid() for r in got.values())
    out = tmp_path / "lb"
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(out), "--cost"]) == 0
    md = (out / "leaderboard.md").read_text()
    assert "| naive" in md and "wall s/run" in md and "peak MiB" in md and "(host)" in md


def test_sigkill_between_runs_then_rerun_loses_and_repeats_nothing(reference, tmp_path):
    spec, ref = reference
    store = tmp_path / "k.sqlite"
    proc = _dqcl("run", "benchmark", str(spec), "--store", str(store), "--quiet")
    deadline = time.time() + 240
    while _count(store) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the study finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _count(store)
    assert 1 <= partial < len(ref)
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    with sqlite3.connect(store) as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM runs").fetchone() == (len(ref), len(ref))
    _same_results(_stored(store), ref)


def test_sigkill_inside_a_run_resumes_from_its_last_experience(tmp_path):
    spec = _spec(tmp_path, seeds="[0]", orderings='[["cyto", "histo", "nuclei"]]', extra="\n[domains.nuclei]\nn_train = 2\nn_test = 1\nsize = 96\n")
    text = spec.read_text().replace("[strategies.replay]\nrate = 0.5\n", "")
    spec.write_text(text)
    ref_store = tmp_path / "ref.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(ref_store), "--quiet"]) == 0
    (ref,) = _stored(ref_store).values()

    store = tmp_path / "k" / "k.sqlite"
    proc = _dqcl("run", "benchmark", str(spec), "--store", str(store), "--quiet")
    ckdir = store.parent / "checkpoints"
    deadline = time.time() + 240
    while not (ckdir.is_dir() and any(ckdir.glob("*.pt"))) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _count(store) == 0 and len(list(ckdir.glob("*.pt"))) == 1
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    (got,) = _stored(store).values()
    assert got["resumed_from"] >= 1  # it did not start over
    assert got["R"] == ref["R"] and got["images_seen"] == ref["images_seen"]
    assert got["model_sha256"] == ref["model_sha256"]
    assert not list(ckdir.glob("*.pt")) if ckdir.exists() else True


def test_sigint_stops_with_a_clear_line_and_the_rerun_finishes(reference, tmp_path):
    spec, ref = reference
    store = tmp_path / "i.sqlite"
    proc = _dqcl("run", "benchmark", str(spec), "--store", str(store), "--quiet")
    deadline = time.time() + 240
    while _count(store) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    _same_results(_stored(store), ref)


def _group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (zombies, already dead, are not counted)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_ctrl_c_in_a_terminal_stops_a_process_study_at_once_with_one_line(tmp_path):
    """A terminal sends Ctrl-C to the whole process group: the driver and each worker. The workers ignore it and the
    driver stops them at once: the user reads the one 'interrupted' line, no worker's traceback, and waits neither
    for runs that would not be stored nor on processes left behind."""
    spec = _spec(tmp_path)
    spec.write_text(spec.read_text().replace("epochs = 1", "epochs = 500"))  # runs of minutes: still training at Ctrl-C
    store = tmp_path / "g.sqlite"
    code = "import sys; from dqcl.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "run", "benchmark", str(spec), "--store", str(store), "--quiet",
                             "--executor", "process", "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,  # its own process group, as a terminal's job
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while len(_group(proc.pid)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)  # until both workers exist
    time.sleep(15)  # and are training
    assert proc.poll() is None, "the study finished before Ctrl-C"
    os.killpg(proc.pid, signal.SIGINT)
    t = time.time()
    _, err = proc.communicate(timeout=240)
    waited = time.time() - t
    assert proc.returncode == 130 and waited < 60, (proc.returncode, waited)
    assert "interrupted" in err and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    for _ in range(100):  # and nothing of the study keeps running: its workers were stopped with it
        if not _group(proc.pid):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"worker processes {_group(proc.pid)} outlived the interrupted study")
    assert _count(store) == 0


def test_a_ctrl_c_a_library_swallows_still_stops_the_study_after_its_run(reference, tmp_path, monkeypatch, capsys):
    """Avalanche's dataset traversal catches every BaseException, KeyboardInterrupt included: a Ctrl-C that lands
    there must still stop the study (after the run it hit, which is stored), exit 130 and say so in one line."""
    import dqcl.study.executors as executors

    spec, ref = reference
    real = executors.run_one
    calls = []

    def run_one(cfg, **kw):
        calls.append(cfg.key)
        try:  # what such a library does with the Ctrl-C that arrives inside it
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        except BaseException:
            pass
        return real(cfg, **kw)

    monkeypatch.setattr(executors, "run_one", run_one)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's: pytest's may be another
    try:
        store = tmp_path / "s.sqlite"
        assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is Python's own again
    finally:
        signal.signal(signal.SIGINT, before)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted; 1 run(s)" in err and "Traceback" not in err, err
    assert len(calls) == 1 and _count(store) == 1  # stopped after the run the Ctrl-C hit, which is stored whole


def test_a_ctrl_c_in_a_c_callback_is_not_printed_with_a_traceback_and_still_stops(monkeypatch):
    """Numba (through llvmlite) calls back into Python while it compiles: a Ctrl-C landing there cannot propagate,
    and Python prints it as 'Exception ignored ... Traceback' (seen in CI). The study must still stop, quietly;
    any other exception a callback swallows is reported as before."""
    import ctypes

    from dqcl.study.executors import ctrl_c

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: seen.append(args.exc_type))

    @ctypes.CFUNCTYPE(None)
    def interrupted():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)  # the handler runs here, inside the callback

    @ctypes.CFUNCTYPE(None)
    def broken():
        raise ValueError("a callback's own error")

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with ctrl_c():
                interrupted()  # the KeyboardInterrupt dies in ctypes; the study goes on to its end
                broken()
    finally:
        signal.signal(signal.SIGINT, before)
    assert seen == [ValueError]  # the Ctrl-C is not reported; the other error is
    assert sys.unraisablehook is not None and sys.unraisablehook.__name__ == "<lambda>"  # restored


# ---- bad input --------------------------------------------------------------------------


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_zero_workers_is_refused(tmp_path, capsys):
    spec = _spec(tmp_path)
    store = tmp_path / "s.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--executor", "process", "--workers", "0"]) == 2
    _one_line_error(capsys, "--workers", "in [1, 1024]")
    assert not store.exists()


def test_unreachable_ray_address_is_refused_at_once(tmp_path, capsys):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = _spec(tmp_path)
    store = tmp_path / "s.sqlite"
    t = time.time()
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--executor", "ray", "--address", f"127.0.0.1:{port}"]) == 2
    assert time.time() - t < 30
    _one_line_error(capsys, f"127.0.0.1:{port}", "cannot reach")
    assert _count(store) == 0


def test_ray_missing_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    spec = _spec(tmp_path, seeds="[0]")
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "s.sqlite"), "--executor", "ray"]) == 2
    _one_line_error(capsys, 'pip install -e ".[ray]"')


def test_full_disk_while_writing_a_checkpoint(tmp_path, capsys, monkeypatch):
    import torch

    import dqcl.train.checkpoint as ck

    spec = _spec(tmp_path, seeds="[0]")
    store = tmp_path / "s.sqlite"
    real_save = torch.save

    def full_disk(obj, fh, *a, **k):
        real_save(obj, fh, *a, **k)  # part of the file is written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", full_disk)
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 2
    _one_line_error(capsys, "checkpoint", "No space left on device")
    ckdir = tmp_path / "checkpoints"
    assert not [p for p in ckdir.rglob("*") if p.is_file()]  # no half-written checkpoint left
    assert _count(store) == 0
    monkeypatch.setattr(ck.torch, "save", real_save)
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    assert _count(store) == 2


CRASHY = '''
import os
from pathlib import Path

from avalanche.core import SupervisedPlugin
from avalanche.training import Naive

from dqcl.train import Base, register_strategy


class DieOnce(SupervisedPlugin):
    """Kills its worker process during the second experience, the first time only."""

    def __init__(self, marker):
        super().__init__()
        self.marker = marker

    def before_training_exp(self, strategy, **kwargs):
        if strategy.clock.train_exp_counter == 1 and not Path(self.marker).exists():
            Path(self.marker).write_text("died")
            os._exit(3)


@register_strategy("crashy", description="naive fine-tuning whose worker dies once", reference="")
def crashy(base: Base, *, marker: str = "") -> Naive:
    kw = base.kwargs()
    kw["plugins"] = kw["plugins"] + [DieOnce(marker)]
    return Naive(**kw)
'''


def test_a_worker_that_dies_mid_run_is_retried_and_recorded(tmp_path, monkeypatch):
    (tmp_path / "crashy_lab.py").write_text(CRASHY)
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "died.txt"
    strategies = f'[strategies.crashy]\nmarker = "{marker.as_posix()}"\n'
    spec = tmp_path / "c.toml"
    spec.write_text(tiny_spec_text(tmp_path, strategies))
    store = tmp_path / "c.sqlite"
    assert main(["--plugin", "crashy_lab", "run", "benchmark", str(spec), "--store", str(store), "--quiet",
                 "--executor", "process", "--workers", "1"]) == 0
    assert marker.exists()  # the worker really died once
    (res,) = _stored(store).values()
    assert res["attempts"] == 2 and res["resumed_from"] == 1


def test_a_rerun_under_a_newer_version_supersedes_the_old_run_in_tables(reference, tmp_path):
    from dqcl.results.leaderboard import entries
    from dqcl.results.store import Store

    spec, ref = reference
    store = tmp_path / "v.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    with Store(store) as s:
        runs = list(s.runs())
        old = runs[0]
        cfg = {**old["config"], "version": "0.0.1"}  # the same run, stored by an older dqcl
        s.put("old" + old["key"], cfg, {**old["result"], "R": {m: [[0.5, 0.5]] * 2 for m in old["result"]["R"]}})
        with s.conn:
            s.conn.execute("UPDATE runs SET created = 0 WHERE key = ?", ("old" + old["key"],))  # stored long before
        got = entries(s)
    assert len(got) == len(ref) * 10  # one entry per run and metric: the stale copy is not counted
    assert all(e["version"] != "0.0.1" for e in got)


def test_a_ray_worker_that_dies_mid_run_is_retried_and_recorded(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    (tmp_path / "crashy_ray_lab.py").write_text(CRASHY.replace('"crashy"', '"crashy_ray"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))  # Ray workers import it too
    marker = tmp_path / "died.txt"
    spec = tmp_path / "c.toml"
    spec.write_text(tiny_spec_text(tmp_path, f'[strategies.crashy_ray]\nmarker = "{marker.as_posix()}"\n'))
    store = tmp_path / "c.sqlite"
    assert main(["--plugin", "crashy_ray_lab", "run", "benchmark", str(spec), "--store", str(store), "--quiet",
                 "--executor", "ray", "--workers", "1"]) == 0
    assert marker.exists()  # the Ray worker really died once
    (res,) = _stored(store).values()
    assert res["attempts"] == 2 and res["resumed_from"] == 1 and res["executor"] == "ray"
