"""Where a study's runs execute: one after another (`local`), in worker processes (`process`),
or as Ray tasks on a running cluster or a local one (`ray`).

Whatever the executor, the driver (the process that runs ``dqcl run``) is the only writer of
the results store: workers train and score a run and send its result back, and the driver
stores it in one transaction as it arrives. Runs already stored are never submitted again,
and each run checkpoints after every experience into ``checkpoints/`` beside the store, so a
study that was killed resumes both between and inside runs. A run whose worker dies is
submitted again (it resumes from its checkpoint) up to ``retries`` times; the stored result
records how many attempts it took.

For a cluster, the checkpoint folder must be on storage every Ray node can reach (the
store's folder, given as a shared path); results travel back to the driver through Ray.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config.schema import RunConfig
from ..config.strategies import load_plugin, loaded_plugins
from ..core.atomic import discard
from ..core.validation import out_of_range
from ..errors import DqclError
from ..results.store import Store
from ..train.run import run_one

__all__ = ["EXECUTORS", "ExecutorOptions", "StudySummary", "artifacts_path", "checkpoint_path", "execute"]

log = logging.getLogger("dqcl")

EXECUTORS = ("local", "process", "ray")


@dataclass(frozen=True)
class ExecutorOptions:
    name: str = "local"
    workers: int = 1
    address: str | None = None
    num_gpus: float | None = None  # per Ray task; None: 1 where the cluster has GPUs, else 0
    retries: int = 2

    def check(self) -> None:
        if self.name not in EXECUTORS:
            raise DqclError(f"--executor: unknown executor '{self.name}'; expected one of: {', '.join(EXECUTORS)}")
        problem = out_of_range("--workers", self.workers, 1, 1024) or (
            out_of_range("--num-gpus", self.num_gpus, 0) if self.num_gpus is not None else None)
        if problem:
            raise DqclError(problem)
        if self.address and self.name != "ray":
            raise DqclError("--address: only the ray executor connects to a cluster")
        if self.name == "ray":
            _import_ray()
            if self.address:
                _check_address(self.address)


@dataclass(frozen=True)
class StudySummary:
    total: int
    done_before: int
    ran: int
    seconds: float
    study: str = ""


def checkpoint_path(store: Store, cfg: RunConfig) -> Path:
    """Where a run of a study stored in ``store`` keeps its per-experience checkpoint."""
    return store.path.parent / "checkpoints" / f"{cfg.key}.pt"


def artifacts_path(store: Store, cfg: RunConfig) -> Path:
    """Where a run keeps what its spec's [output] and [log] ask for (networks, panel, logs)."""
    return store.path.parent / "runs" / cfg.key


def _label(cfg: RunConfig) -> str:
    return f"{cfg.strategy.label} {'>'.join(cfg.ordering)} seed {cfg.seed}"


def _work(cfg: RunConfig, checkpoint: str, artifacts: str, plugins: tuple[str, ...], threads: int) -> dict[str, Any]:
    """One run in a worker (a subprocess or a Ray task)."""
    import logging
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    logging.getLogger("cellpose").setLevel(logging.ERROR)
    if threads > 0:
        torch.set_num_threads(threads)
    for module in plugins:
        load_plugin(module)
    result = run_one(cfg, checkpoint=Path(checkpoint), artifacts=Path(artifacts))
    result["worker"] = {"host": socket.gethostname(), "pid": os.getpid()}
    return result


class _Study:
    """Bookkeeping shared by the executors: progress bars, storing, retries."""

    def __init__(self, name: str, runs: list[RunConfig], store: Store, opts: ExecutorOptions, progress: bool) -> None:
        from tqdm import tqdm

        self.name, self.store, self.opts = name, store, opts
        self.plugins = loaded_plugins()
        self.total = len(runs)
        self.todo = [r for r in runs if not store.has(r.key)]
        todo = {r.key for r in self.todo}
        for r in runs:  # a study killed between storing a run and removing its checkpoint left it behind
            if r.key not in todo:
                discard(self.ckpt(r))
        self.t0 = time.perf_counter()
        self.lines = not progress or not sys.stderr.isatty()  # a log file gets plain lines, not carriage-return bars
        self.bar = tqdm(
            total=len(runs), initial=len(runs) - len(self.todo), disable=self.lines, unit="run",
            dynamic_ncols=True, desc=f"{name} [{opts.name}]",
        )
        self.progress = progress
        self.attempts: dict[str, int] = {}
        self.stored = 0

    def ckpt(self, cfg: RunConfig) -> Path:
        return checkpoint_path(self.store, cfg)

    def files(self, cfg: RunConfig) -> Path:
        return artifacts_path(self.store, cfg)

    def submit_args(self, cfg: RunConfig, threads: int) -> tuple:
        return cfg, str(self.ckpt(cfg)), str(self.files(cfg)), self.plugins, threads

    def done(self, cfg: RunConfig, result: dict[str, Any]) -> None:
        result["attempts"] = self.attempts.get(cfg.key, 0) + 1
        result["executor"] = self.opts.name
        self.store.put(cfg.key, cfg.to_dict(), result)
        discard(self.ckpt(cfg))  # and any temporary file a kill during a checkpoint write left
        self.bar.update(1)
        self.stored += 1
        log.info("%s: stored %d of %d runs to do: %s (%.0f s)", self.name, self.stored, len(self.todo), _label(cfg),
                 result["timings"]["total_s"])

    def failed(self, cfg: RunConfig, why: str) -> bool:
        """Count a lost attempt; True if the run should be submitted again."""
        n = self.attempts.get(cfg.key, 0) + 1
        self.attempts[cfg.key] = n
        if n > self.opts.retries:
            raise DqclError(f"run '{_label(cfg)}' ({cfg.key}): {why}; gave up after {n} attempts")
        log.warning("run '%s': %s; retrying (attempt %d, resumes from its checkpoint)", _label(cfg), why, n + 1)
        return True

    def running(self, labels: list[str]) -> None:
        self.bar.set_postfix_str(", ".join(labels[:3]) + (" ..." if len(labels) > 3 else ""), refresh=True)

    def finish(self) -> StudySummary:
        folder = self.store.path.parent / "checkpoints"
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        self.bar.set_description(f"{self.name}: done")
        self.bar.close()
        return StudySummary(self.total, self.total - len(self.todo), len(self.todo), time.perf_counter() - self.t0, self.name)


_CTRL_C = {"hit": False}  # set by `ctrl_c`'s handler: a Ctrl-C some library swallowed still stops the study


@contextlib.contextmanager
def ctrl_c():
    """While a study runs in the main thread: Ctrl-C raises KeyboardInterrupt as Python's own handler does, and
    is also remembered, since a library may catch it on its way up (Avalanche's dataset traversal catches
    every BaseException and tries another path) or a C callback may swallow it (printed, with a traceback,
    unless silenced here); the local executor then stops after the run it was in."""
    import signal
    import threading

    _CTRL_C["hit"] = False
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # not ours to change (a worker thread, an ignored Ctrl-C, an application's own handler)
        return

    def handler(signum, frame):
        _CTRL_C["hit"] = True
        signal.default_int_handler(signum, frame)

    before = sys.unraisablehook

    def unraisable(args):
        # a Ctrl-C that lands in a C callback (numba's llvmlite compiling, for one) cannot propagate: Python
        # would print it with a traceback. It is remembered above and stops the study: nothing more to say
        if args.exc_type is KeyboardInterrupt and _CTRL_C["hit"]:
            return
        before(args)

    signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = unraisable
    try:
        yield
        if _CTRL_C["hit"]:
            raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if sys.unraisablehook is unraisable:  # not one something else installed meanwhile
            sys.unraisablehook = before


def _local(study: _Study) -> None:
    import torch
    from tqdm import tqdm

    from ..core.cores import run_threads

    threads = run_threads(1)
    if threads is not None and threads != torch.get_num_threads():
        # another process keeps some cores busy: threads that would spin-wait for them slow every step down
        log.info("training with %d thread(s): other processes keep %d of %d cores busy", threads,
                 (os.cpu_count() or 1) - threads, os.cpu_count() or 1)
        torch.set_num_threads(threads)

    for cfg in study.todo:
        label = _label(cfg)
        # a terminal gets a bar that moves per epoch with the current loss; a log gets lines
        inner = tqdm(disable=study.lines, leave=False, position=1, unit="epoch", desc=label, dynamic_ncols=True)
        phase = {"now": ""}

        def step(msg: str, inner=inner, label=label) -> None:
            phase["now"] = msg
            inner.set_postfix_str(msg)
            log.info("%s: %s", label, msg)

        def epoch(row: dict[str, Any], inner=inner, label=label) -> None:
            inner.update(1)
            inner.set_postfix_str(f"{phase['now']}, loss {row['loss']:.4f}")
            log.debug("%s: experience %d epoch %d: loss %.4f, lr %.4g, %d steps", label, row["experience"], row["epoch"],
                      row["loss"], row["lr"], row["steps"])

        try:
            result = run_one(cfg, on_step=step, checkpoint=study.ckpt(cfg), artifacts=study.files(cfg), on_epoch=epoch)
        finally:
            inner.close()
        study.done(cfg, result)
        if _CTRL_C["hit"]:  # a Ctrl-C that a library caught during the run: stop here, the run is stored
            raise KeyboardInterrupt


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Worker processes started inside ignore Ctrl-C from their first instruction: a terminal sends it to the
    whole process group, the driver gets it too and stops the workers itself, and a worker would otherwise print
    a traceback of its own (Python keeps an ignored SIGINT ignored across the exec that starts a spawned worker,
    where a handler set after its start would leave its imports exposed). The driver ignores Ctrl-C for as long as
    it takes to start them (the submissions start them; a Ctrl-C in those milliseconds is dropped)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _threads_per_worker(workers: int) -> int:
    """The torch threads each worker trains with: the cores other processes leave idle, shared
    (`dqcl.core.cores.run_threads`; DQCL_THREADS pins it), or, where that leaves the count to torch, cores / workers."""
    from ..core.cores import run_threads

    return run_threads(workers) or max(1, (os.cpu_count() or 1) // workers)


def _process(study: _Study) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    threads = _threads_per_worker(study.opts.workers)
    queue = list(study.todo)
    while queue:
        with _workers_ignore_ctrl_c():
            pool = ProcessPoolExecutor(max_workers=study.opts.workers, mp_context=mp.get_context("spawn"))
            futures = {pool.submit(_work, *study.submit_args(cfg, threads)): cfg for cfg in queue}  # starts the workers
        queue = []
        try:
            pending = set(futures)
            while pending:
                study.running([_label(futures[f]) for f in pending if f.running()])
                finished, pending = wait(pending, timeout=5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    cfg = futures[fut]
                    try:
                        study.done(cfg, fut.result())
                    except BrokenProcessPool:
                        if study.failed(cfg, "its worker process died"):
                            queue.append(cfg)
        except BaseException:
            # the workers, taken before shutdown forgets them (it sets the pool's process table to None): stopped now,
            # not left to finish runs nobody will store while the interpreter waits on them at exit
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            raise
        pool.shutdown(wait=True)


def _check_address(address: str) -> None:
    """Fail at once, not after Ray's long connection timeout, when nothing listens at host:port."""
    if address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except (OSError, ValueError) as err:
        raise DqclError(f"--address {address}: cannot reach a Ray cluster there ({err})") from None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise DqclError('--executor ray needs Ray, which is not installed: pip install -e ".[ray]"') from None
    return ray


def _ray(study: _Study) -> None:
    ray = _import_ray()
    opts = study.opts
    started_here = False
    if not ray.is_initialized():
        if opts.address:
            ray.init(address=opts.address, log_to_driver=False, include_dashboard=False)
        else:
            ray.init(
                num_cpus=opts.workers, include_dashboard=False, log_to_driver=False,
                object_store_memory=256 * 2**20, configure_logging=False,
            )
            started_here = True
    try:
        gpus = opts.num_gpus if opts.num_gpus is not None else (1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0)
        task = ray.remote(_work).options(num_cpus=1, num_gpus=gpus, max_retries=0)
        threads = _threads_per_worker(opts.workers) if not opts.address else 0
        refs = {task.remote(*study.submit_args(cfg, threads)): cfg for cfg in study.todo}
        while refs:
            study.running([_label(c) for c in list(refs.values())[: opts.workers]])
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=5)
            for ref in ready:
                cfg = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except _lost_worker_errors(ray) as err:
                    if study.failed(cfg, f"its Ray worker died ({type(err).__name__})"):
                        refs[task.remote(*study.submit_args(cfg, threads))] = cfg
                    continue
                except ray.exceptions.RayTaskError as err:
                    cause = err.cause if isinstance(getattr(err, "cause", None), Exception) else err
                    if isinstance(cause, DqclError):
                        raise DqclError(str(cause)) from None
                    raise
                study.done(cfg, result)
    finally:
        if started_here:
            ray.shutdown()


def _lost_worker_errors(ray) -> tuple[type[BaseException], ...]:
    names = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "RaySystemError", "TaskUnschedulableError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


_RUNNERS: dict[str, Callable[[_Study], None]] = {"local": _local, "process": _process, "ray": _ray}


def execute(
    name: str, runs: list[RunConfig], store: Store, opts: ExecutorOptions = ExecutorOptions(), progress: bool = True,
) -> StudySummary:
    """Run every run of study ``name`` not yet in ``store`` with the chosen executor (the runs have passed preflight)."""
    opts.check()
    study = _Study(name, runs, store, opts, progress)
    try:
        if study.todo:
            _RUNNERS[opts.name](study)
    finally:
        study.bar.close()
    return study.finish()
