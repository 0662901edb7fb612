"""Names from specs and stores are data: checks for them, the safe file stem every file name is
built from, and the one-line form of any message that quotes them.

A study, strategy or domain name is chosen by whoever wrote the spec (or the store someone sent
you). It may be shown, but it never becomes a path: files are named by `safe_stem`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["NAME_MAX", "name_problem", "safe_stem", "one_line", "shorten"]

NAME_MAX = 200  # characters in a study, strategy or domain name; longer ones are refused when a spec is read


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a study, strategy or domain, or None when it can.

    Refused: the empty name, path separators, '.' and '..', control characters (NUL, newlines,
    tabs, ...) and names over `NAME_MAX` characters; anything else (spaces, unicode, punctuation)
    is kept as written and escaped wherever it is shown.
    """
    if not name.strip():
        return "is empty"
    if len(name) > NAME_MAX:
        return f"is {len(name):,} characters long (at most {NAME_MAX})"
    if "/" in name or "\\" in name:
        return "holds a path separator ('/' or '\\')"
    if name in (".", ".."):
        return f"is '{name}', a path"
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        return f"holds the control character U+{ord(bad):04X}"
    return None


def safe_stem(raw: str, limit: int = 80) -> str:
    """A file-name stem for ``raw``: letters, digits, '.', '_' and '-' only, not starting with '.',
    at most ``limit`` characters; a hash of ``raw`` keeps changed or long names apart, so no name can
    lead a file outside the folder it is written in, and two different names never share a stem."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", raw).lstrip(".")
    if safe != raw or len(safe) > limit or not safe:
        safe = f"{safe[: max(1, limit - 20)]}_{hashlib.sha256(raw.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
    return safe


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, control characters shown as spaces."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in str(text[: limit + 1]))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(message: str, limit: int = 400) -> str:
    """A message as one line of at most ``limit`` characters: line breaks and other control
    characters become spaces, runs of spaces collapse, and the middle of an over-long message is
    cut (its start names the file or key, its end the problem)."""
    text = re.sub(r"\s+", " ", "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in str(message))).strip()
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    return f"{text[:head]} … {text[-(limit - head - 3):]}"
