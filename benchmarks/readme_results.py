"""The README's results in words: the block between ``<!-- results:begin -->`` and ``<!-- results:end -->``
in README.md, generated from the published ``leaderboard/leaderboard.json`` (`dqcl.results.summary`), so that
no ranking or claim sentence in it can drift from the tables. ``--check`` changes nothing and exits 2 with one
line where the README's block is not what the leaderboard says.

    python benchmarks/readme_results.py [--check] [--leaderboard leaderboard/leaderboard.json] [--readme README.md]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
STUDIES = ("budget_baselines",)  # the ranked blocks the README states; every claim is stated


def block(leaderboard: Path) -> str:
    """The README's block as the leaderboard says it."""
    from dqcl.results.shape import load_entries
    from dqcl.results.summary import results_in_words

    def is_claim(line: str) -> bool:
        return line.startswith("- *") and not line.startswith("- **")

    rows = load_entries(leaderboard)
    ranked = [line for line in results_in_words([e for e in rows if e["study"] in STUDIES]) if not is_claim(line)]
    claims = [line for line in results_in_words(rows) if is_claim(line)]
    return "\n".join([BEGIN, *ranked, *claims, END])


def _main(argv: list[str] | None) -> None:
    from dqcl.core.scripts import ArgumentParser
    from dqcl.core.atomic import write_text
    from dqcl.errors import DqclError

    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--leaderboard", default=str(ROOT / "leaderboard" / "leaderboard.json"))
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    args = ap.parse_args(argv)
    readme = Path(args.readme)
    text = readme.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise DqclError(f"{readme}: needs one {BEGIN} ... {END} block")
    now = text[text.index(BEGIN):text.index(END) + len(END)]
    wanted = block(Path(args.leaderboard))
    if args.check:
        if now != wanted:
            raise DqclError(f"{readme}: its results block is not what {args.leaderboard} says; run python benchmarks/readme_results.py")
        return
    write_text(readme, text.replace(now, wanted))


def main(argv: list[str] | None = None) -> int:
    from dqcl.core.scripts import run_script

    return run_script(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
