"""TensorBoard and W&B are the optional extra `log`: dqcl's own dependencies leave them out, dqcl
imports them only when a run asks for their logger, and a spec that asks for a logger whose package
is missing stops in preflight with one line naming the key and the extra.

Avalanche 0.6.0 itself still requires and imports both (``import avalanche`` imports wandb and
torch.utils.tensorboard), so today they are installed with it anyway and a process that trains
has them loaded; the refusal is tested by making dqcl's own import of the package fail after
Avalanche has been imported.
"""

import ast
import json
import subprocess
import sys
import tomllib
from importlib.metadata import requires
from pathlib import Path

import pytest

from conftest import tiny_spec_text

ROOT = Path(__file__).resolve().parents[1]
LOGGERS = ("tensorboard", "wandb")


def _names(reqs: list[str]) -> set[str]:
    import re

    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in reqs}


def test_logger_packages_are_the_log_extra_and_in_dev_not_plain_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    for package in LOGGERS:
        assert package not in _names(project["dependencies"]), f"{package} is a hard dependency of dqcl"
        assert package in _names(extras["log"]), f"{package} missing from the [log] extra"
        assert package in _names(extras["dev"]), f"{package} missing from [dev] (the README's install command and the tests need it)"


def test_avalanche_0_6_still_requires_the_logger_packages():
    """Why the README says a plain install still brings both: avalanche-lib 0.6.0 lists them as
    hard requirements. When a later Avalanche makes them optional this fails: update the README's
    install notes (and this test)."""
    assert {"wandb", "tensorboard"} <= _names(requires("avalanche-lib") or [])


def _module_level_imports(path: Path) -> set[str]:
    """Modules a file imports when it is imported (not inside functions or classes' methods)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                out.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.ClassDef)):
                visit(getattr(node, "body", []) + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
                      + [h for t in getattr(node, "handlers", []) for h in t.body])

    visit(tree.body)
    return out


def test_no_dqcl_module_imports_a_logger_package_when_imported():
    files = sorted((ROOT / "dqcl").rglob("*.py")) + sorted((ROOT / "strategies").glob("*.py"))
    bad = {}
    for f in files:
        hits = {m for m in _module_level_imports(f)
                if m.split(".")[0] in LOGGERS or m.startswith("torch.utils.tensorboard") or m.endswith("TensorboardLogger")}
        if hits:
            bad[str(f.relative_to(ROOT))] = sorted(hits)
    assert not bad, f"imported at module level: {bad}"
    # and in a fresh process: dqcl, its CLI and its API load neither
    child = ("import json, sys, dqcl, dqcl.cli, dqcl.api; "
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('wandb', 'tensorboard'))))")
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.fixture
def avalanche_loaded():
    """Avalanche 0.6 imports wandb and tensorboard itself: load it first, so that only dqcl's own
    import of a logger package sees it missing."""
    import avalanche.training  # noqa: F401


@pytest.mark.parametrize("package,how", [("wandb", "flag"), ("tensorboard", "spec")])
def test_a_logger_whose_package_is_missing_stops_in_preflight_with_one_line(tmp_path, monkeypatch, capsys, avalanche_loaded,
                                                                            package, how):
    from dqcl.cli import main

    spec = tmp_path / "spec.toml"
    text = tiny_spec_text(tmp_path, "[strategies.naive]\n")
    spec.write_text(text + (f"\n[log]\n{package} = true\n" if how == "spec" else ""))
    store = tmp_path / "r.sqlite"
    monkeypatch.setitem(sys.modules, package, None)  # `import <package>` now raises ImportError
    argv = ["run", "benchmark", str(spec), "--store", str(store), "--quiet"] + ([f"--{package}"] if how == "flag" else [])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f'dqcl: error: {spec}: log.{package}: the {package} package is not installed; pip install "dqcl[log]"'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]  # no store, no cache, no runs/ folder


def test_the_refusal_is_one_line_and_exit_code_2_from_the_command(tmp_path):
    """The same through a real process: a child where `import wandb` fails for dqcl (after Avalanche
    has loaded it) prints one line and no traceback, and leaves nothing."""
    spec = tmp_path / "spec.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n") + "\n[log]\nwandb = true\n")
    child = ("import sys, avalanche; sys.modules['wandb'] = None; from dqcl.cli import main; "
             f"sys.exit(main(['run', 'benchmark', {str(spec)!r}, '--store', {str(tmp_path / 'r.sqlite')!r}]))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", child], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        f'dqcl: error: {spec}: log.wandb: the wandb package is not installed; pip install "dqcl[log]"']
    assert out.stdout == "" and sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


def test_installed_logger_packages_pass_preflight(tmp_path):
    from dqcl.config.parse import parse_spec
    from dqcl.study.preflight import preflight

    raw = tomllib.loads(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    raw["log"] = {"wandb": True, "tensorboard": True, "csv": True}
    assert len(preflight(parse_spec(raw, "spec.toml", tmp_path)).runs) == 1
