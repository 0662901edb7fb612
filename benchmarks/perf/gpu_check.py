"""GPU figures in one short run (under 5 minutes): `python benchmarks/perf/gpu_check.py`.

Prints DQ selection time at N = 100,000 (768-d, 10 bins, ratio 0.1) for mmv and graphcut on
the GPU (goal: <= 60 s each), and checks on N = 3,000 that the GPU picks the same coreset
as the CPU in float64. Exits 0 with a note where no GPU is present.
"""

import sys
import time

import numpy as np
import torch

from dqcl.dq import graphcut_bins, mmv_bins


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to measure")
        return 0
    dev = "cuda"
    print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    x = np.random.default_rng(0).standard_normal((3000, 768))
    same = [b.tolist() for b in mmv_bins(x, 10, np.float64, device=dev)] == [b.tolist() for b in mmv_bins(x, 10, np.float64)]
    print(f"mmv N=3,000 float64: GPU picks {'the same' if same else 'DIFFERENT'} bins as the CPU")
    big = np.random.default_rng(1).standard_normal((100_000, 768)).astype(np.float32)
    for name, fn in (("mmv", mmv_bins), ("graphcut", graphcut_bins)):
        torch.cuda.synchronize()
        t = time.perf_counter()
        bins = fn(big, 10, dtype=np.float32, budget=45 * 2**30, device=dev)
        torch.cuda.synchronize()
        s = time.perf_counter() - t
        k = len(np.unique(np.concatenate([b[: max(1, int(len(b) * 0.1))] for b in bins])))
        print(f"{name} N=100,000 (768-d, float32, 10 bins): {s:.1f} s (goal <= 60 s), {k} picked at ratio 0.1, "
              f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return 0


if __name__ == "__main__":
    sys.exit(main())
