"""A shared machine degrades gracefully (issue 27): a run trains with the cores other processes leave idle."""

import subprocess
import sys
import time

import pytest

from dqcl.core import cores


def test_a_busy_neighbour_takes_its_core(monkeypatch):
    monkeypatch.delenv("DQCL_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cores.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cores, "busy_cores", lambda window=0.5: 1.1)
    assert cores.run_threads() == 1 and cores.run_threads(2) == 1
    monkeypatch.setattr(cores, "busy_cores", lambda window=0.5: 0.1)
    assert cores.run_threads() == 2 and cores.run_threads(2) == 1


def test_pinned_and_omp_counts_win(monkeypatch):
    monkeypatch.setenv("DQCL_THREADS", "3")
    assert cores.run_threads() == 3
    monkeypatch.setenv("DQCL_THREADS", "keep")
    assert cores.run_threads() is None
    monkeypatch.delenv("DQCL_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cores.run_threads() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_busy_cores_sees_a_spinning_process():
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert cores.busy_cores(0.5) >= 0.6
    finally:
        spin.kill()
