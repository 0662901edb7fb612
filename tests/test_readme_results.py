"""The README says only what the tables say (issue 26): its results block is generated from the published
leaderboard.json and equal to it, and every three-decimal score the rest of its Published results section
states is one the published tables (or the under-training check it cites) show."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _section(text: str) -> str:
    return text.split("\n## Published results\n", 1)[1].split("\n## ", 1)[0]


def test_the_results_block_is_what_the_leaderboard_says(capsys):
    assert _script("readme_results").main(["--check"]) == 0, capsys.readouterr().err


def test_a_stale_block_is_refused_in_one_line(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text().replace("told apart among the others", "told apart, said by hand", 1))
    assert _script("readme_results").main(["--check", "--readme", str(readme)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "its results block is not what" in err


def test_every_score_the_results_prose_states_is_in_the_published_tables(capsys):
    prose = _section((ROOT / "README.md").read_text())
    prose = prose.split("<!-- results:begin -->")[0] + prose.split("<!-- results:end -->")[1]
    shown = (ROOT / "leaderboard" / "leaderboard.md").read_text() + (ROOT / "leaderboard" / "archive" / "leaderboard.md").read_text()
    assert _script("steps_check").main([]) == 0  # the under-training table the prose cites
    shown += capsys.readouterr().out
    # every 95 % interval stated, as the tables write it: a number found by chance somewhere in a large file
    # proves little, an interval "[+0.106, +0.222]" (with its signs) does
    stated = set(re.findall(r"\[[+−-]?\d\.\d{3}, [+−-]?\d\.\d{3}\]", prose))
    assert len(stated) >= 10
    missing = sorted(x for x in stated if x.replace("−", "-") not in shown)
    assert not missing, f"intervals the README states that no published table shows: {missing}"
