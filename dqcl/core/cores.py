"""How many threads a run should train with on this machine, now: a shared machine degrades gracefully.

Measured on a 2-core AMD EPYC (half-width CPnet, 64 px, batch 8, one training step at a time): idle,
2 threads train 81-97 img/s against 52-58 with 1; beside one other busy process, 2 threads fall to
21-26 img/s (OpenMP threads spin-waiting for a partner the scheduler took away) while 1 thread keeps
48-60. OpenMP's passive wait policy lifts the 2-thread case to 31 img/s but costs a third of the idle
speed, so dqcl keeps the default policy and instead trains with the cores no other process is using.
"""

from __future__ import annotations

import os
import time

__all__ = ["busy_cores", "run_threads"]


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as fh:
            parts = fh.readline().split()
    except OSError:
        return None
    values = [float(v) for v in parts[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values) - idle, sum(values)


def _own_jiffies() -> float:
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return float(fields[11]) + float(fields[12])  # utime + stime of this process
    except (OSError, IndexError, ValueError):
        return 0.0


def busy_cores(window: float = 0.5) -> float:
    """How many cores other processes kept busy over the last ``window`` seconds (0 where unknown)."""
    before, own = _cpu_times(), _own_jiffies()
    if before is None:
        return 0.0
    time.sleep(window)
    after, own_after = _cpu_times(), _own_jiffies()
    total = after[1] - before[1]
    if total <= 0:
        return 0.0
    busy = (after[0] - before[0]) - (own_after - own)
    return max(0.0, busy / total * (os.cpu_count() or 1))


def run_threads(workers: int = 1) -> int | None:
    """The torch threads each of ``workers`` runs gets: ``DQCL_THREADS`` where set (a number, or "keep": leave
    torch's own count), None (leave it) where ``OMP_NUM_THREADS`` is set, else the cores that other processes
    left idle over half a second (at least 1), shared among the workers."""
    pinned = os.environ.get("DQCL_THREADS", "").strip()
    if pinned == "keep" or (not pinned and os.environ.get("OMP_NUM_THREADS")):
        return None
    if pinned:
        try:
            return max(1, int(pinned))
        except ValueError:
            from ..errors import DqclError

            raise DqclError(f"DQCL_THREADS={pinned!r}: give a number of threads, or keep") from None
    cores = os.cpu_count() or 1
    free = max(1, cores - int(round(busy_cores())))
    return max(1, free // max(1, workers))
