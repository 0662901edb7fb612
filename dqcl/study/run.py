"""Running a study: the one path from a spec to stored results, for ``dqcl run`` and `dqcl.run`.

`run_spec` reads the spec (a TOML file, a dict in its shape, or the quick default), checks
it is the kind of study asked for, runs `preflight` before the store is opened, then hands
the runs not yet stored to an executor; `run_specs` does the same for several studies, all
checked before the first trains. Each run checkpoints after every experience next to
the store (``checkpoints/<key>.pt``) and resumes from there if it was killed; the checkpoint
goes once the result is stored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config.parse import load_spec, parse_spec, with_overrides, with_skip_bad
from ..config.schema import Spec, shipped_spec
from ..data.prepared import DOMAIN_CACHE
from ..errors import DqclError, Interrupted, OutputError, SpecError
from ..results.store import Store
from .executors import ExecutorOptions, StudySummary, ctrl_c, execute
from .preflight import Study, preflight

__all__ = ["run_spec", "run_specs", "check_spec", "run_study", "StudySummary", "CLAIMS_SPECS", "ADDED_SEEDS_SPECS", "TUNED_SPECS",
           "ORDERINGS_SPECS", "PUBLISHED_SPECS", "BACKGROUND_SPECS"]

# the shipped specs whose runs the published Claims section reads (see dqcl.results.claims), in the order
# `dqcl run claims` runs them: asymmetry from budget_baselines' naive runs (10 seeds with its headline file),
# 5-10 % and full replay from budget_claims_replay, the rate-or-count study and its factorial follow-up
# (replay_threshold), redundancy. benchmarks/publish.sh runs these into the published store.
CLAIMS_SPECS = ("budget_baselines.toml", "budget_claims_replay.toml", "rate_or_count_rate.toml",
                "rate_or_count_count.toml", "rate_or_count_share.toml", "budget_baselines_headline.toml",
                "redundancy.toml", "replay_threshold_k1.toml", "replay_threshold_k2.toml",
                # issue 26: the seeds that take every claim's deciding cells to 10, declared after the claim rules
                # (benchmarks/claims/) were committed
                "budget_claims_replay_seeds.toml", "redundancy_claim_seeds.toml", "replay_threshold_k1_seeds.toml",
                "replay_threshold_k2_seeds.toml")
ADDED_SEEDS_SPECS = CLAIMS_SPECS[-4:]
# published beside them, read by no claim: issue 27's republication under the tuned protocol (its rules fixed in
# benchmarks/plans/republication.toml before its runs); benchmarks/publish.sh runs them after `dqcl run claims`
TUNED_SPECS = ("budget_tuned.toml", "budget_tuned_headline.toml", "budget_tuned_sweep.toml")
# and issue 28's four-domain ordering study (its generalist-first claim reads it), at the tuned protocol
ORDERINGS_SPECS = ("orderings.toml",)
PUBLISHED_SPECS = CLAIMS_SPECS + TUNED_SPECS + ORDERINGS_SPECS
# the studies that run in the background while the published store grows: some of their runs may be missing
BACKGROUND_SPECS = ADDED_SEEDS_SPECS + TUNED_SPECS + ORDERINGS_SPECS


def run_study(study: Study, store: Store, executor: ExecutorOptions = ExecutorOptions(), progress: bool = True) -> StudySummary:
    """Run every run of a study (after its preflight) not yet in ``store``, storing each as it finishes."""
    if executor.name != "local":
        DOMAIN_CACHE.clear()  # the runs read their data in other processes: nothing here needs it
    return execute(study.spec.name, list(study.runs), store, executor, progress)


def _spec_of(spec: str | Path | dict[str, Any] | Spec | None, redundancy: bool | None, overrides: tuple[str, ...]) -> Spec:
    if isinstance(spec, Spec):
        if overrides:
            raise SpecError("overrides apply to a spec file or dict, not to a parsed Spec")
        return spec
    if isinstance(spec, dict):
        return parse_spec(with_overrides(spec, overrides, "<dict>"), "<dict>")
    if spec is None and redundancy:
        spec = shipped_spec("redundancy.toml")
    return load_spec(spec, overrides)


def _check_outputs(spec: Spec, store: Path, keys: tuple[str, ...] = ()) -> None:
    """Where a run writes beside the store (checkpoints always; networks, panels and logs when asked
    for) must be writable before any run trains: a run is not lost to a folder that cannot be made.
    A run's own folder (``runs/<key>``) that is a symbolic link is refused: dqcl never makes one, and
    through it the run's final.pth, panel.png and logs would replace files of the same name elsewhere."""
    from ..core.atomic import folder_problem
    from ..core.outputs import STORE, check_output

    check_output(store, STORE, reading=_inputs(spec), what="--store")
    asked = spec.output.save_weights != "none" or spec.output.panels or any(vars(spec.log).values())
    folders = [store.parent / "checkpoints"] + ([store.parent / "runs"] if asked else [])
    for folder in folders:
        problem = folder_problem(folder)
        if problem:
            raise OutputError(f"{spec.source}: runs write to {folder}, which cannot be made: {problem}")
    for key in keys if asked else ():
        mine = store.parent / "runs" / key
        if mine.is_symlink():
            raise OutputError(f"{spec.source}: {mine} is a symbolic link (to {os.readlink(mine)}), not a folder dqcl made; "
                              "a run writes its networks, panel and logs only into a folder of its own: remove the link")


def _inputs(spec: Spec) -> list[tuple[str, str]]:
    """What a study reads: the store (and the checkpoints and runs folders beside it) must neither
    replace one of these nor lie inside one of the folders."""
    found = [(spec.source, "the spec")] if Path(spec.source).is_file() else []
    found += [(d.params.get("path", ""), "the folder of a folder domain") for d in spec.domains.values() if d.kind == "folder"]
    found.append((spec.model.init, "the model.init file"))
    if spec.redundancy is not None:
        found.append((spec.redundancy.embedder_weights, "the redundancy embedder weights"))
    return found


def _check_cellpose(study: str, store: Store) -> None:
    """Refuse to add to a study whose stored runs were trained with another Cellpose: a run's key leaves
    the version out, so its stored runs would count as done while the rest trained on other flow
    targets (Cellpose 3 and 4 make different ones), and its leaderboard would refuse the mixed study."""
    from importlib import metadata

    from ..core.text import quoted
    from ..errors import ProtocolError

    try:
        here = metadata.version("cellpose")
    except metadata.PackageNotFoundError:
        here = "not installed"
    for run in store.runs(study):
        theirs = (run["result"].get("versions") or {}).get("cellpose")
        if isinstance(theirs, str) and theirs != here:
            raise ProtocolError(f"{store.path}: study {quoted(study)!r} holds runs trained with Cellpose {quoted(theirs, 20)} "
                                f"(e.g. run {quoted(run['key'], 24)}) and this environment has Cellpose {here}, whose flow targets "
                                "differ: its stored runs would count as done beside runs on other targets; give another --store "
                                f"or study.name, or install cellpose=={quoted(theirs, 20)}")


def check_spec(
    spec: str | Path | dict[str, Any] | Spec | None = None,
    *,
    store: str | Path,
    executor: ExecutorOptions = ExecutorOptions(),
    redundancy: bool | None = False,
    skip_bad: bool = False,
    overrides: tuple[str, ...] = (),
    say: Callable[[str], None] = lambda msg: None,
    announce: bool = False,
) -> Study:
    """Every check a study passes before its store is opened: the spec (with ``overrides``), the kind of
    study, its `preflight` (data, rescaling, memory, device) and the folders its runs write to. Writes
    nothing; ``say`` gets one line per bad pair left out with ``skip_bad`` and each note, and with
    ``announce`` the study's run count and how it is made up, before anything runs."""
    executor.check()
    parsed = _spec_of(spec, redundancy, tuple(overrides))
    if skip_bad:
        parsed = with_skip_bad(parsed)
    if redundancy is True and parsed.redundancy is None:
        raise SpecError(f"{parsed.source}: a redundancy study needs a [redundancy] table")
    if redundancy is False and parsed.redundancy is not None:
        raise SpecError(f"{parsed.source}: this is a redundancy study; run it with 'dqcl run redundancy'")
    # before the store is opened: a study that cannot start leaves no file behind
    study = preflight(parsed, concurrent=executor.workers if executor.name == "process" else 1)
    for problem in study.skipped:
        say(f"skipped: {problem}")
    for note in study.notes:
        say(note)
    _check_outputs(parsed, Path(store), tuple(cfg.key for cfg in study.runs))
    r = parsed.redundancy
    if announce:
        say(f"{parsed.name}: {len(study.runs):,} run(s): " + (
            f"{len(parsed.orderings):,} ordering(s) x {len(parsed.strategies)} strategy(ies) x {len(parsed.seeds)} seed(s)"
            + (f" x {len(parsed.memory)} memory budgets" if len(parsed.memory) > 1 else "") if r is None else
            f"{len(r.rates)} rate(s) x {len(r.selectors)} selector(s) x {len(parsed.seeds)} seed(s)"))
    return study


def _run_checked(study: Study, store: str | Path, executor: ExecutorOptions, progress: bool) -> StudySummary:
    """Run a study that passed `check_spec` into ``store``; a study stopped by a run's bad input before
    storing anything leaves no store behind where it made it."""
    name = study.spec.name
    created, empty = not Path(store).exists(), False
    try:
        with Store(store) as s:
            _check_cellpose(name, s)
            try:
                with ctrl_c():
                    return run_study(study, s, executor, progress)
            except KeyboardInterrupt:
                raise Interrupted(
                    f"{name}: interrupted; {len(s)} run(s) in {store}, none half-written. "
                    "Run the same command again to finish (killed runs resume from their checkpoints)."
                ) from None
            except DqclError:
                empty = len(s) == 0
                raise
    except DqclError:
        if created and empty:
            for path in (Path(store), Path(f"{store}-wal"), Path(f"{store}-shm")):
                path.unlink(missing_ok=True)
        raise


def run_specs(
    specs: Sequence[str | Path | dict[str, Any] | Spec | None],
    *,
    store: str | Path,
    executor: ExecutorOptions = ExecutorOptions(),
    redundancy: bool | None = False,
    skip_bad: bool = False,
    overrides: tuple[str, ...] = (),
    dry_run: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = lambda msg: None,
    finished: Callable[[StudySummary], None] = lambda summary: None,
) -> list[StudySummary]:
    """Check every study of ``specs`` (`check_spec`, each with the same ``overrides``) before the first
    run of any trains, then run them one after another into ``store``: a spec that cannot start stops
    the command before anything is stored (``dqcl run claims --set memory.size=4`` is refused at the
    spec that cannot take it, not after the first spec's runs). ``finished`` gets each study's summary as
    it ends. ``dry_run``: the checks only."""
    DOMAIN_CACHE.clear()  # a folder may have changed since the last study in this process
    studies = [check_spec(spec, store=store, executor=executor, redundancy=redundancy, skip_bad=skip_bad,
                          overrides=overrides, say=say, announce=progress) for spec in specs]
    if dry_run:
        done = [StudySummary(len(study.runs), 0, 0, 0.0, study.spec.name) for study in studies]
        for summary in done:
            finished(summary)
        return done
    if Path(store).is_file():  # every study's stored runs, before the first trains (not when a later study opens the store)
        with Store(store, readonly=True) as s:
            for study in studies:
                _check_cellpose(study.spec.name, s)
    done = []
    for study in studies:
        done.append(_run_checked(study, store, executor, progress))
        DOMAIN_CACHE.forget_patches()  # the next study's domains stay as its check read them; these patches are done
        finished(done[-1])
    return done


def run_spec(
    spec: str | Path | dict[str, Any] | Spec | None = None,
    *,
    store: str | Path,
    executor: ExecutorOptions = ExecutorOptions(),
    redundancy: bool | None = False,
    skip_bad: bool = False,
    overrides: tuple[str, ...] = (),
    dry_run: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = lambda msg: None,
) -> StudySummary:
    """Check and run a study; ``say`` gets one line per bad pair left out with ``skip_bad``.

    ``redundancy``: True for ``dqcl run redundancy`` (the spec must have a ``[redundancy]``
    table), False for ``dqcl run benchmark`` (it must not), None for either.

    ``dry_run``: every check (spec, folders, memory), then stop: no store is opened, nothing runs.
    A Ctrl-C becomes `Interrupted`, whose message says what is stored and how to finish.
    """
    return run_specs([spec], store=store, executor=executor, redundancy=redundancy, skip_bad=skip_bad, overrides=overrides,
                     dry_run=dry_run, progress=progress, say=say)[0]
