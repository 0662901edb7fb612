"""Hostile input, second pass: names that would become paths, runs lost to an output file,
specs that blow up while read, numbers past float range, devices and weights files that are not
what they claim, `--copy-to` over a user's folder. Each meets one line and exit code 2."""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from dqcl.cli import main
from conftest import tiny_spec_text, write_pair, small_domain_arrays


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("dqcl: error: ") and "Traceback" not in err
    return err


def _spec(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


# ---- names are data -------------------------------------------------------------------------


@pytest.mark.parametrize("old, new, says", [
    ("[domains.histo]", '[domains."x/../../victim"]', "path separator"),
    ("[domains.histo]", '[domains."x\\\\..\\\\victim"]', "path separator"),
    ("[domains.histo]", '[domains.".."]', "a path"),
    ("[domains.histo]", '[domains."bad\\u0000name"]', "U+0000"),
    ("[strategies.naive]", '[strategies."a\\nb"]\nstrategy = "naive"', "U+000A"),
    ('name = "tiny"', 'name = "../../escaped"', "study name"),
    ('name = "tiny"', f'name = "{"n" * 1000}"', "1,000 characters"),
])
def test_a_name_that_could_become_a_path_is_refused_where_the_spec_is_read(old, new, says, tmp_path, capsys):
    text = tiny_spec_text(tmp_path).replace(old, new)
    if old == "[domains.histo]":
        text = text.replace('orderings = [["cyto", "histo"]]', 'orderings = "given"')
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(_spec(tmp_path, text)), "--store", str(store), "--quiet"]) == 2
    err = _one_line(capsys)
    assert says in err and len(err) < 500
    assert not store.exists()


@pytest.mark.parametrize("setting", ["study.name=caf\udce9", "strategies.\udcff.strategy=naive"])
def test_a_name_of_bytes_that_are_not_utf8_is_refused_where_the_spec_is_read(setting, tmp_path, capsys):
    """A --set argument of bytes that are not UTF-8 reaches Python as lone surrogates, which neither the
    store nor any output file can hold: one line, before anything is made."""
    store = tmp_path / "r.sqlite"
    spec = _spec(tmp_path, tiny_spec_text(tmp_path))
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--dry-run", "--set", setting]) == 2
    assert "a lone surrogate" in _one_line(capsys)
    assert not store.exists()


def test_every_artefact_of_a_run_whose_domains_are_named_like_paths_stays_beside_the_store(tmp_path):
    """A Spec made in Python skips the spec reader's name check: the files are still named safely,
    and a panel whose titles matplotlib cannot typeset does not lose the trained run."""
    from dqcl.config.parse import load_spec
    from dqcl.results.store import Store
    from dqcl.study.run import run_spec

    work = tmp_path / "work"
    work.mkdir()
    victim = tmp_path / "victim.pth"
    victim.write_bytes(b"the user's own model")
    spec = load_spec(_spec(work, tiny_spec_text(work, "[strategies.naive]\n")),
                     ["output.save_weights='all'", "output.panels=true", "log.csv=true", "log.tensorboard=true"])
    names = {"cyto": "../../victim", "histo": "$^{oops$"}
    domains = {names[k]: dataclasses.replace(d, name=names[k]) for k, d in spec.domains.items()}
    spec = dataclasses.replace(spec, domains=domains, orderings=((names["cyto"], names["histo"]),))
    before = sorted(p.name for p in tmp_path.iterdir())
    run_spec(spec, store=work / "r.sqlite", progress=False)
    assert victim.read_bytes() == b"the user's own model"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    with Store(work / "r.sqlite", readonly=True) as s:
        (run,) = s.runs()
    files = run["result"]["files"]
    assert "final.pth" in files and any(f.startswith("after_0_") and "/" not in f for f in files)
    folder = work / "runs" / run["key"]
    for f in files:
        assert (folder / f).resolve().parent == folder.resolve()
    made = [p for p in work.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(work.resolve()) for p in made)
    assert (folder / "metrics.csv").is_file() and any((folder / "tensorboard").rglob("*"))


def test_a_logger_folder_that_cannot_be_made_stops_the_study_before_training(tmp_path, capsys):
    (tmp_path / "runs").write_text("a file where the runs folder would go")
    store = tmp_path / "r.sqlite"
    spec = _spec(tmp_path, tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet", "--csv-log"]) == 2
    assert "runs" in _one_line(capsys)
    assert not store.exists()


# ---- lazy and bounded expansion --------------------------------------------------------------


def _many_domains(tmp_path: Path, n: int, orderings: str) -> Path:
    domains = "".join(f"[domains.d{i}]\nkind = \"nuclei\"\nn_train = 1\nn_test = 1\nsize = 64\n" for i in range(n))
    # pad: a 64 px nuclei image rescaled to 30 px objects can be 62 px, under the patch (preflight refuses that, as a run would)
    return _spec(tmp_path, f'[study]\nname = "organs"\norderings = {orderings}\ndevice = "cpu"\n[data]\npatch_size = 64\nstride = 64\n'
                           'pad = true\n'
                           f'[model]\nwidths = [8, 16, 32, 64]\n{domains}[strategies.naive]\n')


def test_all_orderings_of_twelve_domains_are_refused_with_their_count_at_once(tmp_path, capsys):
    import time

    t = time.perf_counter()
    assert main(["run", "benchmark", str(_many_domains(tmp_path, 12, '"all"')), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 2
    assert "479,001,600" in _one_line(capsys)
    assert time.perf_counter() - t < 10


def test_a_study_over_twelve_domains_in_the_given_order_starts(tmp_path, capsys):
    assert main(["run", "benchmark", str(_many_domains(tmp_path, 12, '"given"')), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 0
    assert "1 run(s) would run" in capsys.readouterr().out


def test_a_study_of_more_runs_than_the_bound_is_refused_with_the_count(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DQCL_MAX_RUNS", "10")
    spec = _spec(tmp_path, tiny_spec_text(tmp_path, "[strategies.naive]\n[strategies.ewc]\n[strategies.si]\n")
                 .replace("seeds = [0]", "seeds = [0, 1, 2, 3]"))
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 2
    err = _one_line(capsys)
    assert "12 runs" in err and "DQCL_MAX_RUNS" in err


# ---- numbers, devices, paths, weights files --------------------------------------------------

HUGE = "9" * 400


@pytest.mark.parametrize("args, says", [
    (["--set", f"train.lr={HUGE}"], "train.lr"),
    (["--set", f"train.epochs={HUGE}"], "train.epochs"),
    (["--set", f"study.seeds=[{HUGE}]"], "study.seeds"),
    (["--set", f"study.data_seed={HUGE}"], "study.data_seed"),
    (["--set", f"strategies.replay.rate={HUGE}"], "rate"),
    (["--set", "strategies.d.strategy='derpp'", "--set", f"strategies.d.mem_size={HUGE}"], "mem_size"),
    (["--workers", HUGE], "--workers"),
    (["--set", f"{'k' * 100_000}=1"], "unknown key"),
    (["--device", "cuda:99"], "GPU"),
    (["--device", "cuda"], "GPU"),
])
def test_numbers_beyond_range_devices_and_huge_keys_get_one_short_line(args, says, tmp_path, capsys):
    spec = _spec(tmp_path, tiny_spec_text(tmp_path))
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "r.sqlite"), "--dry-run", *args]) == 2
    err = _one_line(capsys)
    assert says in err and len(err) <= 500, err


def test_a_path_under_a_user_who_does_not_exist_gets_one_line(tmp_path, capsys):
    text = tiny_spec_text(tmp_path).replace("[domains.histo]\n", '[domains.histo]\nkind = "folder"\npath = "~nosuchuser_dqcl/data"\n[domains.x]\n')
    assert main(["run", "benchmark", str(_spec(tmp_path, text)), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 2
    assert "~nosuchuser_dqcl" in _one_line(capsys)


class _Planted:  # a pickle that is not tensors: torch's weights-only reader refuses it
    pass


def _damaged_files(tmp_path: Path) -> dict[str, Path]:
    import torch

    files = {"empty": tmp_path / "empty.pth", "garbage": tmp_path / "garbage.pth", "pickle": tmp_path / "pickle.pth",
             "cut": tmp_path / "cut.pth"}
    files["empty"].write_bytes(b"")
    files["garbage"].write_bytes(os.urandom(3000))
    files["pickle"].write_bytes(pickle.dumps(_Planted()))
    torch.save({"w": torch.zeros(1000)}, files["cut"])
    files["cut"].write_bytes(files["cut"].read_bytes()[:700])
    return files


@pytest.mark.parametrize("kind", ["empty", "garbage", "pickle", "cut"])
def test_a_damaged_weights_file_gets_one_line_that_never_advises_unsafe_loading(kind, tmp_path, capsys):
    bad = _damaged_files(tmp_path)[kind]
    spec = _spec(tmp_path, tiny_spec_text(tmp_path).replace("[model]\n", f'[model]\ninit = "{bad.name}"\n'))
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 2
    err = _one_line(capsys)
    assert bad.name in err and "weights_only" not in err and "False" not in err
    folder = tmp_path / "imgs"
    imgs, masks = small_domain_arrays(3, 64)
    for i in range(3):
        write_pair(folder, f"s{i}", imgs[i], masks[i])
    for option in (["--embedder", "style", "--checkpoint", str(bad)], ["--embedder", "mae", "--mae-weights", str(bad)]):
        assert main(["select", str(folder), "--rate", "0.5", "--bins", "1", "--out", str(tmp_path / "n.txt"), *option]) == 2
        err = _one_line(capsys)
        assert bad.name in err and "weights_only" not in err


def test_gallery_of_no_samples_is_a_usage_error(tmp_path, capsys):
    assert main(["domains", "gallery", "cyto", "--out", str(tmp_path / "g.png"), "-n", "0"]) == 2
    assert "-n" in _one_line(capsys)


# ---- --copy-to never replaces what the user made ---------------------------------------------


def _images(folder: Path, n: int = 4) -> Path:
    imgs, masks = small_domain_arrays(n, 64)
    for i in range(n):
        write_pair(folder, f"s{i}", imgs[i], masks[i])
    return folder


def test_copy_to_a_users_folder_or_the_source_is_refused_and_changes_nothing(tmp_path, capsys):
    source = _images(tmp_path / "src")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "s0_img.png").write_bytes(b"my own image")
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    args = ["select", str(source), "--rate", "0.5", "--bins", "1"]
    assert main([*args, "--copy-to", str(mine)]) == 2
    assert "mine" in _one_line(capsys)
    assert [p.name for p in mine.iterdir()] == ["s0_img.png"] and (mine / "s0_img.png").read_bytes() == b"my own image"
    assert main([*args, "--copy-to", str(source)]) == 2
    assert "folder selected from" in _one_line(capsys)
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before
    # a folder dqcl filled is refilled with the new selection only; --overwrite adds beside the user's files
    ours = tmp_path / "ours"
    assert main([*args, "--copy-to", str(ours)]) == 0
    first = {p.name for p in ours.iterdir()}
    assert main([*args, "--copy-to", str(ours), "--seed", "3", "--variant", "random", "--rate", "0.25"]) == 0
    second = {p.name for p in ours.iterdir()}
    assert len(second) == 3 and second <= first | {p.name.replace("_img", "") for p in source.iterdir()}
    assert main([*args, "--copy-to", str(mine), "--overwrite"]) == 0
    assert len(list(mine.iterdir())) > 1


# ---- random names meet the spec reader -------------------------------------------------------


def test_random_names_in_a_spec_are_taken_as_written_or_refused_in_one_line(tmp_path):
    import tomllib

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from dqcl.config.parse import parse_spec
    from dqcl.core.text import safe_stem
    from dqcl.errors import DqclError

    raw = tomllib.loads(tiny_spec_text(tmp_path))

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(study=st.text(max_size=300), domain=st.text(max_size=40), label=st.text(max_size=40))
    def check(study, domain, label):
        spec = {**raw, "study": {**raw["study"], "name": study, "orderings": [["cyto", domain]] if domain != "cyto" else "given"},
                "domains": {"cyto": raw["domains"]["cyto"], domain: {"kind": "histo", "n_train": 2, "n_test": 1, "size": 96}},
                "strategies": {label: {"strategy": "naive"}}}
        try:
            parsed = parse_spec(spec, "s.toml", tmp_path)
        except DqclError as err:
            assert "\n" not in str(err)  # one line even from the Python API; it names the file
            assert "s.toml" in str(err)
            return
        for name in (parsed.name, *parsed.domains, *parsed.strategies):
            assert "/" not in name and "\\" not in name and name not in (".", "..") and "\x00" not in name
            stem = safe_stem(name)
            assert "/" not in stem and not stem.startswith(".") and len(stem) <= 80

    check()


def test_a_run_folder_that_is_a_link_to_a_users_folder_is_refused_before_training(tmp_path, capsys):
    """runs/<key> made a symbolic link (a store folder someone sent): the run's final.pth would replace
    the user's file of that name where the link leads. Refused in preflight; the user's file stays."""
    from dqcl.config.parse import load_spec
    from dqcl.study.preflight import preflight

    spec = _spec(tmp_path, tiny_spec_text(tmp_path, "[strategies.naive]\n[output]\nsave_weights = 'final'\n"))
    (key,) = [cfg.key for cfg in preflight(load_spec(spec)).runs]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "final.pth").write_bytes(b"the user's own model")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / key).symlink_to(mine)
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 2
    err = _one_line(capsys)
    assert key in err and "symbolic link" in err
    assert not store.exists() and (mine / "final.pth").read_bytes() == b"the user's own model"


@pytest.mark.parametrize("name", ["leaderboard.json", "index.html", "figure.png"])
def test_a_leaderboard_is_never_written_over_the_store_it_is_built_from(name, tmp_path, capsys):
    from dqcl.results.store import Store

    store = tmp_path / name
    with Store(store):
        pass
    before = store.read_bytes()
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path)]) == 2
    assert "over the results store" in _one_line(capsys)
    assert store.read_bytes() == before and not (tmp_path / "leaderboard.md").exists()


def test_select_never_writes_its_out_over_a_file_it_selects_from(tmp_path, capsys):
    feats = tmp_path / "f.npy"
    np.save(feats, np.random.default_rng(0).standard_normal((20, 4)))
    source = _images(tmp_path / "src")
    before = {p: p.read_bytes() for p in [feats, *source.iterdir()]}
    assert main(["select", str(feats), "--rate", "0.5", "--out", str(tmp_path / "." / "f.npy")]) == 2
    assert "the file selected from" in _one_line(capsys)
    link = tmp_path / "link.png"
    link.symlink_to(source / "s1_masks.png")  # a link to an input is that input
    for out in (source / "s0_img.png", link):
        assert main(["select", str(source), "--rate", "0.5", "--bins", "1", "--out", str(out)]) == 2
        assert "a file selected from" in _one_line(capsys)
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("change, says", [
    (lambda raw: raw.__setitem__(1, 2), "the key 1 is not text"),
    (lambda raw: raw["study"].__setitem__(("a",), 2), "study: the key ('a',) is not text"),
    (lambda raw: raw["train"].__setitem__(None, 2), "train: the key None is not text"),
    (lambda raw: raw["model"].__setitem__("widths", (8, 16, 32, 64)), "model.widths: expected a list of int"),
])
def test_a_dict_spec_with_keys_that_are_not_text_is_a_spec_error(change, says, tmp_path):
    """dqcl.run(dict): a dict from Python may hold what no TOML can; still one SpecError line."""
    import tomllib

    from dqcl.errors import SpecError
    from dqcl.study.run import run_spec

    raw = tomllib.loads(tiny_spec_text(tmp_path))
    change(raw)
    with pytest.raises(SpecError, match=re.escape(says)):
        run_spec(raw, store=tmp_path / "r.sqlite", dry_run=True)
