"""MkDocs hooks (``hooks:`` in mkdocs.yml) that generate the parts of the site that must not drift from the code.

- **Spec reference** (``reference/spec.md``, marker ``<!-- dqcl:spec-keys -->``): every key a spec accepts,
  read at build time from the schema itself: the dataclasses of `dqcl.config.schema` (``[data]``, ``[model]``,
  ``[train]``, ``[eval]`` with `dqcl.cpnet.settings.MaskSettings`, ``[memory]``, ``[output]``, ``[log]``,
  ``[redundancy]``), the ``[study]`` keys of `dqcl.config.parse` (``_STUDY_KEYS``, defaults read from
  ``parse_spec``), the parameters of every registered domain kind and strategy; each with its type, its
  default and the comment written beside it in the source. ``SPEC_NOTES`` adds the longer explanations the
  README used to give; a note for a key the schema no longer has stops the build.
- **CLI reference** (``reference/cli.md``, marker ``<!-- dqcl:cli-commands -->``): every command of
  ``dqcl.cli.cli``, walked through its groups, with its usage, help and options, from click itself.
- **Published results**: the README's generated results block (``<!-- dqcl:results-block -->``), and
  ``leaderboard/leaderboard.md`` with its figures (and the browsable ``index.html``) copied into the site
  as ``results/leaderboard.md``, ``results/*.png`` and ``results/browse.html``. Nothing is written into
  the repository: the copies exist only in the build.
"""

from __future__ import annotations

import ast
import dataclasses
import html
import inspect
import io
import re
import textwrap
import tokenize
from pathlib import Path
from typing import Any, Iterator, NamedTuple

ROOT = Path(__file__).resolve().parents[2]

SPEC_MARK = "<!-- dqcl:spec-keys -->"
CLI_MARK = "<!-- dqcl:cli-commands -->"
RESULTS_MARK = "<!-- dqcl:results-block -->"
UPDATE_MARK = "<!-- dqcl:update-howto -->"  # leaderboard/update_howto.md, the how-to's measured table
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# the spec's tables that are dataclasses, in the order the reference shows them
DATACLASS_TABLES = ("data", "model", "train", "eval", "memory", "output", "log", "redundancy")
STUDY_ORDER = ("name", "seeds", "orderings", "data_seed", "device")  # the rest of _STUDY_KEYS follow, sorted

# Longer explanations than the source's comments (the README's spec reference), keyed by (table, key).
# "domains:builtin" and "domains:folder" are the built-in and folder domain kinds, "strategies" a
# [strategies.LABEL] table. A note for a key the schema does not accept stops the build.
SPEC_NOTES: dict[tuple[str, str], str] = {
    ("study", "name"): "study name in tables; this and every domain name and strategy label: no `/`, `\\`, "
                       "control characters, `.`/`..` alone, at most 200 characters",
    ("study", "seeds"): "list of seeds; each run uses one for weight init, shuffling, augmentation and replay picks",
    ("study", "orderings"): "domain orders: lists of names, e.g. `[[\"cyto\",\"histo\"],[\"histo\",\"cyto\"]]`, or the named "
                            "sets `\"given\"` (the spec's order), `\"reverse\"`, `\"all\"` (every permutation), `\"latin\"` "
                            "(a Latin square: n orders, each domain once in each position), `\"balanced\"` (a Williams "
                            "design: each domain also right after every other once; n orders for even n, 2n for odd), "
                            "`\"random:K\"` or `\"random:K:SEED\"` (K distinct orders drawn with SEED, default 0), alone or "
                            "inside the list; `dqcl run` says the run count and its make-up before anything runs",
    ("study", "data_seed"): "seed of the built-in domains' images and of folder domains' `resplit` (the same data for "
                            "every run); seeds are integers in [0, 2^32). `\"per_seed\"`: each run draws its data with "
                            "its own seed, so intervals over seeds cover which images were drawn, not only "
                            "initialisation and batch order (the run of seed s is the run `data_seed = s` would give)",
    ("study", "device"): "`auto`, `cpu`, `cuda` or `cuda:N`",
    ("data", "patch_size"): "square patch side in px; a multiple of 8",
    ("data", "pad"): "reflect-pad images smaller than a patch instead of refusing them",
    ("data", "diameter"): "every image rescaled so that its objects' median diameter is this many px before patches "
                          "are cut; 0 keeps images as they are; otherwise within what a run can find (see "
                          "[Cellpose's scale convention](../explanation/scale.md)); the CPU studies use 16",
    ("data", "cache_dir"): "where flow targets are cached, keyed by mask content; a relative path is taken from the "
                           "working directory and must stay inside it or the spec's folder, an absolute path is taken "
                           "as written (`DQCL_CACHE_DIR`, if set, wins)",
    ("data", "validation"): "a share of each domain's training images (whole images, drawn with the data seed) held "
                            "out and scored **instead of the test split**: for tuning (`dqcl tune`) without ever "
                            "reading a test image (0: score the test split)",
    ("model", "widths"): "the 4 CPnet feature widths; Cellpose's `[32, 64, 128, 256]` make networks that load into Cellpose",
    ("model", "norm"): "`batch` (BatchNorm with running statistics, as Cellpose) or `group` (GroupNorm: no statistics to forget)",
    ("model", "init"): "a Cellpose model file to start from, relative to the spec's folder (`\"\"`: random "
                       "initialisation); see [Networks in and out of Cellpose](../how-to/cellpose-networks.md)",
    ("model", "arch"): "see [the CPSAM backend](../how-to/cellpose-networks.md#cpsam-backend)",
    ("train", "steps"): "optimiser steps per experience, whatever its data (replay makes epochs longer, so fewer); "
                        "joint training gets steps × experiences; 0: train by `epochs`",
    ("train", "batch_size"): "training batch",
    ("train", "lr"): "SGD learning rate (a strategy's own `lr` wins for that strategy)",
    ("train", "momentum"): "SGD momentum, below 1",
    ("train", "weight_decay"): "SGD weight decay",
    ("train", "warmup_epochs"): "linear learning-rate warm-up at the start of every experience, in epochs (at most 1,000,000); Cellpose warms up over 10",
    ("train", "reset_optimizer"): "start every experience with fresh optimiser state (no momentum carried over from the last domain), for every strategy",
    ("train", "schedule"): "the learning rate after the warm-up, over each experience's steps: `constant`, `cosine` (down "
                           "to 0 at the experience's last step) or `step` (×0.1 at half the experience, ×0.01 from three "
                           "quarters); it restarts with every experience, so a resumed run follows the same rates",
    ("train", "fast"): "the fast path: channels-last layout, bf16 autocast of the forward pass, pinned memory; `auto` "
                       "(on for a CUDA device), `on`, `off`, or `layout` (channels-last alone, float32: for CPUs, "
                       "1.08–1.2× per training step measured on an AMD EPYC, where bf16 is slower)",
    ("train", "compile"): "`torch.compile` the network (compiling takes minutes; pays off on long GPU runs)",
    ("eval", "batch_size"): "inference batch",
    ("eval", "flow_threshold"): "`cellpose.dynamics.compute_masks` setting; dqcl runs mask reconstruction batched "
                                "(see [Performance](../explanation/performance.md))",
    ("eval", "cellprob_threshold"): "`compute_masks` setting: Cellpose's logit threshold (-6: more cells, to 6)",
    ("eval", "niter"): "`compute_masks` setting: steps a pixel follows the flows",
    ("eval", "min_size"): "`compute_masks` setting: masks smaller than this many pixels are removed",
    ("eval", "max_size_fraction"): "`compute_masks` setting: masks larger than this fraction of a patch are removed; above 0 (0 removes every mask)",
    ("memory", "size"): "patches of earlier domains every rehearsal strategy holds in all, shared equally among the "
                        "domains seen (earlier shares shrink as domains arrive, keeping each selector's first picks); a "
                        "list sweeps budgets (one run per budget for rehearsal strategies only); see "
                        "[Memory budgets and compute](../how-to/memory-budgets.md). No `[memory]` table: each "
                        "strategy's own parameters",
    ("memory", "rate"): "instead of `size`: this fraction of each earlier domain, turned into a count per domain "
                        "(`max(1, int(n × rate))`, stored with the run); a list sweeps rates",
    ("memory", "protocol"): "`mix`: the memory joins the next domain's training set (the paper's protocol); `batch`: "
                            "`replay_batch` memory samples in every step's batch (ER; `er` and `derpp` replay no other way)",
    ("memory", "replay_batch"): "memory samples per step under `batch`, and for DER++'s, A-GEM's and GEM's memory "
                                "passes; 0: the batch size; a list sweeps it",
    ("memory", "compute"): "`appended`: memory samples come on top of a full batch of new data; `matched`: they "
                           "replace part of it, so every strategy backpropagates `batch_size` samples per step (and "
                           "every epoch drops its short last batch)",
    ("output", "save_weights"): "keep networks (`none`, `final`, `all`); see [Networks in and out of Cellpose](../how-to/cellpose-networks.md). "
                                "Neither `[output]` nor `[log]` is part of a run's key",
    ("log", "tensorboard"): "see [Watching a run](../how-to/watching-a-run.md)",
    ("redundancy", "domain"): "the spec's domain to subsample (default: its first)",
    ("redundancy", "rates"): "training-subset fractions",
    ("redundancy", "selectors"): "any of `mmv`, `graphcut`, `random`, `kcenter`",
    ("redundancy", "bins"): "DQ bins",
    ("redundancy", "embedder_weights"): "MAE weights file, or a CellposeNet checkpoint for `style`",
    ("redundancy", "steps"): "optimiser steps per run, the same for every subset size (epochs = ⌈steps × batch / subset size⌉)",
    ("domains", "kind"): "a domain kind from `dqcl domains list` (default: the table's name, so `[domains.cyto]` is the built-in `cyto`)",
    ("domains:builtin", "n_train"): "training images (1 to 100,000)",
    ("domains:builtin", "n_test"): "test images (1 to 100,000)",
    ("domains:builtin", "size"): "an image's side in px once rescaled to 30 px objects (16 to 8,192)",
    ("domains:builtin", "generator"): "the image generator: 1 (dqcl 0.3's) or 2 (see [the built-in domains](../explanation/domains.md))",
    ("domains:folder", "path"): "the folder holding `train/` and `test/`, relative to the spec file; see [Your own folders](../how-to/own-folders.md)",
    ("domains:folder", "layout"): "`cellpose`, `paper`, `suffix` or `auto`",
    ("domains:folder", "diameter"): "the objects' median diameter in px if you know it (0: measured per image from its mask)",
    ("domains:folder", "resplit"): "pool the pairs of `train_dir` and `test_dir` and draw a test split of `test_dir`'s "
                                   "size with the run's data seed, the rest for training (with `data_seed = \"per_seed\"`, "
                                   "every seed is scored on other images; pair names become `train/NAME`, `test/NAME`)",
    ("domains:folder", "skip_bad"): "leave bad pairs out and report them (also `dqcl run ... --skip-bad`)",
    ("domains:folder", "name"): "set to the domain's table name",
    ("strategies", "strategy"): "registered strategy name (default: the table's label); other keys are its parameters, e.g. `rate = 0.1`",
    ("strategies", "lr"): "the strategy's own learning rate instead of `train.lr` (any strategy)",
    ("strategies", "tuned"): "a `dqcl tune` result (`TUNED.json`) whose chosen values this strategy takes; see [Tuning](../how-to/tuning.md)",
}

STUDY_DEFAULT_TEXT = {"name": "the spec file's stem"}  # a default that is an expression, said in words


# ---------------------------------------------------------------------------------------------- spec keys


class Key(NamedTuple):
    table: str  # "study", "data", ..., "domains", "domains:builtin", "domains:folder", "strategies", "strategies:NAME"
    key: str
    type: str
    default: str  # as TOML would write it
    comment: str  # the comment beside it in the source ("" where there is none)
    note: str = ""


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _type_name(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return text.replace("tuple[int, ...]", "list of int").replace("tuple[float, ...]", "list of float").replace(
        "tuple[str, ...]", "list of str")


def _comments(cls: type) -> dict[str, str]:
    """field name -> the comment written beside it in ``cls``'s own source (its bases are read separately)."""
    lines, first = inspect.getsourcelines(cls)
    source = textwrap.dedent("".join(lines))
    by_line = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            by_line[tok.start[0]] = tok.string.lstrip("#").strip()
    out = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = " ".join(by_line[n] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1) if n in by_line)
            if text:
                out[node.target.id] = text
    return out


def dataclass_tables() -> dict[str, type]:
    """The spec tables held by dataclasses: table name -> its class, as `dqcl.config.parse` reads them."""
    from dqcl.config import schema

    classes = {"data": schema.DataSpec, "model": schema.ModelSpec, "train": schema.TrainSpec, "eval": schema.EvalSpec,
               "memory": schema.MemorySpec, "output": schema.OutputSpec, "log": schema.LogSpec,
               "redundancy": schema.RedundancySpec}
    assert tuple(classes) == DATACLASS_TABLES
    return classes


def _dataclass_keys(table: str, cls: type) -> Iterator[Key]:
    comments: dict[str, str] = {}
    for base in reversed([c for c in cls.__mro__ if dataclasses.is_dataclass(c)]):
        comments.update(_comments(base))
    defaults = cls()
    for f in dataclasses.fields(cls):
        yield Key(table, f.name, _type_name(f.type), _toml(getattr(defaults, f.name)), comments.get(f.name, ""))


def _study_defaults() -> dict[str, str]:
    """key -> the default ``parse_spec`` gives it (``study.get("key", DEFAULT)``), as written in the source."""
    from dqcl.config import parse

    tree = ast.parse(textwrap.dedent(inspect.getsource(parse.parse_spec)))
    out = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "study" and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)):
            try:
                out[node.args[0].value] = _toml(ast.literal_eval(node.args[1]))
            except ValueError:
                out[node.args[0].value] = ast.unparse(node.args[1])
    return out


def study_keys() -> list[str]:
    from dqcl.config.parse import _STUDY_KEYS

    return [k for k in STUDY_ORDER if k in _STUDY_KEYS] + sorted(set(_STUDY_KEYS) - set(STUDY_ORDER))


def _study() -> Iterator[Key]:
    defaults = _study_defaults()
    types = {"name": "str", "seeds": "list of int", "orderings": "list of lists of str, or str", "data_seed": "int or \"per_seed\"",
             "device": "str"}
    for key in study_keys():
        yield Key("study", key, types.get(key, ""), STUDY_DEFAULT_TEXT.get(key, defaults.get(key, "")), "")


def _factory_keys(table: str, factory: Any, skip: tuple[str, ...] = ("seed",)) -> Iterator[Key]:
    bounds = getattr(factory, "bounds", {})
    for name, p in inspect.signature(factory).parameters.items():
        if name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = "" if p.default is p.empty else _toml(p.default)
        comment = f"from {bounds[name][0]:,} to {bounds[name][1]:,}" if name in bounds else ""
        kind = _type_name(p.annotation) if p.annotation is not p.empty else type(p.default).__name__
        yield Key(table, name, kind, default, comment)


def domain_kinds() -> dict[str, Any]:
    from dqcl.data.domains import DOMAINS

    return {name: DOMAINS.get(name) for name in DOMAINS.names()}


def strategy_entries() -> dict[str, Any]:
    from dqcl.config.strategies import STRATEGIES, load_strategies

    load_strategies()
    return {name: STRATEGIES.get(name) for name in STRATEGIES.names()}


def strategy_params(factory: Any) -> dict[str, inspect.Parameter]:
    from dqcl.config.strategies import _params_of

    return _params_of(factory)


def spec_keys() -> list[Key]:
    """Every key a spec accepts, table by table, with its default, the source's comment and its note."""
    from dqcl.config.strategies import SHARED_PARAMS

    keys: list[Key] = list(_study())
    for table, cls in dataclass_tables().items():
        keys += list(_dataclass_keys(table, cls))
    keys.append(Key("domains", "kind", "str", "the table's name", ""))
    kinds = domain_kinds()
    builtin = [n for n in kinds if n != "folder"]
    signatures = {str(inspect.signature(kinds[n].factory)) for n in builtin}
    if len(signatures) == 1:
        keys += list(_factory_keys("domains:builtin", kinds[builtin[0]].factory))
    else:  # the built-in kinds no longer share their parameters: one table each
        for n in builtin:
            keys += list(_factory_keys(f"domains:{n}", kinds[n].factory))
    for n in kinds:
        if n not in builtin:
            keys += list(_factory_keys(f"domains:{n}", kinds[n].factory))
    keys.append(Key("strategies", "strategy", "str", "the table's label", ""))
    keys.append(Key("strategies", "tuned", "str", "", "the path of a `dqcl tune` result"))
    for p in SHARED_PARAMS:
        keys.append(Key("strategies", p, "float", "the spec's train.lr" if p == "lr" else "", ""))
    for name, entry in strategy_entries().items():
        for p in strategy_params(entry.factory).values():
            keys.append(Key(f"strategies:{name}", p.name, type(p.default).__name__, _toml(p.default), ""))
    known = {(k.table, k.key) for k in keys}
    stale = sorted(set(SPEC_NOTES) - known)
    if stale:
        raise ValueError(f"docs/_hooks/dqcl_docs.py: SPEC_NOTES explains keys no spec accepts any more: {stale}")
    return [k._replace(note=SPEC_NOTES.get((k.table, k.key), "")) for k in keys]


def _cell(text: str) -> str:
    """Plain text made safe inside a Markdown table cell: no markup, no cross-reference brackets; code spans
    (backticks) are kept as code."""
    parts = re.split(r"(`[^`\n]*`)", text)
    for n in range(0, len(parts), 2):
        t = html.escape(parts[n], quote=False)
        for ch in "\\*[]_":
            t = t.replace(ch, "\\" + ch)
        parts[n] = t
    return "".join(parts).replace("|", "\\|").replace("\n", " ")


def _note_cell(note: str) -> str:
    return note.replace("|", "\\|").replace("\n", " ")


def _key_table(keys: list[Key]) -> list[str]:
    """A table of keys; the source-comment and notes columns only where some key has one."""
    columns = [("key", lambda k: f"`{k.key}`"), ("type", lambda k: _cell(k.type) or "—"),
               ("default", lambda k: (k.default if k.default.startswith("the ") else f"`{k.default}`") if k.default else "—")]
    if any(k.comment for k in keys):
        columns.append(("in the source", lambda k: _cell(k.comment) or "—"))
    if any(k.note for k in keys):
        columns.append(("notes", lambda k: _note_cell(k.note) or "—"))
    out = ["| " + " | ".join(c for c, _ in columns) + " |", "|" + " --- |" * len(columns)]
    out += ["| " + " | ".join(f(k) for _, f in columns) + " |" for k in keys]
    return out


TABLE_INTRO = {
    "study": "What the study is: its name, seeds, orderings, data seed and device.",
    "data": "How images become patches.",
    "model": "The network.",
    "train": "The schedule every experience follows.",
    "eval": "Mask reconstruction (Cellpose's `compute_masks` settings, `dqcl.cpnet.settings.MaskSettings`) and the scoring batch.",
    "memory": "The memory budget every rehearsal strategy obeys (`dqcl.config.schema.MemorySpec`); see "
              "[Memory budgets and compute](../how-to/memory-budgets.md).",
    "output": "What a run leaves beside the store (`runs/<key>/`); none of it changes a result or its key.",
    "log": "Avalanche loggers fed with the training loss and the score rows; not part of a run's key.",
    "redundancy": "A redundancy study: a network trained from scratch on subsets of one domain "
                  "(see [the redundancy study](../explanation/dataset-quantization.md#redundancy-study)).",
}


def spec_reference_markdown() -> str:
    keys = spec_keys()
    by_table: dict[str, list[Key]] = {}
    for k in keys:
        by_table.setdefault(k.table, []).append(k)
    out: list[str] = []
    for table in ("study", *DATACLASS_TABLES):
        out += [f"## `[{table}]`", "", TABLE_INTRO.get(table, ""), "", *_key_table(by_table[table]), ""]
    out += ["## `[domains.NAME]`", "",
            "One table per domain; `NAME` is the domain's name in tables and orderings. Its keys are `kind` and the "
            "parameters of that kind (`dqcl domains list`), read from each kind's registered factory.", "",
            *_key_table(by_table["domains"]), ""]
    for table, rows in by_table.items():
        if not table.startswith("domains:"):
            continue
        kind = table.split(":", 1)[1]
        if kind == "builtin":
            names = ", ".join(f"`{n}`" for n in domain_kinds() if n != "folder")
            out += [f"### Built-in kinds ({names})", ""]
        else:
            entry = domain_kinds()[kind]
            out += [f"### `kind = \"{kind}\"`", "", _cell(entry.description), ""]
        out += [*_key_table(rows), ""]
    out += ["## `[strategies.LABEL]`", "",
            "One table per strategy arm; `LABEL` names it in tables. Keys every strategy takes, then each registered "
            "strategy's own parameters (its keyword-only arguments: `dqcl strategies list`); see "
            "[Strategies](strategies.md).", "", *_key_table(by_table["strategies"]), ""]
    for name, entry in strategy_entries().items():
        rows = by_table.get(f"strategies:{name}", [])
        out += [f"### `strategy = \"{name}\"`", "", _cell(entry.description) + (f" ({_cell(entry.reference)})" if entry.reference else ""), ""]
        out += [*_key_table(rows), ""] if rows else ["No parameters of its own.", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- CLI


def cli_commands() -> list[tuple[str, Any]]:
    """Every command of ``dqcl`` as (its full name, the click command), groups included, walked from the root."""
    import click

    from dqcl.cli import cli

    out = []

    def walk(cmd: click.Command, path: str) -> None:
        out.append((path, cmd))
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.commands):
                walk(cmd.commands[name], f"{path} {name}")

    walk(cli, "dqcl")
    return out


def _help_text(text: str | None) -> str:
    if not text:
        return ""
    text = inspect.cleandoc(text).replace("\b\n", "")
    return "\n\n".join(_cell(p.strip()) for p in re.split(r"\n\s*\n", text) if p.strip())


def _code(text: str) -> str:
    """``text`` as inline code inside a table cell: a ``|`` in it must not end the cell, and ``[A] [B]`` must not
    read as a reference link (Markdown still parses inside inline HTML)."""
    return "<code>" + html.escape(text).replace("|", "&#124;").replace("[", "&#91;").replace("]", "&#93;") + "</code>"


def _default(param: Any, ctx: Any) -> str:
    """An option's default as the command line takes it ("—" where it has none worth saying)."""
    value = param.get_default(ctx, call=False)
    if callable(value) or value is None or value in ((), [], "") or type(value).__name__ == "Sentinel" or getattr(param, "is_flag", False):
        return "—"
    return _code(" ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value))


def cli_reference_markdown() -> str:
    import click

    from dqcl.cli import cli

    out = []
    for path, cmd in cli_commands():
        parent = None
        names = path.split()
        ctx = click.Context(cli, info_name="dqcl")
        for part in names[1:]:
            parent = ctx
            group = ctx.command
            ctx = click.Context(group.commands[part], info_name=part, parent=parent)
        level = "##" if len(names) <= 2 else "###"
        anchor = "-".join(names)
        out += [f"{level} `{path}` {{#{anchor}}}", ""]
        usage = " ".join([ctx.command_path, *cmd.collect_usage_pieces(ctx)])
        out += ["```text", usage, "```", ""]
        if cmd.help:
            out += [_help_text(cmd.help), ""]
        if isinstance(cmd, click.Group):
            subs = ", ".join(f"[`{path} {n}`](#{anchor}-{n})" for n in sorted(cmd.commands))
            out += [f"Commands: {subs}.", ""]
        rows = []
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Argument):
                what = "argument" if param.required else "argument (optional)"
                rows.append(f"| `{param.human_readable_name}` | {what} | — |")
                continue
            record = param.get_help_record(ctx)
            if record is None or param is cmd.get_help_option(ctx):
                continue
            decl, help_text = record
            rows.append(f"| {_code(decl)} | {_cell(help_text) or '—'} | {_default(param, ctx)} |")
        if rows:
            out += ["| option | what it does | default |", "| --- | --- | --- |", *rows, ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- results


def readme_results_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text[text.index(BEGIN):text.index(END) + len(END)]


LEADERBOARD_NOTE = (
    '!!! note "The published leaderboard"\n'
    "    This page is `leaderboard/leaderboard.md` as published, copied into the site when it is built, with its "
    "figures; [the browsable version](browse.html) (sortable tables, filters) is the published `leaderboard/index.html`. "
    "How to read it: [Reading the leaderboard](../getting-started/leaderboard.md); what it says: "
    "[Published results](index.md).\n"
)


def update_howto_markdown() -> str:
    """The how-to's table as benchmarks/update_howto.py last wrote it (leaderboard/update_howto.md), its title
    dropped (the page has its own); a note where it has not been written yet."""
    path = ROOT / "leaderboard" / "update_howto.md"
    if not path.is_file():
        return "*Not measured yet: `python benchmarks/update_howto.py run` writes this table.*"
    text = path.read_text(encoding="utf-8")
    if text.startswith("# "):
        text = text.partition("\n")[2]
    return text.strip()


def leaderboard_markdown() -> str:
    text = (ROOT / "leaderboard" / "leaderboard.md").read_text(encoding="utf-8")
    head, sep, rest = text.partition("\n")
    return f"{head}\n\n{LEADERBOARD_NOTE}\n{rest}" if head.startswith("# ") else LEADERBOARD_NOTE + "\n" + text


# ---------------------------------------------------------------------------------------------- hooks


def on_files(files, config):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "results/leaderboard.md", content=leaderboard_markdown()))
    for png in sorted((ROOT / "leaderboard").glob("*.png")):
        files.append(File.generated(config, f"results/{png.name}", abs_src_path=str(png)))
    files.append(File.generated(config, "results/browse.html", abs_src_path=str(ROOT / "leaderboard" / "index.html")))
    return files


_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
_INDEXING = re.compile(r"(?<=[\w\])])\[([^\[\]\n]*)\]\[")  # R[i][j], R[T-1][j]: indexing, not a reference link


def escape_indexing(markdown: str) -> str:
    """``R[i][j]`` outside code: the second bracket escaped, so Markdown and mkdocs-autorefs do not read
    ``[i][j]`` as a reference link to an identifier ``j`` (autorefs would warn, and a strict build fail)."""
    parts = _CODE.split(markdown)
    for n in range(0, len(parts), 2):
        text = parts[n]
        while True:
            new = _INDEXING.sub(lambda m: f"[{m.group(1)}]\\[", text)
            if new == text:
                break
            text = new
        parts[n] = text
    return "".join(parts)


def on_page_markdown(markdown, page, config, files):
    markdown = escape_indexing(markdown)
    if SPEC_MARK in markdown:
        markdown = markdown.replace(SPEC_MARK, spec_reference_markdown())
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference_markdown())
    if RESULTS_MARK in markdown:
        markdown = markdown.replace(RESULTS_MARK, readme_results_block())
    if UPDATE_MARK in markdown:
        markdown = markdown.replace(UPDATE_MARK, update_howto_markdown())
    return markdown
