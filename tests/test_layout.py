"""The package's layout: subpackages by stage, no import cycles, no import from a lower layer to a higher one.

Every import in every module counts, those inside functions too (a lazy import is still a
dependency). The built-in strategies (the top-level ``strategies/`` folder, installed as
``dqcl.strategies``) sit above the training code they are built from; the strategy registry
imports them by name at run time, which is a plugin discovery, not an import edge.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# lowest first; a module may import its own layer and the layers below it
LAYERS = [
    ("core", {"dqcl.core", "dqcl.errors"}),
    ("cpnet", {"dqcl.cpnet"}),
    ("data", {"dqcl.data"}),
    ("evaluation", {"dqcl.evaluation"}),
    ("dq", {"dqcl.dq"}),
    ("config", {"dqcl.config"}),
    ("results", {"dqcl.results"}),
    ("train", {"dqcl.train"}),
    ("strategies", {"dqcl.strategies"}),
    ("study", {"dqcl.study"}),
    ("top", {"dqcl", "dqcl.cli", "dqcl.api", "dqcl.checks", "dqcl.__main__"}),
]


def _modules() -> dict[str, Path]:
    """Module name -> file, for dqcl/ and for strategies/ as installed (dqcl.strategies)."""
    out = {}
    for base, prefix in ((ROOT / "dqcl", "dqcl"), (ROOT / "strategies", "dqcl.strategies")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    best = None
    for rank, (_, members) in enumerate(LAYERS):
        for m in members:
            # the longest matching prefix decides: dqcl.data.x is 'data', dqcl.cli is 'top'
            if (module == m or module.startswith(m + ".")) and (best is None or len(m) > len(best[1])):
                best = (rank, m)
    assert best is not None, f"{module} belongs to no layer; add it to LAYERS in {Path(__file__).name}"
    return best[0]


def _imports(module: str, path: Path, missing: list[str] | None = None) -> set[str]:
    """The dqcl modules ``module`` imports, resolved to module names that exist (``missing``
    collects the names that resolve to no module: a relative import left behind by a move)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import name` imports pkg.name where that is a module, else pkg itself
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in MODULES else stem for a in node.names]
            if missing is not None and stem.split(".")[0] == "dqcl" and stem not in MODULES:
                missing.append(f"{module}: from {'.' * node.level}{node.module or ''} import ... ({stem} does not exist)")
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # `import dqcl.x.y` of a name inside a module
                t = t.rpartition(".")[0]
            if t and t != module and t.split(".")[0] == "dqcl":
                found.add(t)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _layer(module)


def test_every_import_names_an_existing_module():
    missing: list[str] = []
    for m, p in MODULES.items():
        _imports(m, p, missing)
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)


def test_no_import_goes_up_a_layer():
    upward = sorted(
        f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})"
        for m, targets in GRAPH.items() for t in targets if _layer(t) > _layer(m)
    )
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_cycles():
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_an_upward_import(tmp_path):
    # the walk above must notice what it is there to forbid: a data module importing the trainer
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..train.run import run_one\n")
    assert _imports("dqcl.data.bad", bad) == {"dqcl.train.run"}
    assert _layer("dqcl.train.run") > _layer("dqcl.data.bad")


def test_no_generic_strategies_package_is_installed(tmp_path):
    import subprocess
    import sys

    # outside the checkout, as a user's environment sees it
    code = "import importlib.util, dqcl.strategies; print(importlib.util.find_spec('strategies') is None)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", "a top-level package named 'strategies' is installed"


def test_the_citation_file_names_the_packages_version():
    import re

    import dqcl

    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (.+)$", cff, re.M).group(1).strip() == dqcl.__version__
    assert "2511.04803" in cff and (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause")
