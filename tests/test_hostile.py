"""Hostile input (issue 13) beyond the one-line corpus: a user's files are never deleted, nothing is
written outside the places named, nothing hangs, nothing is silently wrong; and a property-based
test of specs with hostile values in every field."""

import hashlib
import json
import os
import sqlite3
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dqcl.cli import main
from dqcl.evaluation.metrics import METRICS

from conftest import tiny_spec_text
from fixture_server import FileServer
from test_data import fixture_recipe  # noqa: F401  (a pytest fixture)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dqcl: error: ") and "Traceback" not in err, err
    return err


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- data loss -------------------------------------------------------------------------------


def test_fetch_into_a_users_folder_refuses_and_deletes_nothing(tmp_path, capsys, monkeypatch):
    from test_data import _bbbc038_zip

    monkeypatch.setenv("DQCL_HOME", str(tmp_path / "home"))
    mine = tmp_path / "mine"
    for rel in ("train/a_img.png", "test/b_img.png", "notes.txt"):
        (mine / rel).parent.mkdir(parents=True, exist_ok=True)
        (mine / rel).write_text(f"the user's {rel}")
    before = _tree(mine)
    served = tmp_path / "served"
    served.mkdir()
    _bbbc038_zip(served / "stage1_train.zip", n=3)
    with FileServer(served) as srv:
        assert main(["data", "fetch", "bbbc038", "--to", str(mine), "--mirror", srv.url]) == 2
        err = _one_line(capsys)
        assert str(mine) in err and "not made by dqcl" in err and "notes.txt" in err and "--overwrite" in err
        assert _tree(mine) == before  # every file of the user's is still there, unchanged
        assert main(["data", "fetch", "bbbc038", "--to", str(mine), "--mirror", srv.url, "--overwrite"]) == 0
    assert (mine / "notes.txt").read_text() == "the user's notes.txt"  # only train/ and test/ are replaced
    assert (mine / "dqcl_manifest.json").is_file()


# ---- writes outside the places named ---------------------------------------------------------


def _store_with_study(path: Path, study: str) -> None:
    from dqcl.results.store import Store

    with Store(path) as store:
        for seed in (0, 1):
            cfg = {"study": study, "strategy": {"label": "naive", "name": "naive", "params": {}}, "ordering": ["cyto", "histo"], "seed": seed}
            res = {"R": {m: [[0.8, 0.0], [0.1, 0.7]] for m in METRICS}, "baseline": {m: [0.0, 0.0] for m in METRICS},
                   "timings": {"train_s": [1.0], "eval_s": [1.0], "total_s": 2.0}}
            store.put(f"{study}-{seed}", cfg, res)


@pytest.mark.parametrize("study", ["../../escaped", "/tmp/absolute-escape", "ünïcødé-" * 40 + "🦠" * 30])
def test_leaderboard_files_stay_inside_out_whatever_the_study_is_called(study, tmp_path):
    inside = tmp_path / "work"
    inside.mkdir()
    _store_with_study(inside / "r.sqlite", study)
    around = sorted(p.name for p in tmp_path.iterdir())
    out = inside / "lb"
    assert main(["leaderboard", "build", "--store", str(inside / "r.sqlite"), "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == around
    assert not Path("/tmp/absolute-escape_cyto-histo_R_ap50.png").exists()
    files = [p for p in out.iterdir()]
    assert {"leaderboard.md", "index.html", "summary_ap50.png"} <= {p.name for p in files}
    assert sum(p.suffix == ".png" for p in files) >= 3  # the plots were written too, not only the tables
    assert all(len(p.name) < 120 for p in files)


# ---- hangs -----------------------------------------------------------------------------------


def test_a_trickling_download_server_is_given_up_on_at_the_wall_clock_limit(tmp_path, capsys, monkeypatch, fixture_recipe):
    from dqcl.data.sources.recipes import Download

    served = tmp_path / "served"
    served.mkdir()
    (served / "slow.zip").write_bytes(b"x" * 1000)
    monkeypatch.setenv("DQCL_DOWNLOAD_TIMEOUT", "2")
    with FileServer(served) as srv:
        srv.trickle["slow.zip"] = 0.5  # a byte every half second: each read succeeds, the transfer never ends
        fixture_recipe("fx-slow", [Download(f"{srv.url}/slow.zip")])
        t = time.perf_counter()
        assert main(["data", "fetch", "fx-slow", "--to", str(tmp_path / "x")]) == 2
        took = time.perf_counter() - t
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the "downloading" progress line
    assert "took longer than 2 s" in err and "DQCL_DOWNLOAD_TIMEOUT" in err and took < 15


def test_a_zip_bomb_is_refused_before_anything_is_extracted(tmp_path, monkeypatch):
    from dqcl.data.sources.download import unpack
    from dqcl.errors import DataError

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/ok.txt", "fine")
        zf.writestr("a/zeros.bin", b"\0" * (40 * 2**20))  # 40 MiB of zeros: about 40 kB packed
    assert bomb.stat().st_size < 200_000
    into = tmp_path / "into"
    with pytest.raises(DataError, match="times as many.*DQCL_MAX_UNPACK_RATIO.*nothing was extracted"):
        unpack(bomb, into)
    assert not any(into.rglob("*"))  # not even the small member
    monkeypatch.setenv("DQCL_MAX_UNPACKED_BYTES", str(2**20))
    monkeypatch.setenv("DQCL_MAX_UNPACK_RATIO", "1e6")
    with pytest.raises(DataError, match="over the limit of 1,048,576"):
        unpack(bomb, into)
    monkeypatch.setenv("DQCL_MAX_UNPACKED_BYTES", str(2**30))
    unpack(bomb, into)  # raised limits: extracted whole
    assert (into / "a" / "zeros.bin").stat().st_size == 40 * 2**20 and not list(into.glob(".unpacking-*"))


# ---- silent wrong results --------------------------------------------------------------------


def test_select_gives_the_same_coreset_for_huge_and_tiny_features(tmp_path):
    x = np.random.default_rng(0).standard_normal((300, 16))
    outs = {}
    for name, scale in (("plain", 1.0), ("huge", 2.0**660), ("tiny", 2.0**-660)):
        np.save(tmp_path / f"{name}.npy", x * scale)
        assert main(["select", str(tmp_path / f"{name}.npy"), "--ratio", "0.1", "--bins", "5", "--out", str(tmp_path / f"{name}-o.npy")]) == 0
        outs[name] = np.load(tmp_path / f"{name}-o.npy").tolist()
    assert outs["plain"] == outs["huge"] == outs["tiny"]
    np.save(tmp_path / "e200.npy", x * 1e200)  # squares overflow float64 unless scaled first
    assert main(["select", str(tmp_path / "e200.npy"), "--ratio", "0.1", "--bins", "5", "--out", str(tmp_path / "e-o.npy")]) == 0
    assert len(set(np.load(tmp_path / "e-o.npy").tolist()) & set(outs["plain"])) >= 0.8 * len(outs["plain"])


def test_score_on_masks_with_70000_labels_does_not_build_a_dense_overlap(tmp_path):
    import tifffile

    lab = np.arange(1, 70_001, dtype=np.int32).repeat(4).reshape(560, 500)  # 70,000 objects of 4 pixels
    pred = np.roll(lab, 1, axis=1)
    (tmp_path / "t").mkdir()
    (tmp_path / "p").mkdir()
    tifffile.imwrite(tmp_path / "t" / "a_masks.tif", lab)
    tifffile.imwrite(tmp_path / "p" / "a_cp_masks.tif", pred)
    # the child's own peak (VmHWM): ru_maxrss would carry over this test session's peak through exec
    code = ("import sys; from dqcl.cli import main; from dqcl.core.memory import peak_rss_mib; "
            "rc = main(sys.argv[1:]); print(rc, int(peak_rss_mib()))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code, "score", str(tmp_path / "t"), str(tmp_path / "p"), "--json"],
                         capture_output=True, text=True, check=True)
    *body, last = out.stdout.strip().splitlines()
    rc, peak_mb = map(int, last.split())
    assert rc == 0 and peak_mb < 1500  # a dense 70,001 x 70,001 float64 overlap alone would be 39 GB
    mean = json.loads("\n".join(body))["mean"]
    # a one-pixel shift leaves 3 of 4 pixels in place: every object matches at IoU 0.6, none at 0.75
    assert mean["ap50"] == 1.0 and mean["ap75"] == 0.0 and mean["pq"] == pytest.approx(0.6)


def test_a_checkpoint_that_lacks_its_keys_is_set_aside_and_the_run_completes(tmp_path, capsys):
    import torch

    from dqcl.config.expand import expand
    from dqcl.config.parse import load_spec

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    (cfg,) = expand(load_spec(spec))
    ck = tmp_path / "checkpoints" / f"{cfg.key}.pt"
    ck.parent.mkdir()
    torch.save({"format": 2, "key": cfg.key, "done": 1}, ck)  # weights-only loadable, but no state, no R
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "r.sqlite"), "--quiet"]) == 0
    assert ck.with_suffix(".refused").exists() and not ck.exists()
    with sqlite3.connect(tmp_path / "r.sqlite") as c:
        (res,) = [json.loads(r) for (r,) in c.execute("SELECT result FROM runs")]
    assert res["resumed_from"] == 0 and len(res["R"]["ap50"]) == 2


def test_a_store_is_read_without_writing_even_where_no_side_file_can_be_made(tmp_path, monkeypatch):
    """leaderboard build on a WAL store on a read-only mount: plain read-only mode needs a -shm file
    it cannot create there; dqcl then reads the file as it is."""
    import dqcl.results.store as st

    _store_with_study(tmp_path / "r.sqlite", "s")
    before = (tmp_path / "r.sqlite").read_bytes()
    real = sqlite3.connect

    def mount(path, **kw):
        if "mode=ro" in str(path) and "immutable=1" not in str(path):
            raise sqlite3.OperationalError("unable to open database file")  # what a read-only mount gives
        if not str(path).startswith("file:"):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return real(path, **kw)

    monkeypatch.setattr(st.sqlite3, "connect", mount)
    assert main(["leaderboard", "build", "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "lb")]) == 0
    assert (tmp_path / "lb" / "leaderboard.md").read_text().count("naive") >= 1
    assert (tmp_path / "r.sqlite").read_bytes() == before


# ---- specs with hostile values in every field ------------------------------------------------

_HOSTILE = [
    -1, 0, 1, 2**31, 2**32, 2**63 - 1, -(2**63), 1e308, -1e308, float("nan"), float("inf"), float("-inf"), 0.5, -0.0,
    "", " ", "../../../../etc/passwd", "/dev/zero", "~", "ünï🦠" * 50, "a" * 5000, "cuda:99", "$(rm -rf /)",
    True, False, [], [0], [-1, 2**40], ["x"], [[1, 2]], {}, {"a": 1}, {"kind": "folder", "path": "/"},
]


def _fields() -> list[tuple[str, ...]]:
    from dataclasses import fields

    from dqcl.config.schema import DataSpec, EvalSpec, LogSpec, ModelSpec, OutputSpec, TrainSpec

    out = [("study", k) for k in ("name", "seeds", "orderings", "data_seed", "device")]
    for table, cls in (("data", DataSpec), ("model", ModelSpec), ("train", TrainSpec), ("eval", EvalSpec),
                       ("output", OutputSpec), ("log", LogSpec)):
        out += [(table, f.name) for f in fields(cls)]
    out += [("domains", "cyto", k) for k in ("n_train", "n_test", "size", "kind")]
    out += [("strategies", "replay", "rate"), ("strategies", "replay", "strategy"), ("strategies", "nope", "x"),
            ("redundancy", "rates"), ("nonsense",)]
    return out


def test_specs_with_hostile_values_get_one_line_or_pass_preflight_and_write_nowhere_else(tmp_path_factory):
    import tomllib

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    fields = _fields()
    root = tmp_path_factory.mktemp("hostile")

    @settings(max_examples=int(os.environ.get("DQCL_HOSTILE_EXAMPLES", 80)), deadline=None, suppress_health_check=list(HealthCheck), derandomize=not os.environ.get("DQCL_HOSTILE_EXAMPLES"))
    @given(changes=st.lists(st.tuples(st.sampled_from(fields), st.sampled_from(_HOSTILE)), min_size=1, max_size=3))
    def check(changes):
        work = root / f"case{len(list(root.iterdir()))}"
        (work / "spec").mkdir(parents=True)
        raw = tomllib.loads(tiny_spec_text(work, "[strategies.naive]\n[strategies.replay]\nrate = 0.5\n"))
        for path, value in changes:
            table = raw
            for part in path[:-1]:
                table = table.setdefault(part, {}) if isinstance(table.get(part, {}), dict) else {}
            table[path[-1]] = value
        spec = work / "spec" / "s.toml"
        spec.write_text(_toml(raw))
        outside = sorted(os.listdir(root))  # every case's folder is inside root: a write elsewhere in it shows
        cwd = os.getcwd()
        os.chdir(work)
        try:
            from io import StringIO
            from contextlib import redirect_stderr

            err = StringIO()
            with redirect_stderr(err):
                code = main(["run", "benchmark", str(spec), "--store", str(work / "r.sqlite"), "--quiet", "--dry-run"])
        finally:
            os.chdir(cwd)
        text = err.getvalue().strip()
        assert code in (0, 2), (changes, code, text)
        if code == 2:
            assert len(text.splitlines()) == 1 and text.startswith("dqcl: error: ") and "Traceback" not in text, (changes, text)
        assert sorted(os.listdir(root)) == outside, changes  # nothing new outside the case's own folder
        assert not any(p.name.startswith("escaped") for p in root.rglob("*")), changes
        assert not (work / "r.sqlite").exists()  # a dry run stores nothing

    check()


def _toml(raw: dict) -> str:
    """TOML text for a spec dict whose values may be hostile (nan, inf, huge ints, nested lists)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(v)

    lines = []

    def table(prefix: str, d: dict):
        scalars = {k: v for k, v in d.items() if not (isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()) and prefix == "")}
        if prefix:
            lines.append(f"[{prefix}]")
        for k, v in d.items():
            if isinstance(v, dict) and (not prefix and k in ("domains", "strategies")):
                continue
            if isinstance(v, dict) and not prefix:
                continue
            lines.append(f"{json.dumps(k)} = {value(v)}")
        for k, v in d.items():
            if isinstance(v, dict) and not prefix:
                if k in ("domains", "strategies") and all(isinstance(x, dict) for x in v.values()):
                    for name, sub in v.items():
                        table(f"{k}.{json.dumps(name)}", sub)
                else:
                    table(json.dumps(k), v)
        del scalars

    table("", raw)
    return "\n".join(lines) + "\n"
