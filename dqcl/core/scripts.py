"""What the scripts in ``benchmarks/`` share with the ``dqcl`` command: a user's mistake (a bad
argument, a store of the wrong shape, an output over an input) is one line ``dqcl: error: ...`` on
stderr and exit code 2, never a traceback or argparse's usage text."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn, Sequence

from ..errors import DqclError
from .text import one_line

__all__ = ["ArgumentParser", "error_line", "run_script"]


def error_line(err: DqclError) -> str:
    """The one line a user reads for ``err``."""
    return f"dqcl: error: {one_line(str(err))}"


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage mistakes raise `DqclError` (one line, via `run_script`) instead of
    printing the usage and exiting; ``--help`` still prints the help. An option must be spelt
    whole: a typo's prefix (``--stor``) is refused rather than taken for the option it begins."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise DqclError(message)


def run_script(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """``main(argv)``'s exit code (None is 0), with a `DqclError` as its one line on stderr and 2."""
    try:
        return main(argv) or 0
    except DqclError as err:
        print(error_line(err), file=sys.stderr)
        return 2
