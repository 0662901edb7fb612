"""`dqcl tune` (issue 27): every strategy tuned with one trial budget on a validation split of its training
images (never a test image), resumable, and its chosen values taken by a spec."""

import json

import pytest

from dqcl.cli import main

from conftest import tiny_spec_text


def _spec(tmp_path, strategies="[strategies.naive]\n[strategies.ewc]\n", validation=0.5):
    text = tiny_spec_text(tmp_path, strategies).replace("n_train = 2", "n_train = 3")
    text = text.replace("epochs = 1", "steps = 3\nwarmup_steps = 1")
    if validation:
        text = text.replace("stride = 48", f"stride = 48\nvalidation = {validation}")
    p = tmp_path / "t.toml"
    p.write_text(text)
    return p


def test_a_tuning_study_runs_end_to_end_resumes_and_a_spec_takes_its_values(tmp_path, capsys):
    spec, out, store = _spec(tmp_path), tmp_path / "tuned.json", tmp_path / "tuning" / "t.sqlite"
    assert main(["tune", str(spec), "--trials", "2", "--out", str(out), "--store", str(store), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["trials_per_strategy"] == 2 and doc["validation"] == 0.5 and set(doc["strategies"]) == {"naive", "ewc"}
    ewc = doc["strategies"]["ewc"]
    assert set(ewc["space"]) == {"lr", "ewc_lambda"} and len(ewc["trials"]) == 2
    assert 0.005 <= ewc["best"]["lr"] <= 0.2 and 1.0 <= ewc["best"]["ewc_lambda"] <= 1e5
    assert set(doc["strategies"]["naive"]["space"]) == {"lr"}  # naive's learning rate is tuned too
    # every trial's runs scored a validation split held out of the training images, never the test split
    import sqlite3

    with sqlite3.connect(store) as c:
        configs = [json.loads(r) for (r,) in c.execute("SELECT config FROM runs")]
    assert len(configs) == 2 * 2 and all(cfg["data"]["validation"] == 0.5 for cfg in configs)
    # resumed: four trials asked, two done, two more run
    assert main(["tune", str(spec), "--trials", "4", "--out", str(out), "--store", str(store), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert all(len(s["trials"]) == 4 for s in doc["strategies"].values())
    # each with values of its own: a resumed sampler does not draw the first trials' values again (their runs are
    # stored, so a repeat would finish at once, train nothing and still count toward the budget)
    assert all(len({json.dumps(t["params"], sort_keys=True) for t in s["trials"]}) == 4 for s in doc["strategies"].values())
    with sqlite3.connect(store) as c:
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2 * 4
    # a spec takes the chosen values with tuned = FILE: the run's learning rate and lambda are the tuned ones
    from dqcl.config.expand import expand
    from dqcl.config.parse import load_spec

    used = tmp_path / "u.toml"
    used.write_text(tiny_spec_text(tmp_path, '[strategies.ewc_tuned]\nstrategy = "ewc"\ntuned = "tuned.json"\n'))
    (cfg,) = expand(load_spec(used))
    assert cfg.strategy.params["lr"] == pytest.approx(doc["strategies"]["ewc"]["best"]["lr"])
    assert cfg.strategy.params["ewc_lambda"] == pytest.approx(doc["strategies"]["ewc"]["best"]["ewc_lambda"])
    assert cfg.to_dict()["strategy"]["tuned"]["trials"] == 4 and cfg.to_dict()["strategy"]["tuned"]["file"] == "tuned.json"
    # the leaderboard shows default and tuned side by side: the chosen values with the range searched and the budget
    used.write_text(tiny_spec_text(tmp_path, '[strategies.ewc]\n[strategies.ewc_tuned]\nstrategy = "ewc"\ntuned = "tuned.json"\n'))
    default, _ = expand(load_spec(used))
    assert "tuned" not in default.to_dict()["strategy"]  # an untuned run's key is what it was
    runs = tmp_path / "runs.sqlite"
    assert main(["run", "benchmark", str(used), "--store", str(runs), "--quiet"]) == 0
    assert main(["leaderboard", "build", "--store", str(runs), "--out", str(tmp_path / "lb")]) == 0
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    (line,) = [ln for ln in md.splitlines() if "Tuning, " in ln]
    best = doc["strategies"]["ewc"]["best"]
    assert "Tuning, tuned (4 trials per strategy on a 0.5 validation share" in line and line.count("trials per strategy") == 1
    assert f"ewc_tuned at ewc_lambda {best['ewc_lambda']:.3g} (searched 1 to 1e+05, log)" in line
    # the untuned values after the tuned ones: its own lambda and the spec's learning rate, which it did not set
    assert line.endswith(f". untuned: ewc at ewc_lambda 100, lr {default.train.lr:.3g}.")
    # and a table of its own puts the tuned cell beside the untuned one, each with its values and protocol
    section = md.split("## Tuned beside untuned (ap50)")[1].split("\n## ")[0]
    cells = {tuple(c.strip() for c in ln.strip("|").split("|"))[4:7] for ln in section.splitlines() if ln.startswith("| ewc ")}
    assert cells == {("ewc", f"ewc_lambda 100, lr {default.train.lr:.3g}", "untuned"),
                     ("ewc_tuned", f"ewc_lambda {best['ewc_lambda']:.3g}, lr {best['lr']:.3g}",
                      "tuned: 4 trials, 0.5 validation share, tuned.json")}  # label, values, chosen
    page = (tmp_path / "lb" / "index.html").read_text()  # the page has the same table
    assert "<h2 id='tuned-beside-untuned'>Tuned beside untuned</h2>" in page and "<td>ewc_tuned</td>" in page
    # the grid behind the values: every trial of the tuning file its runs took, the chosen values marked
    assert main(["leaderboard", "build", "--store", str(runs), "--out", str(tmp_path / "lb"), "--tuned", str(out)]) == 0
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    grid = md.split("## Tuning trials: tuned.json (SHA-256 ")[1].split("\n## ")[0]
    trial_rows = [ln for ln in grid.splitlines() if ln.startswith(("| ewc ", "| naive "))]
    assert len(trial_rows) == 2 * 4 and sum(ln.rstrip(" |").endswith("chosen") for ln in trial_rows) == 2
    (chosen,) = [ln for ln in trial_rows if ln.startswith("| ewc ") and ln.rstrip(" |").endswith("chosen")]
    assert f"ewc_lambda {best['ewc_lambda']:.3g}, lr {best['lr']:.3g}" in chosen
    assert "Tuning trials: tuned.json" in (tmp_path / "lb" / "index.html").read_text()
    # a tuning file no stored run took is refused in one line, before anything is written
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**doc, "validation": 0.3}))
    capsys.readouterr()
    assert main(["leaderboard", "build", "--store", str(runs), "--out", str(tmp_path / "lb2"), "--tuned", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--tuned" in err and "no run of the store took its values" in err, err
    assert not (tmp_path / "lb2").exists()
    assert "ewc_lambda 100" in section and section.count("tuned: 4 trials, 0.5 validation share, tuned.json") == 1
    assert section.count("1 epoch per experience, constant") == 2


def test_tuning_that_would_score_the_test_images_is_refused(tmp_path, capsys):
    spec = _spec(tmp_path, validation=0)
    out = tmp_path / "tuned.json"
    assert main(["tune", str(spec), "--trials", "1", "--out", str(out), "--store", str(tmp_path / "t.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.validation is 0: tuning would score the test images" in err
    assert not out.exists() and not (tmp_path / "t.sqlite").exists()


def test_a_validation_split_holds_whole_training_images_out():
    import numpy as np

    from dqcl.data.streams import PatchData
    from dqcl.train.run import validation_split

    names = tuple(f"img{i}@{y},0" for i in range(4) for y in (0, 48))
    data = PatchData("d", "train", np.arange(8, dtype=np.float32).reshape(8, 1, 1, 1), np.zeros((8, 4, 1, 1), np.float32), names)
    train, val = validation_split(data, 0.25, data_seed=3)
    held = {n.rpartition("@")[0] for n in val.names}
    assert len(held) == 1 and len(val) == 2 and len(train) == 6 and not held & {n.rpartition("@")[0] for n in train.names}
    assert validation_split(data, 0.25, data_seed=3)[1].names == val.names  # the data seed decides it


def test_a_bad_tuned_file_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.json").write_text('{"strategies": 3}')
    spec = tmp_path / "u.toml"
    spec.write_text(tiny_spec_text(tmp_path, '[strategies.ewc]\ntuned = "bad.json"\n'))
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "strategies.ewc.tuned" in err and "not a dqcl tuning result" in err


def test_strategies_tuned_apart_share_one_budget_and_the_last_run_writes_them_all(tmp_path, capsys):
    """`--strategy` splits a spec's tuning across tuners (machines) sharing the Optuna storage: each tunes only
    its own; a run without it then finds those budgets spent, tunes the rest and writes every strategy."""
    import sqlite3

    spec, store = _spec(tmp_path), tmp_path / "tuning" / "t.sqlite"
    part = tmp_path / "ewc.json"
    assert main(["tune", str(spec), "--trials", "2", "--strategy", "ewc", "--out", str(part), "--store", str(store), "--quiet"]) == 0
    assert set(json.loads(part.read_text())["strategies"]) == {"ewc"}
    with sqlite3.connect(store) as c:
        assert {s for (s,) in c.execute("SELECT strategy FROM runs")} == {"ewc"}
    whole = tmp_path / "tuned.json"
    assert main(["tune", str(spec), "--trials", "2", "--out", str(whole), "--store", str(store), "--quiet"]) == 0
    doc = json.loads(whole.read_text())
    assert set(doc["strategies"]) == {"naive", "ewc"}
    assert doc["strategies"]["ewc"]["trials"] == json.loads(part.read_text())["strategies"]["ewc"]["trials"]  # not tuned again
    with sqlite3.connect(store) as c:
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2 * 2  # two trials of each, none twice
    capsys.readouterr()
    assert main(["tune", str(spec), "--trials", "2", "--strategy", "gem", "--out", str(tmp_path / "x.json"),
                 "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no strategy 'gem' to tune (the spec has naive, ewc)" in err
    assert not (tmp_path / "x.json").exists()
