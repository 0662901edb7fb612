"""Names as data: the checks a name from a spec must pass, the safe file stem every file name is
built from, the one-line form of a message that quotes a name, and one escaping function per
output format.

Study names, strategy labels, domain names and whatever else a spec or a store holds are
text someone else chose. Each writer passes them through the function for its format, so
that they never become a spreadsheet formula (CSV), a TeX command (LaTeX), markup
(Markdown), or mathtext or TeX in a figure (matplotlib). A name is also shortened where it
is shown as a label, so that a huge one costs no more than a short one to lay out.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from typing import Callable, TypeVar

__all__ = ["NAME_LIMIT", "FIGURE_LIMIT", "name_problem", "lone_surrogate", "safe_stem", "quoted", "one_line", "bounded", "shorten", "csv_cell", "tex_text",
           "markdown_text", "figure_text", "plain_text_figures"]

NAME_LIMIT = 200  # characters of a name: longer ones are refused where a spec is read, and cut where a store's are shown
FIGURE_LIMIT = 60  # characters of a name shown in a figure

T = TypeVar("T")

# characters that start a line (str.splitlines splits on all of them) or control a terminal: never shown raw
_LINE_BREAKS = {0x2028, 0x2029}
_CONTROLS = frozenset([*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *_LINE_BREAKS])

# a spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")




def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a study, strategy or domain, or None when it can.

    Refused: the empty name, path separators, '.' and '..', control characters (NUL, newlines,
    tabs, ...) and names over `NAME_LIMIT` characters; anything else (spaces, unicode, punctuation)
    is kept as written and escaped wherever it is shown.
    """
    if not name.strip():
        return "is empty"
    if len(name) > NAME_LIMIT:
        return f"is {len(name):,} characters long (at most {NAME_LIMIT})"
    if "/" in name or "\\" in name:
        return "holds a path separator ('/' or '\\')"
    if name in (".", ".."):
        return f"is '{name}', a path"
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        return f"holds the control character U+{ord(bad):04X}"
    bad = lone_surrogate(name)
    if bad is not None:  # bytes that are not UTF-8 (a --set argument) decode to these; no file can hold one
        return f"holds U+{ord(bad):04X}, a lone surrogate (bytes that are not UTF-8 text)"
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in ``text`` (what undecodable bytes or a JSON escape like \\ud800
    become), or None: such a string cannot be written to a UTF-8 file or a SQLite text column."""
    m = _SURROGATE.search(text)
    return m.group() if m else None


_HASHED = re.compile(r"_[0-9a-f]{12}$")


def safe_stem(raw: str, limit: int = 80) -> str:
    """A file-name stem for ``raw``: letters, digits, '.', '_' and '-' only, not starting with '.',
    at most ``limit`` characters; a hash of ``raw`` keeps changed or long names apart, so no name can
    lead a file outside the folder it is written in, and two different names never share a stem."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", raw).lstrip(".")
    # a name that already ends like a hashed stem ('a_b_' and 12 hex digits) is hashed too, else it
    # could be chosen to equal the stem of another name ('a b')
    if safe != raw or len(safe) > limit or not safe or _HASHED.search(raw):
        safe = f"{safe[: max(1, limit - 20)]}_{hashlib.sha256(raw.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
    return safe


def _spaced(text: str) -> str:
    """``text`` with control characters and line or paragraph separators as spaces."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


def quoted(text: str, limit: int = 80) -> str:
    """``text`` as an error message quotes it: cut to ``limit`` characters with an ellipsis, control
    characters shown as spaces (the message stays one line)."""
    return shorten(_spaced(str(text)[: limit + 1]), limit)


def one_line(message: str, limit: int = 400) -> str:
    """A message as one line of at most ``limit`` characters: line breaks and other control
    characters become spaces, runs of spaces collapse, and the middle of an over-long message is
    cut (its start names the file or key, its end the problem)."""
    text = re.sub(r"\s+", " ", _spaced(str(message))).strip()
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    return f"{text[:head]} … {text[-(limit - head - 3):]}"


def bounded(name: str, limit: int = NAME_LIMIT) -> str:
    """``name`` itself if at most ``limit`` characters, else its start, an ellipsis and 12 hex digits
    of its hash: two long names that share a start stay two names."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 14]}…{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def shorten(text: str, limit: int) -> str:
    """``text`` itself if at most ``limit`` characters, else its first ``limit - 1`` and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def csv_cell(value: T) -> T | str:
    """A CSV cell that no spreadsheet evaluates: text starting (after any blanks) with = + - @, a tab
    or a line break gets a leading single quote. Anything that is not text (a number dqcl
    computed) is returned as it is, so that -0.25 stays a number."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START) or value.lstrip(" ").startswith(_FORMULA_START):
        return "'" + value
    return value


_TEX = {
    ord("\\"): r"\textbackslash{}", ord("{"): r"\{", ord("}"): r"\}", ord("$"): r"\$", ord("&"): r"\&",
    ord("#"): r"\#", ord("^"): r"\textasciicircum{}", ord("_"): r"\_", ord("~"): r"\textasciitilde{}",
    ord("%"): r"\%",
    # not special, but OT1 prints other glyphs for them, and a row's \\ reads a following [ as its argument
    ord("<"): r"\textless{}", ord(">"): r"\textgreater{}", ord("|"): r"\textbar{}", ord("["): "{[}", ord("]"): "{]}",
    # symbols dqcl's own cells use, which pdfLaTeX does not know as Unicode
    ord("±"): r"$\pm$", ord("→"): r"$\to$", ord("—"): "--", ord("−"): "$-$",
    **{c: " " for c in _CONTROLS},  # TeX refuses most control characters; a line break would end the row
}


def tex_text(text: str) -> str:
    """``text`` as LaTeX prints it literally: the ten special characters escaped, line breaks and
    other control characters as spaces, dqcl's symbols (± → — −) as LaTeX. One pass, so nothing
    this function writes is escaped twice."""
    return str(text).translate(_TEX)


_MARKDOWN = {
    ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;",  # no HTML tag or entity from a name
    ord("|"): "&#124;",  # a table column; an entity, not \|, which a name ending in \ would undo
    ord("\\"): "&#92;", ord("`"): "&#96;",  # no escape of what follows, no code span
    ord("["): "&#91;", ord("]"): "&#93;",  # no link or image
    ord("$"): "&#36;", ord("*"): "&#42;", ord("~"): "&#126;",  # no math (GitHub), emphasis or strikethrough
    **{c: f"&#{c};" for c in _CONTROLS},  # a line break would end the table row or start a block
}


def markdown_text(text: str) -> str:
    """``text`` as Markdown shows it literally, in a table cell or in running text: HTML-special
    characters, pipes, backslashes, backticks, brackets, $ * ~ and control characters (line breaks
    among them) as HTML entities, which GitHub and CommonMark render as the characters themselves;
    a leading # as an entity too, so that it can never start a heading. Underscores stay: inside a
    word (dq_replay_10) they are no emphasis, and dqcl's own labels read as before."""
    out = str(text).translate(_MARKDOWN)
    return "&#35;" + out[1:] if out.startswith("#") else out


_FIGURE = {ord("$"): r"\$", **{c: " " for c in _CONTROLS}}


def figure_text(text: str, limit: int = FIGURE_LIMIT) -> str:
    """``text`` for a title, legend or tick label: at most ``limit`` characters, control characters
    (line breaks among them) as spaces, and every $ escaped, so that matplotlib draws a dollar sign
    and never reads the text as mathtext. Draw it inside `plain_text_figures` (no TeX)."""
    # escaped, not parse_math=False for the whole figure: matplotlib's own log-axis tick labels are mathtext
    return shorten(str(text), limit).translate(_FIGURE)


F = TypeVar("F", bound=Callable)


def plain_text_figures(func: F) -> F:
    """Run ``func`` (which draws and saves a figure) with TeX rendering off and matplotlib's own math
    parsing on, whatever a matplotlibrc says: a name (through `figure_text`) is then plain text,
    never TeX that could run a command or read a file. The settings hold only while ``func`` runs:
    an application's own figures are left as they are."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.usetex": False, "text.parse_math": True}):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
