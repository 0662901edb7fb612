"""The ``dqcl`` command line. Errors a user can cause become one line on stderr and exit code 2."""

from __future__ import annotations

import json
import logging
import math
import sys
import warnings
from pathlib import Path

import click

from .core.scripts import error_line
from .core.text import one_line
from .errors import DqclError, Interrupted
from .results.store import DEFAULT_STORE

__all__ = ["main", "cli"]


# warnings that are noise to a dqcl user: each says something dqcl already handles
_NOISE = (
    ("ignore", "No loggers specified"),  # Avalanche: dqcl passes its own evaluator on purpose
    ("ignore", ".*torch.cuda.amp.*"),  # Avalanche's internal use of a deprecated torch API
    ("ignore", ".*pkg_resources.*"),  # GPUtil, imported by Avalanche
    ("ignore", ".*weights_only.*"),  # torch.load notes; dqcl always passes weights_only
    ("ignore", ".*Pydantic.*"),  # wandb's own pydantic notes
)


def _setup_logging(verbose: int, quiet: bool) -> None:
    """dqcl's own lines on stderr: progress as plain lines where stderr is not a terminal (a terminal
    gets bars instead), per-epoch lines with -v, warnings only with -q; library noise silenced."""
    for action, message in _NOISE:
        warnings.filterwarnings(action, message=message)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("cellpose").setLevel(logging.ERROR)  # Cellpose logs a line per patch it segments
    logging.getLogger("avalanche").setLevel(logging.ERROR)
    log = logging.getLogger("dqcl")
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    if not verbose and sys.stderr.isatty():
        level = max(level, logging.WARNING)  # the progress bars say it
    log.setLevel(level)
    if not any(getattr(h, "_dqcl", False) for h in log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler._dqcl = True
        log.addHandler(handler)
        log.propagate = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dqcl")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help="Import MODULE first (it registers strategies); repeatable.")
@click.option("-v", "--verbose", count=True, help="More lines: every epoch's loss.")
@click.option("-q", "--quiet", "quiet_logs", is_flag=True, help="Warnings and errors only.")
def cli(plugins: tuple[str, ...], verbose: int, quiet_logs: bool) -> None:
    """Continual-learning benchmarks for Cellpose segmentation networks."""
    _setup_logging(verbose, quiet_logs)
    from .config.strategies import forget_plugins, load_plugin

    forget_plugins()
    for module in plugins:
        load_plugin(module)


class FiniteFloat(click.FloatRange):
    """click's FloatRange, refusing NaN and infinity: NaN compares false with every bound, so the
    range alone lets it through (and ``--diameter nan`` reached the rescaling as a traceback)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


# ---- run -------------------------------------------------------------------------------


@cli.group()
def run() -> None:
    """Run studies."""


def _study_options(command):
    """The options ``dqcl run benchmark`` and ``dqcl run redundancy`` share."""
    options = [
        click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--store", "store_path", default=DEFAULT_STORE, show_default=True, type=click.Path(path_type=Path), help="SQLite results store."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
        click.option("--executor", type=click.Choice(["local", "process", "ray"]), default="local", show_default=True, help="Run one after another, in N worker processes, or as Ray tasks."),
        click.option("--workers", default=1, show_default=True, type=int, help="Runs at once (process, local Ray)."),
        click.option("--address", default=None, metavar="ADDR", help="Ray cluster to submit to (host:port, ray://host:port or auto); default: start a local one."),
        click.option("--num-gpus", default=None, type=FiniteFloat(0), help="GPUs per Ray task (default: 1 where the cluster has GPUs, else 0)."),
        click.option("--skip-bad", is_flag=True, help="In folder domains, leave out bad image/mask pairs (reported) instead of stopping."),
        click.option("--set", "overrides", multiple=True, metavar="TABLE.KEY=VALUE", help="Change a spec setting without editing the file (repeatable), e.g. --set train.steps=500; checked like the file."),
        click.option("--device", default=None, metavar="DEVICE", help="Shorthand for --set study.device=DEVICE (auto, cpu, cuda, cuda:N)."),
        click.option("--save-weights", type=click.Choice(["none", "final", "all"]), default=None, help="Keep each run's final (or every experience's) network in Cellpose's format under runs/<key>/ beside the store."),
        click.option("--panels", is_flag=True, default=None, help="Write a prediction panel per run (test patches, true and predicted outlines after each experience)."),
        click.option("--tensorboard", is_flag=True, default=None, help="Log the loss and the scores to TensorBoard under runs/<key>/tensorboard/."),
        click.option("--csv-log", is_flag=True, default=None, help="Log every metric value to runs/<key>/metrics.csv."),
        click.option("--wandb", is_flag=True, default=None, help="Log to Weights & Biases in offline mode under runs/<key>/ (wandb sync uploads later)."),
        click.option("--dry-run", is_flag=True, help="Check the spec, its folders and the memory a run needs, list how many runs there are, and stop."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@run.command("benchmark")
@_study_options
def run_benchmark(**options) -> None:
    """Run a benchmark SPEC (default: benchmarks/quick.toml); runs already stored are skipped."""
    _run(redundancy=False, **options)


@run.command("redundancy")
@_study_options
def run_redundancy(**options) -> None:
    """Train from scratch on subsets of a domain chosen by each selector at each rate (default: benchmarks/redundancy.toml)."""
    _run(redundancy=True, **options)


@run.command("claims")
@_study_options
def run_claims(spec: Path | None, **options) -> None:
    """Run the shipped studies whose runs the published Claims section reads (SPEC: one of them only;
    388 runs, about 8 hours with two workers on a 2-core CPU); then `dqcl leaderboard build` writes it."""
    from .config.schema import shipped_spec
    from .study.run import CLAIMS_SPECS

    # every spec checked (with the --set overrides) before the first run of any trains
    _run(specs=[spec] if spec else [shipped_spec(name) for name in CLAIMS_SPECS], redundancy=None, **options)


def _run(*, spec: Path | None = None, specs: list[Path | None] | None = None, store_path: Path, quiet: bool,
         redundancy: bool | None, executor: str, workers: int, address: str | None, num_gpus: float | None, skip_bad: bool, overrides: tuple[str, ...], device: str | None,
         save_weights: str | None, panels: bool | None, tensorboard: bool | None, csv_log: bool | None, wandb: bool | None,
         dry_run: bool) -> None:
    from .study.executors import ExecutorOptions, StudySummary
    from .study.run import run_specs

    if quiet:
        logging.getLogger("dqcl").setLevel(logging.WARNING)
    shorthand = {"study.device": device and f'"{device}"', "output.save_weights": save_weights and f'"{save_weights}"',
                 "output.panels": panels and "true", "log.tensorboard": tensorboard and "true", "log.csv": csv_log and "true",
                 "log.wandb": wandb and "true"}
    overrides = tuple(overrides) + tuple(f"{k}={v}" for k, v in shorthand.items() if v)

    def finished(summary: StudySummary) -> None:
        if dry_run:
            click.echo(f"{summary.study}: {summary.total} run(s) would run; the spec, its data and the memory it needs are fine "
                       "(dry run, nothing stored)")
        else:
            click.echo(f"{summary.study}: {summary.ran} run(s) done in {summary.seconds:.0f} s, "
                       f"{summary.done_before} already stored, {summary.total} in all -> {store_path}")

    run_specs(
        [spec] if specs is None else specs, store=store_path, redundancy=redundancy, skip_bad=skip_bad, overrides=overrides,
        progress=not quiet, dry_run=dry_run, executor=ExecutorOptions(name=executor, workers=workers, address=address, num_gpus=num_gpus),
        say=lambda msg: click.echo(msg, err=True), finished=finished,
    )


@cli.command("tune")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trials", default=20, show_default=True, type=click.IntRange(1, 100_000), help="Trials per strategy (the same budget for every one).")
@click.option("--validation", default=None, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of each domain's training images held out and scored (sets data.validation); the test images are never read.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The JSON file of chosen values (a spec takes it with tuned = FILE).")
@click.option("--store", "store_path", default="results/tuning.sqlite", show_default=True, type=click.Path(path_type=Path), help="Where the trials' runs are stored.")
@click.option("--storage", default=None, metavar="URL", help="Optuna storage (default: sqlite optuna.sqlite beside --store; any database URL for a cluster).")
@click.option("--executor", type=click.Choice(["local", "process", "ray"]), default="local", show_default=True)
@click.option("--workers", default=1, show_default=True, type=int)
@click.option("--address", default=None, metavar="ADDR")
@click.option("--set", "overrides", multiple=True, metavar="TABLE.KEY=VALUE", help="Change a spec setting (repeatable).")
@click.option("--strategy", "only", multiple=True, metavar="LABEL",
              help="Tune only this strategy of SPEC (repeatable), e.g. one per machine sharing --storage; OUT then holds only these.")
@click.option("--quiet", is_flag=True, help="No line per trial.")
def tune_cmd(spec: Path, trials: int, validation: float | None, out: Path, store_path: Path, storage: str | None, executor: str,
             workers: int, address: str | None, overrides: tuple[str, ...], only: tuple[str, ...], quiet: bool) -> None:
    """Tune every strategy of SPEC on a validation split, with the same trial budget for each (Optuna TPE)."""
    from .study.executors import ExecutorOptions
    from .study.tune import tune_spec

    summary = tune_spec(spec, store=store_path, out=out, trials=trials, storage=storage, validation=validation,
                        overrides=tuple(overrides), executor=ExecutorOptions(name=executor, workers=workers, address=address),
                        only=tuple(only), say=(lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True)))
    for label, got in summary.strategies.items():
        values = ", ".join(f"{k}={v:.3g}" for k, v in got["best"].items())
        click.echo(f"{label}: validation ACC {got['value']:.3f} at {values} ({got['trials']} trials, {got['pruned']} pruned)")
    click.echo(f"-> {summary.out}")


# ---- update ----------------------------------------------------------------------------


class RateOrCount(click.ParamType):
    """--replay: a rate in (0, 1) of the old images' patches, or a whole count of them (>= 1)."""

    name = "rate|count"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a rate in (0, 1) nor a count of patches", param, ctx)
        if not math.isfinite(number) or number <= 0 or number >= 1 and not number.is_integer():
            self.fail(f"{value!r} is neither a rate in (0, 1) nor a whole count of patches (>= 1)", param, ctx)
        return number


@cli.command("update")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--old", "old", required=True, type=click.Path(file_okay=False, path_type=Path), help="The images the model knows: a folder of image/mask pairs (or its train/ and test/).")
@click.option("--new", "new", required=True, type=click.Path(file_okay=False, path_type=Path), help="The new images to learn, laid out the same way.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The updated model file (Cellpose's format, the input's diameter).")
@click.option("--replay", type=RateOrCount(), default=None, help="The share of the old folder's training patches DQ selects to replay (a rate), or their count. [default: 0.1]")
@click.option("--strategy", default="dq_replay", show_default=True, help="Any registered strategy (dqcl strategies list).")
@click.option("--steps", default=250, show_default=True, type=click.IntRange(1, 10_000_000), help="Optimiser steps on the new images.")
@click.option("--lr", default=0.05, show_default=True, type=FiniteFloat(0, min_open=True), help="SGD learning rate (cosine-decayed after a short warm-up).")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1, 4096))
@click.option("--patch", default=None, type=click.IntRange(16, 4096), help="Training patch side in px at the model's diameter [default: 224; CPSAM: 256].")
@click.option("--holdout", default=0.2, show_default=True, type=FiniteFloat(0, 0.95, min_open=True), help="Share of a folder without train/ and test/ held out for scoring.")
@click.option("--diameter-old", default=0.0, type=FiniteFloat(0), help="The old images' median object diameter in px [default: measured from the masks].")
@click.option("--diameter-new", default=0.0, type=FiniteFloat(0), help="The new images' median object diameter in px [default: measured from the masks].")
@click.option("--compare", is_flag=True, help="Also fine-tune naively and retrain on every image (from the same model) and report them beside it.")
@click.option("--report", default=None, type=click.Path(file_okay=False, path_type=Path), help="A folder for report.json, report.md and report.png.")
@click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Also keep every run's result in this results store.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1))
@click.option("--device", default="auto", show_default=True, metavar="DEVICE", help="auto, cpu, cuda, cuda:N.")
@click.option("--overwrite", is_flag=True, help="Replace --out where a file is there already.")
def update_cmd(model: Path, old: Path, new: Path, out: Path, replay: float | None, strategy: str, steps: int, lr: float, batch_size: int,
               patch: int | None, holdout: float, diameter_old: float, diameter_new: float, compare: bool, report: Path | None,
               store_path: Path | None, seed: int, device: str, overwrite: bool) -> None:
    """Update a Cellpose MODEL on new images without forgetting the old ones: fine-tune it on --new while replaying a DQ-selected share of --old."""
    from .study.update import DEFAULT_REPLAY, update_model

    found = update_model(model, old, new, out, replay=DEFAULT_REPLAY if replay is None else replay, strategy=strategy, steps=steps,
                         lr=lr, batch=batch_size, patch=patch, holdout=holdout, seed=seed, device=device,
                         diameters=(diameter_old, diameter_new), compare=compare, report=report, store=store_path,
                         overwrite=overwrite, say=lambda msg: click.echo(msg, err=True))
    b = next(iter(found["methods"].values()))["before"]
    held = found["held_out"]
    click.echo(f"AP@0.5 on held-out patches ({held['old']['patches']} old with {held['old']['objects']} objects, "
               f"{held['new']['patches']} new with {held['new']['objects']}):")
    click.echo(f"  {'before':12s} old {b['old']:.3f}  new {b['new']:.3f}")
    for name, m in found["methods"].items():
        click.echo(f"  {name:12s} old {m['after']['old']:.3f}  new {m['after']['new']:.3f}  forgetting {m['forgetting']:+.3f}  "
                   f"{m['train_s']:.0f} s")
    click.echo(f"-> {out}" + (f" (report: {report})" if report is not None else ""))


# ---- data ------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Public dataset recipes and registered dataset folders."""


@data.command("list")
def data_list() -> None:
    """The public datasets dqcl can bring in, and the folders registered so far."""
    from .data.sources.manifest import registered
    from .data.sources.recipes import RECIPES

    for name in RECIPES.names():
        r = RECIPES.get(name).factory
        how = "direct download" if r.files else "manual download (licence click or registration)"
        click.echo(f"{name}\n  {r.title}\n  licence: {r.license}; size: {r.size}; {how}\n  where: {r.homepage}\n"
                   f"  source layout: {r.source_layout}\n  becomes: train/ and test/ of NAME_img.* + NAME_masks.tif "
                   f"(domain kind 'folder', layout 'cellpose'); images like: {r.domain}")
    book = registered()
    click.echo("\nregistered folders:" + ("" if book else " none (dqcl data register NAME DIR)"))
    for name, info in sorted(book.items()):
        click.echo(f"  {name}: {info['path']} (manifest {info['manifest_hash']}, {info['registered']})")


@data.command("fetch")
@click.argument("name")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to fill.")
@click.option("--mirror", default=None, metavar="URL", help="Fetch the same file names from this base URL.")
@click.option("--from", "source", default=None, type=click.Path(path_type=Path), help="Convert a folder you downloaded by hand.")
@click.option("--skip-bad", is_flag=True, help="Leave out unreadable or invalid pairs (listed in the manifest) instead of stopping.")
@click.option("--overwrite", is_flag=True, help="Fill DIR even if it holds files dqcl did not put there (its train/ and test/ are replaced).")
def data_fetch(name: str, to: Path, mirror: str | None, source: Path | None, skip_bad: bool, overwrite: bool) -> None:
    """Download, verify, unpack and convert dataset NAME into DIR, then register it."""
    from .data.sources.fetch import fetch_dataset

    m = fetch_dataset(name, to, mirror=mirror, source=source, skip_bad=skip_bad, overwrite=overwrite,
                      say=lambda msg: click.echo(msg, err=True))
    _report_registered(m)


@data.command("register")
@click.argument("name")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--layout", type=click.Choice(["auto", "cellpose", "paper"]), default="auto", show_default=True)
@click.option("--skip-bad", is_flag=True, help="Leave out unreadable or invalid pairs (listed in the manifest) instead of stopping.")
def data_register(name: str, folder: Path, layout: str, skip_bad: bool) -> None:
    """Validate FOLDER (train/ and test/ image/mask pairs) and write its manifest under NAME."""
    from .data.sources.manifest import register

    _report_registered(register(name, folder, layout=layout, skip_bad=skip_bad))


def _report_registered(m: dict) -> None:
    for problem in m.get("skipped", []):
        click.echo(f"skipped: {problem}", err=True)
    st = m["stats"]
    click.echo(f"{m['name']}: {st['train']['pairs']} train + {st['test']['pairs']} test pairs, "
               f"{st['train']['objects'] + st['test']['objects']} objects, manifest {m['manifest_hash']} "
               f"-> {m['root']}/dqcl_manifest.json" + (f"; {len(m['skipped'])} bad pair(s) skipped" if m.get("skipped") else ""))


# ---- leaderboard -----------------------------------------------------------------------


@cli.group()
def leaderboard() -> None:
    """Publish tables from stored results."""


@leaderboard.command("build")
@click.option("--store", "store_path", default=DEFAULT_STORE, show_default=True, type=click.Path(path_type=Path))
@click.option("--out", default="results/leaderboard", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write; the published tables are rebuilt with --out leaderboard, explicitly.")
@click.option("--study", default=None, help="Only this study.")
@click.option("--cost", is_flag=True, help="Add cost columns (wall time, images seen, peak memory, device) to the tables.")
@click.option("--split-protocols", "--allow-mixed-data", "split_protocols", is_flag=True,
              help="Show a study whose runs differ in their protocol (data, Cellpose, steps, ...) as one study per protocol, instead of refusing it.")
@click.option("--tuned", "tuned", multiple=True, type=click.Path(path_type=Path),
              help="A dqcl tune result some stored runs took their values from: its grid (every trial) is shown. Repeatable.")
def leaderboard_build(store_path: Path, out: Path, study: str | None, cost: bool, split_protocols: bool, tuned: tuple[Path, ...]) -> None:
    """Write leaderboard.md/.csv/.json/.tex, index.html and the figures (default: under results/)."""
    from .results.leaderboard import write_leaderboard
    from .results.store import Store

    with Store(store_path, readonly=True) as store:
        paths = write_leaderboard(store, out, study=study, cost=cost, split_protocols=split_protocols, tuned=tuned)
    for p in paths:
        click.echo(str(p))


# ---- score -----------------------------------------------------------------------------


@cli.command("score")
@click.argument("true_dir", type=click.Path(path_type=Path))
@click.argument("pred_dir", type=click.Path(path_type=Path))
@click.option("--true-suffix", default="_masks", show_default=True)
@click.option("--pred-suffix", default="_cp_masks", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per-image scores and their mean.")
def score(true_dir: Path, pred_dir: Path, true_suffix: str, pred_suffix: str, as_json: bool) -> None:
    """Score predicted instance masks in PRED_DIR against the ground truth in TRUE_DIR."""
    from .evaluation.score_folders import score_folders

    result = score_folders(true_dir, pred_dir, true_suffix, pred_suffix)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    from tabulate import tabulate

    from .evaluation.metrics import METRICS

    rows = [[im["name"], *(im[k] for k in METRICS)] for im in result["images"]]
    rows.append(["mean", *(result["mean"][k] for k in METRICS)])
    click.echo(tabulate(rows, ["image", *METRICS], floatfmt=".3f", tablefmt="github"))


# ---- select ---------------------------------------------------------------------------


@cli.command("select")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--rate", "--ratio", "ratio", type=FiniteFloat(), required=True, help="Fraction to keep, in (0, 1] (a spec's `rate`).")
@click.option("--bins", type=click.IntRange(1, 1_000_000), default=10, show_default=True)
@click.option("--variant", type=click.Choice(["mmv", "graphcut", "random", "kcenter"]), default="mmv", show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--out", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="FEATURES.npy: the indices (.npy, int64, sorted). A folder: the chosen file names (text).")
@click.option("--copy-to", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A folder: copy the chosen image/mask pairs here (Cellpose training layout).")
@click.option("--embedder", type=click.Choice(["stats", "mae", "style"]), default="stats", show_default=True, help="A folder: how to embed its images.")
@click.option("--mae-weights", default="", help="Local weights of vit_base_patch16_224.mae (.safetensors or .pth).")
@click.option("--checkpoint", default="", help="For --embedder style: a CellposeNet state dict.")
@click.option("--overwrite", is_flag=True, help="--copy-to a folder that holds files dqcl did not put there (chosen pairs go beside and over them).")
def select_cmd(source, ratio, bins, variant, seed, output, copy_to, embedder, mae_weights, checkpoint, overwrite) -> None:
    """Select a coreset of SOURCE: a FEATURES.npy array (rows = samples) or an image folder."""
    from .dq.select_files import select_features_file, select_folder

    if source.is_dir():
        if output is None and copy_to is None:
            raise DqclError("give --out NAMES.txt and/or --copy-to DIR for a folder")
        names = select_folder(source, ratio=ratio, bins=bins, variant=variant, seed=seed, output=output, copy_to=copy_to,
                              embedder=embedder, mae_weights=mae_weights, checkpoint=checkpoint, overwrite=overwrite)
        click.echo(f"selected {len(names)} image(s) of {source}")
    else:
        if output is None:
            raise DqclError("give --out OUT.npy for a feature file")
        idx = select_features_file(source, ratio=ratio, bins=bins, variant=variant, seed=seed, output=output)
        click.echo(f"selected {len(idx)} of the rows of {source} -> {output}")


# ---- registries ------------------------------------------------------------------------


@cli.group()
def domains() -> None:
    """Imaging domains."""


@domains.command("list")
def domains_list() -> None:
    """List the registered domain kinds."""
    from .data.domains import DOMAINS

    for name in DOMAINS.names():
        click.echo(f"{name:12s} {DOMAINS.get(name).description}")


@domains.command("gallery")
@click.argument("domain")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG file to write.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1))
@click.option("-n", "count", default=8, show_default=True, type=click.IntRange(1, 64), help="Samples to show (1 to 64).")
@click.option("--path", "folder_path", default=None, help="For kind 'folder': the domain folder.")
def domains_gallery(domain: str, out: Path, seed: int, count: int, folder_path: str | None) -> None:
    """Write a picture of DOMAIN's samples with their mask outlines."""
    from .core.outputs import FIGURE, check_output
    from .data.domains import DOMAINS
    from .data.gallery import write_gallery

    factory = DOMAINS.get(domain).factory
    check_output(out, FIGURE, reading=[(folder_path, "the domain folder")])
    dom = factory(seed=seed, path=folder_path or "") if domain == "folder" else factory(seed=seed, n_train=max(count, 8), n_test=2)
    click.echo(str(write_gallery(dom, out, n=count)))


@domains.command("export")
@click.argument("domain")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="A new folder: train/ and test/ of <name>_img.tif and <name>_masks.tif.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1), help="The data seed (a study's data_seed draws the same images).")
@click.option("--n-train", default=16, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--n-test", default=8, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--size", default=192, show_default=True, type=click.IntRange(16, 8192), help="Image side once objects are rescaled to 30 px.")
def domains_export(domain: str, out: Path, seed: int, n_train: int, n_test: int, size: int) -> None:
    """Write built-in DOMAIN's images as a folder of image/mask pairs (Cellpose's layout), a stand-in for a user's own."""
    from .core.outputs import FOLDER, check_output
    from .data.export import export_domain

    check_output(out, FOLDER)
    counts = export_domain(domain, out, seed=seed, n_train=n_train, n_test=n_test, size=size)
    click.echo(f"{counts['train']} training and {counts['test']} test image(s) of {domain} -> {out}")


@domains.command("diversity")
@click.argument("domain_names", metavar="DOMAIN...", nargs=-1, required=True)
@click.option("--out", default=None, type=click.Path(dir_okay=False, path_type=Path), help="PNG file: a 2-D map of the first DOMAIN's patch embeddings with its subsets marked.")
@click.option("--rate", "--ratio", "ratio", type=FiniteFloat(0, 1, min_open=True), default=0.1, show_default=True, help="Fraction each subset keeps (the map).")
@click.option("--bins", type=click.IntRange(1, 1_000_000), default=10, show_default=True)
@click.option("--embedder", type=click.Choice(["stats", "mae"]), default="stats", show_default=True)
@click.option("--mae-weights", default="")
@click.option("--method", type=click.Choice(["tsne", "pca"]), default="tsne", show_default=True)
@click.option("--n-train", type=click.IntRange(1, 10_000), default=24, show_default=True, help="Built-in domains: images to draw.")
@click.option("--patch", type=click.IntRange(16, 1024), default=64, show_default=True)
@click.option("--diameter", type=FiniteFloat(0, 1000), default=16.0, show_default=True, help="Rescale images to this median object diameter first (0: as drawn).")
@click.option("--path", "folder_path", default=None, help="For kind 'folder': the domain folder.")
def domains_diversity(domain_names, out, ratio, bins, embedder, mae_weights, method, n_train, patch, diameter, folder_path) -> None:
    """How diverse each DOMAIN is: the mean distance between two of its patches in the jointly
    standardised `stats` embedding (one ruler for all the DOMAINs given); with --out, a map of the
    first DOMAIN's embeddings with the DQ (mmv, graphcut) and random subsets marked."""
    from .core.outputs import FIGURE, check_output
    from .data.domains import DOMAINS

    for name in domain_names:
        DOMAINS.get(name)  # an unknown name: one line with "did you mean"
    if "folder" in domain_names and not folder_path:  # asked for, so scored: never silently left out
        raise DqclError("folder: kind 'folder' needs --path DIR, the domain folder to score")
    if out is not None:  # before any work: the map must not replace an image of the folder, or anything not dqcl's
        check_output(out, FIGURE, reading=[(folder_path, "the domain folder"), (mae_weights, "the --mae-weights file")])
    if len(domain_names) > 1 or out is None:
        from .dq.diversity import domain_diversity

        scores = domain_diversity(list(domain_names), n_images=n_train, patch=patch, diameter=diameter, path=folder_path or "")
        for name, score in sorted(scores.items(), key=lambda kv: -kv[1]):
            click.echo(f"{name:12s} {score:.3f}")
    if out is None:
        return
    from .data.streams import prepare
    from .dq.embedders import embed, embed_options
    from .dq.selectors import select
    from .results.plots import diversity_plot

    domain = domain_names[0]
    factory = DOMAINS.get(domain).factory
    dom = factory(seed=0, path=folder_path or "") if domain == "folder" else factory(seed=0, n_train=n_train, n_test=1)
    data = prepare(dom, "train", patch, patch, diameter=diameter)
    opts = embed_options(embedder, mae_weights)
    feats = embed(embedder, data.images, data.targets[:, 0].astype("int32"), **opts)
    subsets = {v: select(feats, ratio, min(bins, len(feats)), v) for v in ("mmv", "graphcut", "random")}
    title = f"{domain}: {len(feats)} patches, {embedder} embedding, {ratio:.0%} subsets"
    click.echo(str(diversity_plot(feats, subsets, out, title=title, method=method)))


@cli.group()
def strategies() -> None:
    """Continual-learning strategies."""


@strategies.command("list")
def strategies_list() -> None:
    """List the registered strategies with their parameters."""
    from .config.strategies import list_strategies, resolve_params, strategy_entry

    for name in list_strategies():
        entry = strategy_entry(name)
        params = ", ".join(f"{k}={v}" for k, v in resolve_params(name, {}).items())
        ref = f" [{entry.reference}]" if entry.reference else ""
        click.echo(f"{name:12s} {entry.description}{ref}" + (f" (params: {params})" if params else ""))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input)."""
    try:
        cli.main(args=argv, prog_name="dqcl", standalone_mode=False)
    except DqclError as err:
        click.echo(error_line(err), err=True)
        return 2
    except Interrupted as err:
        click.echo(f"\n{err}", err=True)
        return 130
    except click.exceptions.Abort:
        click.echo("dqcl: aborted", err=True)
        return 130
    except click.ClickException as err:  # a usage mistake: unknown command or option, missing argument
        where = f" (see '{err.ctx.command_path} --help')" if getattr(err, "ctx", None) is not None else ""
        click.echo(f"dqcl: error: {one_line(err.format_message())}{where}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
