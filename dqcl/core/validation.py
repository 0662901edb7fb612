"""Checks shared by every place that reads a user's settings: names, types, ranges, paths.

Each returns or raises a message that names the key and the problem, so the CLI can print
it as one line.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Iterable

from ..errors import SpecError

__all__ = ["expand_user", "did_you_mean", "unknown_key", "type_ok", "out_of_range", "resolve_inside", "confine_write", "env_number"]


def expand_user(value: str | Path, where: str = "") -> Path:
    """``Path(value).expanduser()``, with '~someone' who is not a user here (or a home that cannot
    be found) as one line naming the path, not a RuntimeError."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        user = str(value).split("/", 1)[0]
        raise SpecError(f"{where + ': ' if where else ''}{str(value)[:120]}: cannot expand '{user[:60]}' (no such user's home here)") from None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_key(where: str, key: str, known: Iterable[str]) -> SpecError:
    known = sorted(known)
    if not isinstance(key, str):  # a dict spec from Python may have any key
        return SpecError(f"{where}: the key {repr(key)[:80]} is not text; expected one of: {', '.join(known) or 'none (it takes no keys)'}")
    return SpecError(
        f"{where}: unknown key '{key}'{did_you_mean(key, known)}; expected one of: {', '.join(known) or 'none (it takes no keys)'}"
    )


def type_ok(value: Any, default: Any) -> bool:
    """Whether a TOML value fits the type of a parameter's default (ints pass for floats, bools never for numbers)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, tuple):
        return isinstance(value, list) and (not default or all(type_ok(v, default[0]) for v in value))
    return True


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def out_of_range(
    name: str, value: float, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False
) -> str | None:
    """"NAME must be in [lo, hi], got V" when ``value`` is outside the interval (or not finite), else None.

    ``lo``/``hi`` None leave that side unbounded; ``*_open`` excludes the bound itself.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        # compared as an integer: one beyond float range (10**400) is out of range, not an OverflowError
        ok = (lo is None or (value > lo if lo_open else value >= lo)) and (hi is None or (value < hi if hi_open else value <= hi))
        if ok and abs(value) < 2**1023:
            return None
        shown = value if abs(value) < 10**30 else f"an integer of {len(str(abs(value)))} digits"
        return f"{name} must be {_want(lo, hi, lo_open, hi_open) if not ok else 'a finite number'}, got {shown}"
    v = float(value)
    ok = math.isfinite(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    if ok:
        return None
    return f"{name} must be {_want(lo, hi, lo_open, hi_open)}, got {value}"


def _want(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'more than' if lo_open else 'at least'} {_num(lo)}"
    if hi is not None:
        return f"{'less than' if hi_open else 'at most'} {_num(hi)}"
    return "a finite number"


def resolve_inside(value: str, base: Path, where: str) -> str:
    """A spec's path, resolved. An absolute path is the user's own choice; a relative one must stay
    inside the spec's folder or the working directory (after following links), so a spec from
    elsewhere cannot point dqcl at files its user never named."""
    p = expand_user(value, where)
    if p.is_absolute():
        return str(p.resolve())
    resolved = (base / p).resolve()
    if not any(resolved.is_relative_to(root) for root in (base.resolve(), Path.cwd().resolve())):
        raise SpecError(
            f"{where}: '{value}' leads outside the spec's folder and the working directory (to {resolved}); "
            "write an absolute path if that is meant"
        )
    return str(resolved)


def confine_write(value: str, base: Path, where: str, env: str) -> str:
    """A folder a spec makes dqcl write to, resolved, by the rule for domain paths: an absolute path
    is the user's own choice; a relative one (taken from the working directory) must stay inside
    the working directory or the spec's folder, after following links, so a spec from elsewhere
    cannot make dqcl write anywhere else. The environment variable ``env``, if set, wins."""
    import os

    if os.environ.get(env):
        return str(expand_user(os.environ[env], f"environment variable {env}").resolve())
    p = expand_user(value, where)
    if p.is_absolute():
        return str(p.resolve())
    resolved = (Path.cwd() / p).resolve()
    if not any(resolved.is_relative_to(root) for root in (Path.cwd().resolve(), base.resolve())):
        raise SpecError(f"{where}: '{value}' leads outside the working directory and the spec's folder (to {resolved}); "
                        f"write an absolute path, or set {env}, if that is meant")
    return str(resolved)


def env_number(name: str, default: float, lo: float = 0.0) -> float:
    """A number from the environment variable ``name`` (``default`` when unset): finite and at least
    ``lo``, else a one-line error naming the variable."""
    import os

    from ..errors import DqclError

    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return float(default)
    try:
        value = float(text)
    except ValueError:
        raise DqclError(f"environment variable {name}={text!r}: expected a number") from None
    problem = out_of_range(name, value, lo)
    if problem:
        raise DqclError(f"environment variable {problem}")
    return value
