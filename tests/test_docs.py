"""The documentation site (issue 29): its reference pages are generated from the code, so they list every spec
key the schema accepts and every command of the CLI; the site builds with ``mkdocs build --strict`` (a broken
link or reference fails) without writing into the repository; and its landing page and the spec reference
render in a real headless browser (Debian's chromium, over the DevTools protocol) with no console errors."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from browser import CHROMIUM, Browser

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "docs" / "_hooks" / "dqcl_docs.py"


@pytest.fixture(scope="module")
def hook():
    """The site's hook module, loaded as mkdocs loads it (without writing bytecode into docs/)."""
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec = importlib.util.spec_from_file_location("dqcl_docs_hook", HOOK)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module


def _sections(markdown: str) -> dict[str, set[str]]:
    """heading -> the keys in the first column of the tables under it."""
    out: dict[str, set[str]] = {}
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            out.setdefault(heading, set())
        m = re.match(r"\| `([^`]+)` \|", line)
        if m and heading:
            out[heading].add(m.group(1))
    return out


# ------------------------------------------------------------------------------------------ (a) spec keys


def test_the_spec_reference_lists_every_key_the_schema_accepts(hook):
    from dqcl.config import schema
    from dqcl.config.parse import _STUDY_KEYS
    from dqcl.config.strategies import SHARED_PARAMS, _params_of, list_strategies, strategy_entry
    from dqcl.cpnet.settings import MaskSettings
    from dqcl.data.domains import DOMAINS

    listed = _sections(hook.spec_reference_markdown())
    tables = {"data": schema.DataSpec, "model": schema.ModelSpec, "train": schema.TrainSpec, "eval": schema.EvalSpec,
              "memory": schema.MemorySpec, "output": schema.OutputSpec, "log": schema.LogSpec,
              "redundancy": schema.RedundancySpec}
    assert {f.name for f in dataclasses.fields(MaskSettings)} <= {f.name for f in dataclasses.fields(schema.EvalSpec)}
    for table, cls in tables.items():
        assert listed[f"`[{table}]`"] == {f.name for f in dataclasses.fields(cls)}, table
    assert listed["`[study]`"] == set(_STUDY_KEYS)
    # every domain kind's parameters and every strategy's, from the registries
    assert listed["`[domains.NAME]`"] == {"kind"}
    for name in DOMAINS.names():
        heading = next(h for h in listed if (f'"{name}"' in h) or (name != "folder" and h.startswith("Built-in kinds") and f"`{name}`" in h))
        params = {p for p in __import__("inspect").signature(DOMAINS.get(name).factory).parameters if p != "seed"}
        assert listed[heading] == params, name
    assert listed["`[strategies.LABEL]`"] == {"strategy", "tuned", *SHARED_PARAMS}
    for name in list_strategies():
        assert listed.get(f'`strategy = "{name}"`', set()) == set(_params_of(strategy_entry(name).factory)), name


def test_each_key_shows_its_default_and_the_comment_beside_it_in_the_source(hook):
    text = hook.spec_reference_markdown()
    row = next(line for line in text.splitlines() if line.startswith("| `patch_size` |"))
    assert "`224`" in row and "square patch side in pixels (the paper: 224)" in row
    row = next(line for line in text.splitlines() if line.startswith("| `flow_threshold` |"))  # MaskSettings, inherited
    assert "`0.4`" in row
    row = next(line for line in text.splitlines() if line.startswith("| `seeds` |"))  # [study]: parse_spec's default
    assert "`[0]`" in row


@dataclasses.dataclass(frozen=True)
class _DataWithANewKey:
    patch_size: int = 224  # square patch side in pixels (the paper: 224)
    brand_new: int = 7  # a key nobody documented


def test_a_key_added_to_the_schema_shows_up_without_editing_the_docs(hook, monkeypatch):
    from dqcl.config import parse, schema

    monkeypatch.setattr(schema, "DataSpec", _DataWithANewKey)
    monkeypatch.setattr(parse, "_STUDY_KEYS", {*parse._STUDY_KEYS, "brand_new_study_key"})
    monkeypatch.setattr(hook, "SPEC_NOTES", {k: v for k, v in hook.SPEC_NOTES.items() if k[0] != "data" or k[1] == "patch_size"})
    listed = _sections(hook.spec_reference_markdown())
    assert listed["`[data]`"] == {"patch_size", "brand_new"}
    assert "brand_new_study_key" in listed["`[study]`"]
    row = next(line for line in hook.spec_reference_markdown().splitlines() if line.startswith("| `brand_new` |"))
    assert "`7`" in row and "a key nobody documented" in row


def test_a_note_for_a_key_the_schema_no_longer_has_stops_the_build(hook, monkeypatch):
    monkeypatch.setattr(hook, "SPEC_NOTES", {**hook.SPEC_NOTES, ("train", "gone_key"): "explains nothing"})
    with pytest.raises(ValueError, match="gone_key"):
        hook.spec_reference_markdown()


# ------------------------------------------------------------------------------------------ (b) commands


def _commands():
    import click

    from dqcl.cli import cli

    out = []

    def walk(cmd, path, ctx):
        out.append((path, cmd, ctx))
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}", click.Context(sub, info_name=name, parent=ctx))

    walk(cli, "dqcl", click.Context(cli, info_name="dqcl"))
    return out


def test_the_cli_reference_lists_every_command_and_its_options(hook):
    import click

    text = hook.cli_reference_markdown()
    headings = re.findall(r"^#+ `([^`]+)`", text, flags=re.M)
    commands = _commands()
    assert sorted(headings) == sorted(path for path, _, _ in commands)
    assert {"dqcl run benchmark", "dqcl leaderboard build", "dqcl tune", "dqcl data fetch"} <= set(headings)
    sections = dict(zip(headings, re.split(r"^#+ `[^`]+`.*$", text, flags=re.M)[1:]))
    for path, cmd, ctx in commands:
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Option) and param is not cmd.get_help_option(ctx) and not param.hidden:
                assert param.opts[0] in sections[path], (path, param.opts[0])
        if cmd.help:
            assert cmd.help.strip().split()[0] in sections[path], path


# ------------------------------------------------------------------------------------------ (c) the site


def _read_by_the_site() -> dict[str, str]:
    """What the build reads and must leave as it was: docs/, and the published leaderboard files it copies (not the
    stores beside them, into which a study may be running)."""
    files = [p for p in (ROOT / "docs").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    files += [p for p in (ROOT / "leaderboard").iterdir() if p.suffix in (".md", ".png", ".html")]
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("site") / "site"
    before = _read_by_the_site()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"}
    start = time.time()
    got = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    assert time.time() - start < 120
    # the build reads the repository and writes only into -d: docs/ and the published leaderboard/ are as they were
    assert _read_by_the_site() == before
    return out


def test_the_site_builds_strictly_with_the_generated_pages(site, hook):
    spec_page = (site / "reference" / "spec" / "index.html").read_text()
    for field in ("patch_size", "max_size_fraction", "replay_batch", "embedder_weights", "data_seed", "orderings"):
        assert f"<code>{field}</code>" in spec_page, field
    assert "dqcl run benchmark" in (site / "reference" / "cli" / "index.html").read_text()
    assert "dqcl.api.load_results" in (site / "reference" / "api" / "index.html").read_text()
    # the published leaderboard, with its figures, and the README's results block
    board = (site / "results" / "leaderboard" / "index.html").read_text()
    assert "Claims of the paper, tested" in board
    for png in (ROOT / "leaderboard").glob("*.png"):
        assert (site / "results" / png.name).read_bytes() == png.read_bytes()
    assert "best group" in (site / "results" / "index.html").read_text()
    assert not (site / "_hooks").exists()


@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_the_landing_page_and_the_spec_reference_render_in_a_browser(served, tmp_path):
    browser = Browser(tmp_path)
    try:
        browser.open(f"{served}/")
        assert browser.js("document.querySelector('article h1').textContent.trim()").startswith("dqcl")
        assert "dqcl" in browser.js("document.title")
        images = browser.js("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
        assert images and all(ok for _, ok in images), f"images that did not load: {[s for s, ok in images if not ok]}"
        assert browser.js("document.querySelectorAll('nav.md-nav a').length") > 20  # the navigation is there
        assert browser.errors() == []

        browser.open(f"{served}/reference/spec/")
        assert browser.js("document.querySelector('article h1').textContent.trim()").startswith("Spec keys")
        assert browser.js("document.querySelectorAll('article table').length") >= 10
        keys = browser.js("Array.from(document.querySelectorAll('article table td:first-child code')).map(c => c.textContent)")
        assert {"patch_size", "seeds", "replay_batch", "flow_threshold", "save_weights"} <= set(keys)
        assert browser.errors() == []

        browser.open(f"{served}/results/leaderboard/")  # the published figures load inside the site
        images = browser.js("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
        assert len(images) >= 10 and all(ok for _, ok in images), [s for s, ok in images if not ok]
        assert browser.errors() == []
    finally:
        browser.close()


# ------------------------------------------------------------------------------------------ (d) strategies


def test_the_strategies_reference_has_a_row_naming_every_parameter_of_every_strategy():
    """docs/reference/strategies.md is written by hand; a strategy or parameter added to the registry without a
    word there fails here."""
    from dqcl.config.strategies import _params_of, list_strategies, load_strategies, strategy_entry

    load_strategies()
    text = (ROOT / "docs" / "reference" / "strategies.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_]+)`.*$", text, flags=re.M)}
    for name in list_strategies():
        assert name in rows, f"no row for {name}"
        named = re.match(r"^\| `[a-z_]+`(?: \(([^)]*)\))? \|", rows[name]).group(1) or ""
        assert set(re.findall(r"`([a-z_]+)`", named)) == set(_params_of(strategy_entry(name).factory)), name
