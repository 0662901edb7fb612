"""What a memory holds (issue 27): the share of its samples from earlier domains while a later domain
trains, recorded per experience and shown: a reservoir (ER) also takes the current domain's samples,
a storage filled after each experience (replay) holds only earlier domains."""

import json

import pytest

from dqcl.checks import tiny_spec


def _run(tmp_path, name):
    from dqcl.config.expand import expand
    from dqcl.config.parse import parse_spec
    from dqcl.train.run import run_one

    raw = tiny_spec(name, tmp_path)
    raw["memory"] = {"size": 4, "protocol": "batch", "replay_batch": 2, "compute": "matched"}
    raw["train"].update({"steps": 40, "warmup_steps": 1})
    (cfg,) = expand(parse_spec(json.loads(json.dumps(raw))))
    return run_one(cfg)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("content")
    return {name: _run(tmp, name) for name in ("er", "replay")}


def test_a_reservoir_holds_the_current_domain_too_and_a_storage_only_earlier_ones(results):
    er, replay = results["er"]["memory"]["old_share"], results["replay"]["memory"]["old_share"]
    assert er[0] == 0.0 and replay[0] is None  # while the first domain trains: the reservoir holds it alone, the storage nothing
    assert 0.0 < er[1] < 1.0  # the reservoir took histo's samples in place of cyto's as it trained
    assert replay[1] == 1.0


def test_the_leaderboard_shows_the_share(results, tmp_path):
    from dqcl.results.leaderboard import write_leaderboard
    from dqcl.results.store import Store

    with Store(tmp_path / "r.sqlite") as store:
        from dqcl.config.expand import expand
        from dqcl.config.parse import parse_spec

        for name, res in results.items():
            raw = tiny_spec(name, tmp_path)
            raw["memory"] = {"size": 4, "protocol": "batch", "replay_batch": 2, "compute": "matched"}
            raw["train"].update({"steps": 40, "warmup_steps": 1})
            (cfg,) = expand(parse_spec(json.loads(json.dumps(raw))))
            store.put(cfg.key, cfg.to_dict(), res)
        write_leaderboard(store, tmp_path / "lb")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    lines = md.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| group"))
    header = [c.strip() for c in lines[at].strip("|").split("|")]
    column = header.index("old-domain share")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[at + 2:at + 4]]
    cells = {row[1]: row[column] for row in rows}
    assert cells["replay"] == "1.00" and 0 < float(cells["er"]) < 1, cells
