"""The memory this process has used (no heavy imports: light commands and tests call it)."""

from __future__ import annotations

__all__ = ["peak_rss_mib"]


def peak_rss_mib() -> float:
    """The largest resident set of this process's own image, in MiB.

    Linux's ``VmHWM`` (the high-water mark of this address space). ``getrusage``'s ``ru_maxrss``
    is not used where ``/proc`` exists: it survives ``exec``, so a process started by a large
    parent (a worker forked from a study, a command run from a test session) reports the
    parent's peak, not its own.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux, the fallback elsewhere
