"""A run records the dqcl commit its process runs, not one committed while it trained (studies run for hours
in the background while the repository moves on)."""

import dqcl.core.provenance as provenance
from dqcl.config.expand import expand
from dqcl.config.parse import load_spec
from dqcl.train.run import run_one

from conftest import tiny_spec_text


def test_a_commit_made_while_a_run_trains_is_not_the_runs(tmp_path, monkeypatch):
    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    cfg = expand(load_spec(spec))[0]
    head = {"now": "aaaa1111"}
    monkeypatch.setattr(provenance, "source_version", lambda: head["now"])
    monkeypatch.setattr(provenance, "_SOURCE", {})  # a fresh process: nothing asked of git yet

    def step(msg: str) -> None:
        if msg.startswith("training"):
            head["now"] = "bbbb2222"  # someone commits while the run trains

    result = run_one(cfg, on_step=step)
    assert head["now"] == "bbbb2222"  # the commit did happen during the run
    assert result["versions"]["dqcl_commit"] == "aaaa1111"
