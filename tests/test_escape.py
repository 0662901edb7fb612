"""Names are data in every output (dqcl.core.text): a study, strategy or domain name from a store
never becomes a spreadsheet formula (CSV), a TeX command (LaTeX), Markdown or HTML markup, or
mathtext in a figure; and a name of a million characters costs a build no more than a short one."""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dqcl.core.text import (
    FIGURE_LIMIT, NAME_LIMIT, bounded, csv_cell, figure_text, markdown_text, plain_text_figures, shorten, tex_text,
)
from dqcl.evaluation.metrics import METRICS
from dqcl.results.leaderboard import LEGEND, write_leaderboard
from dqcl.results.store import Store

HOSTILE = [
    '=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", r"\input{/etc/passwd}",
    r"\write18{rm -rf x}", "a & b % c # d", r"$\foo$", "x|y\nz", "# heading", "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
]
HUGE = "h" * 1_000_000

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# ---- a store of hostile names, written row by row (no training) -----------------------------


class _Runs:
    """Writes fake runs into a store; each gets its own key."""

    def __init__(self, store: Store) -> None:
        self.store, self.n = store, 0

    def put(self, study: str, label: str, name: str, seed: int, ordering: list[str], R: list[list[float]], *,
            params: dict | None = None, subset: dict | None = None, same_as: str | None = None) -> None:
        t = len(ordering)
        cfg = {"study": study, "strategy": {"label": label, "name": name, "params": params or {}}, "ordering": ordering,
               "seed": seed, "version": "-2+3", "data_manifests": [[d, f"`<b>|{d[:8]}`\n# x"] for d in ordering]}
        if subset:
            cfg["subset"] = subset
        res = {"R": {m: R for m in METRICS}, "baseline": {m: [0.0] * t for m in METRICS},
               "timings": {"train_s": [1.0] * len(R), "eval_s": [1.0], "total_s": 2.0}, "images_seen": 10,
               "device": "@SUM(1+1)", "model_sha256": _digest(f"{same_as or label}{seed}"), "versions": {"dqcl_commit": "=1+1"},
               "curve": [{"experience": i, "epoch": 0, "loss": 1.0 / (i + 1 + seed), "lr": 0.1, "images": 8 * (i + 1),
                          "steps": i + 1} for i in range(len(R))]}
        if subset:
            res["subset"] = {"size": 5}
        if len(R) == t and t > 1:
            res["norm_swap"] = {k: {m: [0.5] * (t - 1) for m in METRICS} for k in ("new_weights_old_stats", "old_weights_new_stats")}
        self.n += 1
        self.store.put(f"run-{self.n}", cfg, res)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _matrix(t: int, shift: float) -> list[list[float]]:
    return [[0.8 - 0.1 * abs(i - j) + shift if j <= i else 0.0 for j in range(t)] for i in range(t)]


def _hostile_store(path: Path) -> None:
    """Every section of the leaderboard with hostile names: continual tables (labels and domains),
    health flags, the weights-or-statistics table, provenance, a redundancy study (selectors) and the
    claims (domains, studies)."""
    domains = [r"$\foo$", "x|y\nz", "# heading"]
    with Store(path) as store:
        runs = _Runs(store)
        for seed in (0, 1):
            runs.put(HOSTILE[0], "naive", "naive", seed, domains, _matrix(3, 0.0))
            for k, label in enumerate(HOSTILE):
                # one label ends with naive's weights: a health flag that names it
                runs.put(HOSTILE[0], label, "ewc", seed, domains, _matrix(3, 0.01 * k + 0.005 * seed),
                         same_as="naive" if k == 4 else None)
            for sel, rate in (("all", 1.0), ("mmv", 0.1), (HOSTILE[1], 0.1), (HOSTILE[1], 0.5), (HOSTILE[10], 0.1)):
                runs.put(HOSTILE[6], f"{sel}@{rate}", "naive", seed, [HOSTILE[3]], [[0.5 + rate * 0.3 + 0.01 * seed]],
                         subset={"selector": sel, "rate": rate})
            for order in (["cyto", HOSTILE[3]], [HOSTILE[3], "cyto"]):
                runs.put(HOSTILE[11], "naive", "naive", seed, order, [[0.8, 0.0], [0.1 + 0.3 * (order[0] == "cyto") + 0.01 * seed, 0.7]])
            runs.put(HOSTILE[11], HOSTILE[7], "dq_replay", seed, ["cyto", HOSTILE[3]], [[0.8, 0.0], [0.75 + 0.01 * seed, 0.7]],
                     params={"rate": 0.05})
            runs.put(HOSTILE[11], HOSTILE[9], "replay", seed, ["cyto", HOSTILE[3]], [[0.8, 0.0], [0.78, 0.6 - 0.01 * seed]],
                     params={"rate": 1.0})


# ---- reading each format back -----------------------------------------------------------------


def _unquote(cell: str) -> str:
    """A CSV cell as it was before `csv_cell` neutralised it."""
    return cell[1:] if cell.startswith("'") and csv_cell(cell[1:]) == cell else cell


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _check_csv(path: Path, labels: set[str], studies: set[str]) -> None:
    limit = csv.field_size_limit(10 * len(HUGE))  # the CSV keeps a name whole, however long
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    finally:
        csv.field_size_limit(limit)
    assert rows
    for row in rows:
        for col, cell in row.items():
            assert not cell.lstrip(" ").startswith(FORMULA_START) or _is_number(cell), (col, cell[:80])
    # the names are all there, whole, once the neutralising quote is taken off
    assert {_unquote(r["strategy"]) for r in rows} >= labels
    assert {_unquote(r["study"]) for r in rows} == studies
    assert any(r["device"] == "'@SUM(1+1)" and r["version"] == "'-2+3" and r["commit"] == "'=1+1" for r in rows)
    assert any(_is_number(r["bwt"]) and float(r["bwt"]) < 0 for r in rows)  # dqcl's negative numbers stay numbers


# what tex_text writes, and nothing else: every \ { } $ & # ^ _ ~ % [ ] < > | in a cell is part of one of these
_TEX_ESCAPES = [r"\textbackslash{}", r"\textasciicircum{}", r"\textasciitilde{}", r"\textless{}", r"\textgreater{}",
                r"\textbar{}", r"\{", r"\}", r"\$", r"\&", r"\#", r"\_", r"\%", "{[}", "{]}", r"$\pm$", r"$\to$", "$-$"]
_TEX_TOKEN = re.compile("|".join(map(re.escape, _TEX_ESCAPES)) + r"|(?P<sep>&)|[^\\{}$&#^_~%\[\]<>|\n\r]")
_TEX_FRAME = {r"\begin{table}[t]\centering\small", r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}",
              r"\end{table}", ""}


def _tex_cells(text: str) -> int:
    """The number of cells in ``text`` (a row's body or a caption) if it is escaped text and column
    separators only; fails on anything TeX would read as a command, group, math, comment or parameter."""
    pos, seps = 0, 0
    for m in _TEX_TOKEN.finditer(text):
        assert m.start() == pos, f"unescaped TeX at {text[pos:pos + 40]!r}"
        pos = m.end()
        seps += m.group("sep") is not None
    assert pos == len(text), f"unescaped TeX at {text[pos:pos + 40]!r}"
    return seps + 1


def _check_tex(path: Path, names: list[str]) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("% dqcl leaderboard")
    columns, tables = None, 0
    for line in lines[1:]:
        if line in _TEX_FRAME:
            continue
        if m := re.fullmatch(r"\\begin\{tabular\}\{ll(r*)\}", line):
            columns, tables = 2 + len(m.group(1)), tables + 1
        elif line.startswith(r"\caption{"):
            assert line.endswith("}") and _tex_cells(line[len(r"\caption{"):-1]) == 1, line[:80]
        else:
            assert line.endswith(r" \\"), line[:80]
            assert _tex_cells(line[:-3]) == columns, line[:80]
    assert tables
    text = path.read_text(encoding="utf-8")
    for name in names:
        assert tex_text(shorten(name, NAME_LIMIT)) in text, name[:40]


def _md_tables(lines: list[str]) -> list[list[str]]:
    tables, current = [], []
    for line in lines + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _check_md(path: Path, names: list[str], headings: int) -> None:
    md = path.read_text(encoding="utf-8")
    assert md.count(LEGEND) == 1
    ours = md.replace(LEGEND, "")  # the legend's formulas hold dqcl's own "<"
    assert "<" not in ours and ">" not in ours and "`<" not in md
    lines = md.split("\n")
    assert md.splitlines() == lines[:-1]  # no line break other than dqcl's own \n (no \r, \x0b, U+2028 from a name)
    for table in _md_tables(lines):
        assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", table[1]), table[1]  # a header, then its rule
        cells = table[0].count("|")
        assert all(row.count("|") == cells for row in table), table[0][:80]
    heads = [line for line in lines if line.startswith("#")]
    assert all(re.match(r"#{1,3} [^#\s]", line) for line in heads), heads
    assert len(heads) == headings, heads  # no heading from a name's line break or leading '#'
    assert not any(line.startswith(("z", "- z")) for line in lines)  # the second line of "x|y\nz" did not break out
    assert "](" not in re.sub(r"!\[[A-Za-z ]+\]\([A-Za-z0-9._-]+\.png\)", "", ours)  # no link from a name: only dqcl's own images
    for name in names:
        assert markdown_text(shorten(name, NAME_LIMIT)) in md, name[:40]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _check_html(path: Path, names: list[str], pngs: set[str]) -> None:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    tags = [t for t, _ in page.tags]
    assert tags.count("script") == 1  # dqcl's own, in the head
    assert all(a.get("src") in pngs for t, a in page.tags if t == "img")
    assert not any(k.startswith("on") for _, a in page.tags for k in a)
    shown = "".join(page.text)
    for name in names:
        assert shorten(name, NAME_LIMIT) in shown, name[:40]  # shown as text, exactly


def _pngs(out: Path) -> set[str]:
    found = {p.name for p in out.glob("*.png")}
    assert all((out / n).read_bytes()[:4] == b"\x89PNG" for n in found)
    return found


# ---- the whole leaderboard --------------------------------------------------------------------


def test_hostile_names_stay_data_in_every_leaderboard_format(tmp_path):
    _hostile_store(tmp_path / "r.sqlite")
    with Store(tmp_path / "r.sqlite", readonly=True) as store:
        write_leaderboard(store, tmp_path / "lb")
    out = tmp_path / "lb"
    labels = set(HOSTILE) | {"naive"}
    studies = {HOSTILE[0], HOSTILE[6], HOSTILE[11]}
    _check_csv(out / "leaderboard.csv", labels, studies)
    rows = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    assert {r["strategy"] for r in rows} >= labels and {r["study"] for r in rows} == studies
    continual_names = HOSTILE[:11] + [r"$\foo$", "x|y\nz", "# heading"]  # labels and domains of the continual study
    _check_tex(out / "leaderboard.tex", continual_names + [HOSTILE[11], HOSTILE[3]])
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    # every section names them: tables, health, weights-or-statistics, redundancy, claims, provenance
    assert "Health flags" in md and "Weights or statistics?" in md and "(redundancy:" in md and "Claims of the paper" in md
    assert "asymmetry: generalist" in md and "restores the source" in md and "hurts the target" in md
    # 1 title + claims + results in words + per continual study (2): its heading and 2 metrics; 3 redundancy metrics
    _check_md(out / "leaderboard.md", HOSTILE + ["# heading", "`<b>|cyto`\n# x"], headings=1 + 1 + 1 + 2 * 3 + 3)
    pngs = _pngs(out)
    _check_html(out / "index.html", HOSTILE + ["`<b>|cyto`\n# x"], pngs)
    # the figures were drawn, $\foo$ in titles, legends and ticks included
    assert len([n for n in pngs if n.endswith("_R_ap50.png")]) == 3 and "summary_ap50.png" in pngs
    assert len([n for n in pngs if n.endswith("_training_curves.png")]) == 3
    assert len([n for n in pngs if n.endswith("_saturation.png")]) == 3
    assert len([n for n in pngs if n.endswith("_replay_rates_ap50.png")]) == 0  # one rate each: no curve


def test_a_million_character_name_is_cut_once_and_stays_apart_from_its_neighbours(tmp_path):
    """A store someone sent may hold names no spec could (over NAME_LIMIT): they are cut where the
    leaderboard reads them, with a hash, so every file stays small and two such names stay two."""
    twin = HUGE[:-1] + "y"  # the same first 999,999 characters
    with Store(tmp_path / "r.sqlite") as store:
        runs = _Runs(store)
        for seed in (0, 1):
            for label in ("naive", HUGE, twin, r"$\foo$" + HUGE):
                runs.put("s" + HUGE, label, "naive", seed, ["d" + HUGE, r"$\foo$"], _matrix(2, 0.01 * seed))
        write_leaderboard(store, tmp_path / "lb")
    out = tmp_path / "lb"
    rows = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    labels = {r["strategy"] for r in rows}
    assert len(labels) == 4 and all(len(x) <= NAME_LIMIT for x in labels)  # cut, and the twins kept apart
    assert {x for x in labels if x != "naive"} == {bounded(HUGE), bounded(twin), bounded(r"$\foo$" + HUGE)}
    for name in ("leaderboard.json", "leaderboard.csv", "leaderboard.md", "leaderboard.tex", "index.html"):
        assert (out / name).stat().st_size < 300_000, name
    _check_csv(out / "leaderboard.csv", labels, {bounded("s" + HUGE)})
    _check_md(out / "leaderboard.md", [bounded("s" + HUGE), bounded("d" + HUGE), *labels], headings=1 + 1 + 3)  # + results in words
    _check_tex(out / "leaderboard.tex", [*labels, bounded("s" + HUGE), bounded("d" + HUGE)])
    _check_html(out / "index.html", [*labels, bounded("s" + HUGE)], _pngs(out))
    assert len(_pngs(out)) == 6  # R matrices, forgetting vs plasticity, seed strips, training curves, groups, summary


# ---- the panel and the gallery --------------------------------------------------------------


def test_the_prediction_panel_draws_a_dollar_domain_name(tmp_path):
    from dqcl.train.curve import write_panel

    rng = np.random.default_rng(0)
    mask = np.zeros((1, 1, 16, 16), np.int32)
    mask[0, 0, 4:10, 4:10] = 1
    tests = [SimpleNamespace(domain=name, images=rng.random((1, 1, 16, 16), dtype=np.float32), targets=mask)
             for name in (r"$\foo$", "x|y\nz" + HUGE[:1000])]
    masks = {e: {j: [mask[0, 0]] for j in range(2)} for e in range(2)}
    ordering = (r"$\foo$", r"\write18{rm -rf x}$^$")
    path = write_panel(tmp_path / "panel.png", tests, masks, ordering, {e: {0: 0.5, 1: 0.25} for e in range(2)})
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_the_gallery_draws_a_dollar_domain_name(tmp_path):
    import dataclasses

    from dqcl.data.domains import DOMAINS
    from dqcl.data.gallery import write_gallery

    dom = DOMAINS.get("histo").factory(seed=0, n_train=2, n_test=1, size=48)
    train = dataclasses.replace(dom.train, styles=(r"$\foo$", "$x^$"))
    out = write_gallery(dataclasses.replace(dom, name=r"$\foo$" + HUGE[:5000], train=train), tmp_path / "g.png", n=2)
    assert out.read_bytes()[:4] == b"\x89PNG"


# ---- each escaping function -------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE[:4] + ["\tx", "\rx", "\nx", "  =1+1"])
def test_csv_cell_neutralises_a_formula_and_round_trips(text, tmp_path):
    cell = csv_cell(text)
    assert cell == "'" + text
    with open(tmp_path / "c.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow([cell, -0.25, 3])
    with open(tmp_path / "c.csv", newline="", encoding="utf-8") as f:
        (back,) = list(csv.reader(f))
    assert back == [cell, "-0.25", "3"] and _unquote(back[0]) == text


def test_csv_cell_leaves_numbers_and_plain_text_alone():
    assert csv_cell(-0.25) == -0.25 and csv_cell(0) == 0 and csv_cell(None) is None
    for text in ("naive", "dq_replay_10", "0.5", "x=1", "'=already quoted", "", r"\input{x}", "<b>"):
        assert csv_cell(text) == text


def test_tex_text_escapes_all_ten_specials_and_line_breaks():
    assert tex_text("\\ { } $ & # ^ _ ~ %") == (r"\textbackslash{} \{ \} \$ \& \# \textasciicircum{} \_ "
                                                  r"\textasciitilde{} \%")
    assert tex_text(r"\input{/etc/passwd}") == r"\textbackslash{}input\{/etc/passwd\}"
    assert tex_text("a\nb\rc\x00d\u2028e") == "a b c d e"
    assert tex_text("0.412 ± 0.031 [0.335, 0.489] — a → b") == r"0.412 $\pm$ 0.031 {[}0.335, 0.489{]} -- a $\to$ b"
    for text in HOSTILE + ["%" * 3, "\\\\", "}{", "[x]", "a<b>c|d"]:
        assert _tex_cells(tex_text(text)) == 1  # no separator, nothing unescaped


def test_markdown_text_is_literal_in_a_table_cell_and_in_running_text():
    assert markdown_text("x|y\nz") == "x&#124;y&#10;z"
    assert markdown_text("# heading") == "&#35; heading" and markdown_text("a # b") == "a # b"
    assert markdown_text("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert markdown_text("a & b") == "a &amp; b" and markdown_text("&lt;") == "&amp;lt;"
    assert markdown_text("`code` [link](http://x) \\|") == "&#96;code&#96; &#91;link&#93;(http://x) &#92;&#124;"
    assert markdown_text(r"$\foo$ *x* ~~y~~") == "&#36;&#92;foo&#36; &#42;x&#42; &#126;&#126;y&#126;&#126;"
    assert markdown_text("dq_replay_10 ± 0.5") == "dq_replay_10 ± 0.5"  # dqcl's own labels read as before
    for text in HOSTILE + ["a\r\nb", "\u2028", "\\", "``"]:
        out = markdown_text(text)
        assert not set(out) & set("|<>`[]\\$*~\n\r\u2028") and not out.startswith("#")
        assert html.unescape(out) == text  # entities: the name, read back whole


def test_figure_text_escapes_dollars_shortens_and_drops_control_characters():
    assert figure_text(r"$\foo$") == r"\$\foo\$" and figure_text(r"a\$") == r"a\\$"
    assert figure_text("a\nb\tc\x1b") == "a b c "
    long = figure_text(HUGE)
    assert len(long) == FIGURE_LIMIT and long.endswith("…")
    assert shorten("abc", 3) == "abc" and shorten("abcd", 3) == "ab…"


def _draw(path: Path, name=lambda s: s) -> list:
    """A figure with a name in its title, legend and tick labels, and a log axis (whose tick labels
    are matplotlib's own mathtext); returns the x tick labels as drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        ax.set_title(name(r"$\foo$"))
        ax.plot([1, 10, 100], label=name(r"$\foo$ ^_ \input{x}"))
        ax.legend()
        ax.set_xticks([0, 1, 2], [name(r"$\foo$"), name("$"), name(r"a\$")])
        ax.set_yscale("log")
        fig.savefig(path)
        return [(t.get_text(), t._preprocess_math(t.get_text())) for t in ax.get_xticklabels() + ax.get_yticklabels()]
    finally:
        plt.close(fig)


def test_figure_names_are_plain_text_and_matplotlibs_own_math_still_renders(tmp_path):
    import matplotlib

    with pytest.raises(ValueError):  # unescaped, matplotlib's math parser refuses the name
        _draw(tmp_path / "raw.png")
    # a matplotlibrc asking for TeX (which would run \input) is overruled while dqcl draws
    with matplotlib.rc_context({"text.usetex": True}):
        ticks = plain_text_figures(_draw)(tmp_path / "plain.png", figure_text)
        assert matplotlib.rcParams["text.usetex"]  # the caller's setting, restored
    assert (tmp_path / "plain.png").read_bytes()[:4] == b"\x89PNG"
    shown = {text: drawn for text, drawn in ticks}
    assert [shown[figure_text(n)] for n in (r"$\foo$", "$", r"a\$")] == [(r"$\foo$", False), ("$", False), (r"a\$", False)]
    assert any(math for text, (_, math) in ticks if "10^" in text)  # the log axis's labels are still mathtext


def test_two_studies_whose_figure_names_would_coincide_keep_their_own_figures(tmp_path):
    """Study 'a_b' over c, d and study 'a' over b_c, d would both draw 'a_b_c-d_*.png': each gets its
    own file names (with a hash), and each study's Markdown and HTML show its own figures."""
    with Store(tmp_path / "r.sqlite") as store:
        runs = _Runs(store)
        for study, order in (("a_b", ["c", "d"]), ("a", ["b_c", "d"])):
            runs.put(study, "naive", "naive", 0, order, _matrix(2, 0.0))
        write_leaderboard(store, tmp_path / "lb")
    out = tmp_path / "lb"
    r_pngs = sorted(n for n in _pngs(out) if n.endswith("_R_ap50.png"))
    assert len(r_pngs) == 2, r_pngs
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", md, flags=re.M | re.S))
    links = {study: re.findall(r"\]\(([^)]*_R_ap50\.png)\)", sections[study]) for study in ("a", "a_b")}
    assert sorted(links["a"] + links["a_b"]) == r_pngs
    page = (out / "index.html").read_text(encoding="utf-8")
    assert all(page.count(f'src="{n}"') == 1 for n in r_pngs)


def test_a_name_that_looks_like_a_hashed_stem_gets_a_stem_of_its_own():
    from dqcl.core.text import safe_stem

    stem = safe_stem("a b")  # changed, so hashed: a_b_ and 12 hex digits
    assert safe_stem(stem) != stem and safe_stem("cyto") == "cyto" and safe_stem("claims_asymmetry") == "claims_asymmetry"


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="LaTeX is not installed (.ci/run installs texlive-latex-base)")
def test_the_tex_leaderboard_compiles_in_latex_and_prints_the_names_as_written(tmp_path):
    """The real client: pdflatex (no shell escape) typesets leaderboard.tex of the hostile store, and
    the PDF's text holds the names literally; no \\input ran (the PDF does not hold the passwd file)."""
    import subprocess

    _hostile_store(tmp_path / "r.sqlite")
    with Store(tmp_path / "r.sqlite", readonly=True) as store:
        write_leaderboard(store, tmp_path / "lb")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage[utf8]{inputenc}\n"
        "\\newcommand{\\toprule}{\\hline}\\newcommand{\\midrule}{\\hline}\\newcommand{\\bottomrule}{\\hline}\n"
        "\\begin{document}\\input{lb/leaderboard.tex}\\end{document}\n")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "doc.pdf", "-"], cwd=tmp_path, capture_output=True, text=True).stdout
        # labels in the rows, a study and a domain in the captions (wide tables run off the page: not every cell is text)
        for name in (r"\input{/etc/passwd}", r"\write18{rm -rf x}", r"$\foo$", "<script>alert(1)</script>", "-2+3"):
            assert name in text.replace("\u201d", '"'), name
        assert "root:" not in text
