"""GPU figures in one short run (under 5 minutes): `python benchmarks/perf/gpu_check.py`.

1. Training throughput at 224 px, full-width CPnet (32, 64, 128, 256): a plain PyTorch fp32
   loop at batch 8 (and 32) vs dqcl's fast path through an Avalanche strategy (channels-last,
   bf16 autocast, pinned memory, GPU-side flips; batch 32 and 64; with torch.compile if
   ``--compile``). Goal: >= 3x the plain loop at batch 8.
2. Fast and plain paths reach the same score: one small study (cyto, 2 seeds) trained both
   ways; final AP@0.5 means must agree within their spread.
3. Mask reconstruction: dqcl's batched `batch_masks` on the GPU vs Cellpose's per-patch
   `compute_masks`; goal >= 50x patches/s, AP@0.5 between them >= 0.99.
4. DQ selection at N = 100,000 (768-d, 10 bins) for mmv and graphcut; goal <= 60 s each.
5. CPSAM (``[model] arch = "cpsam"``, Cellpose 4's ViT-L structure, random weights): training
   throughput at batch 8, 256 px (Cellpose 4's tile), AdamW, fp32 and bf16 autocast, a few
   timed steps after a warm-up, with the peak GPU memory; skipped without Cellpose 4
   (``cellpose.vit``) or without CUDA (``--smoke``: the tiny encoder at 48 px on the CPU).
   Measured on one H200 (torch 2.11): 15.7 img/s fp32, 40.0 img/s bf16, peak 30.3 / 30.7 GiB.

Measured on one H200 (torch 2.11, Cellpose 4.2.1.1, 2026-11-30; 95 s for parts 1-4): plain loop 249
img/s at batch 8, 311 at 32; fast path 655 img/s at batch 32 (2.63x: misses 3x) and 702 at 64 (2.82x);
agreement: plain 0.568 +- 0.067, fast 0.423 +- 0.110 (2 seeds); masks 13.0x (misses 50x), AP@0.5
0.9875 (misses 0.99); DQ N = 100,000: mmv 9.1 s, graphcut 10.6 s.

``--smoke`` runs every part at toy sizes on whatever device there is (to check the script
itself on a machine without a GPU); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")
logging.getLogger("cellpose").setLevel(logging.ERROR)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _patches(size: int, n_images: int, repeat: int):
    from pathlib import Path
    from tempfile import mkdtemp

    from dqcl.data.domains import DOMAINS
    from dqcl.data.streams import PatchData, prepare

    dom = DOMAINS.get("cyto").factory(seed=0, n_train=n_images, n_test=1, size=2 * size)
    p = prepare(dom, "train", size, size, cache_dir=Path(mkdtemp()), diameter=30.0)  # generator 2: `size` is the side at 30 px objects
    return PatchData(p.domain, p.split, np.concatenate([p.images] * repeat), np.concatenate([p.targets] * repeat),
                     p.names * repeat)


def plain_rate(data, widths, batch: int, epochs: int, dev: torch.device) -> float:
    from torch.utils.data import DataLoader

    from dqcl.cpnet.model import CellposeNet, cellpose_loss, dihedral
    from dqcl.data.streams import PatchDataset

    torch.manual_seed(0)
    model = CellposeNet(widths).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(0)
    loader = DataLoader(PatchDataset(data), batch_size=batch, shuffle=True)

    def epoch():
        for x, y in loader:
            x, y = dihedral(x.to(dev), y.to(dev), gen)
            opt.zero_grad()
            cellpose_loss(model(x), y).backward()
            opt.step()

    epoch()  # warm-up
    _sync(dev)
    t = time.perf_counter()
    for _ in range(epochs):
        epoch()
    _sync(dev)
    return len(data) * epochs / (time.perf_counter() - t)


def fast_rate(data, widths, batch: int, epochs: int, dev: torch.device, compile_: bool) -> float:
    from dqcl.evaluation.scores import SegmentationScores, make_evaluator
    from dqcl.train.fast import FastPath
    from dqcl.cpnet.model import CellposeNet, cellpose_loss
    from dqcl.train.plugins import Augment
    from dqcl.train.strategy import Base, build_strategy
    from dqcl.data.streams import make_benchmark

    torch.manual_seed(0)
    model = CellposeNet(widths)
    if compile_:
        model.compile()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-5)
    base = Base(model, opt, cellpose_loss, batch, 1, 64, dev, make_evaluator(SegmentationScores()),
                plugins=[Augment(0), FastPath(dev)])
    strategy = build_strategy("naive", base, {})
    exp = make_benchmark([data], [data]).train_stream[0]
    loader = {"pin_memory": dev.type == "cuda", "num_workers": 0}
    strategy.train(exp, **loader)  # warm-up (and compilation)
    _sync(dev)
    t = time.perf_counter()
    for _ in range(epochs):
        strategy.train(exp, **loader)
    _sync(dev)
    return len(data) * epochs / (time.perf_counter() - t)


def training(dev: torch.device, smoke: bool, compile_: bool) -> None:
    widths = (8, 16, 32, 64) if smoke else (32, 64, 128, 256)
    size = 64 if smoke else 224
    data = _patches(size, 2 if smoke else 16, 1 if smoke else 8)  # 512 patches of 224 px on a GPU
    epochs = 1 if smoke else 3
    base8 = plain_rate(data, widths, 8, epochs, dev)
    base32 = plain_rate(data, widths, 32, epochs, dev)
    print(f"[train] plain fp32 loop: {base8:.0f} img/s at batch 8, {base32:.0f} img/s at batch 32 "
          f"({len(data)} patches of {size} px, CPnet {widths})")
    variants = [(32, False), (64, False)] + ([(64, True)] if compile_ else [])
    for batch, comp in variants:
        r = fast_rate(data, widths, batch, epochs, dev, comp)
        verdict = "meets" if r / base8 >= 3 else f"MISSES by {3 - r / base8:.2f}"
        print(f"[train] dqcl fast path (bf16, channels-last{', compiled' if comp else ''}) batch {batch}: {r:.0f} img/s "
              f"= {r / base8:.2f}x the plain loop at batch 8 (goal >= 3: {verdict}), {r / base32:.2f}x at batch 32")


def agreement(dev: torch.device, smoke: bool) -> None:
    from dqcl.api import run
    from dqcl.results.store import Store

    from tempfile import mkdtemp
    from pathlib import Path

    tmp = Path(mkdtemp())
    scores = {}
    for fast in ("off", "on"):
        spec = {
            "study": {"name": f"agree-{fast}", "seeds": [0, 1], "orderings": [["cyto"]], "device": str(dev)},
            "data": {"patch_size": 64, "stride": 64, "cache_dir": str(tmp / "cache")},
            "domains": {"cyto": {"n_train": 2 if smoke else 6, "n_test": 1 if smoke else 3, "size": 192}},
            "model": {"widths": [16, 32, 64, 128]},
            "train": {"epochs": 1 if smoke else 30, "batch_size": 8, "lr": 0.05, "fast": fast},
            "eval": {"niter": 200},
            "strategies": {"naive": {}},
        }
        run(spec, store=tmp / "agree.sqlite", progress=False)
        with Store(tmp / "agree.sqlite", readonly=True) as store:
            scores[fast] = [r["result"]["R"]["ap50"][-1][0] for r in store.runs(f"agree-{fast}")]
    (m0, s0), (m1, s1) = [(np.mean(v), np.std(v, ddof=1)) for v in scores.values()]
    ok = abs(m0 - m1) <= s0 + s1 + 0.02
    print(f"[agree] final AP@0.5 (cyto, 2 seeds): plain {m0:.3f} +- {s0:.3f}, fast {m1:.3f} +- {s1:.3f} -> "
          f"{'agree within spread' if ok else 'DIFFER beyond spread'}")


def masks(dev: torch.device, smoke: bool) -> None:
    from dqcl.cpnet.masks import flows_to_masks
    from dqcl.cpnet.masks import batch_masks, outputs_from_targets
    from dqcl.evaluation.metrics import score_masks

    size = 64 if smoke else 224
    data = _patches(size, 2 if smoke else 16, 1 if smoke else 4)
    outputs = outputs_from_targets(data.targets, 0.5)
    n_ref = min(len(outputs), 8 if smoke else 32)
    flows_to_masks(outputs[0])
    t = time.perf_counter()
    ref = [flows_to_masks(o) for o in outputs[:n_ref]]
    per_patch = (time.perf_counter() - t) / n_ref
    batch_masks(outputs[:4], device=dev)  # warm-up
    _sync(dev)
    t = time.perf_counter()
    got = batch_masks(outputs, device=dev)
    _sync(dev)
    batched = (time.perf_counter() - t) / len(outputs)
    ap = np.mean([score_masks(r.astype(np.int32), g.astype(np.int32))["ap50"] for r, g in zip(ref, got)])
    ratio = per_patch / batched
    print(f"[masks] per-patch compute_masks {per_patch * 1000:.1f} ms, batched on {dev} {batched * 1000:.2f} ms/patch "
          f"({len(outputs)} patches of {size} px): {ratio:.1f}x (goal >= 50 on a GPU); AP@0.5 between them {ap:.4f} (goal >= 0.99)")


def dq(dev: torch.device, smoke: bool) -> None:
    from dqcl.dq.selectors import graphcut_bins, mmv_bins

    n = 3000 if smoke else 100_000
    x = np.random.default_rng(0).standard_normal((min(n, 3000), 768))
    same = [b.tolist() for b in mmv_bins(x, 10, np.float64, device=str(dev))] == [b.tolist() for b in mmv_bins(x, 10, np.float64)]
    print(f"[dq] mmv N=3,000 float64: {dev} picks {'the same' if same else 'DIFFERENT'} bins as the CPU")
    big = np.random.default_rng(1).standard_normal((n, 768)).astype(np.float32)
    for name, fn in (("mmv", mmv_bins), ("graphcut", graphcut_bins)):
        _sync(dev)
        t = time.perf_counter()
        bins = fn(big, 10, dtype=np.float32, budget=45 * 2**30, device=str(dev))
        _sync(dev)
        s = time.perf_counter() - t
        k = len(np.unique(np.concatenate([b[: max(1, int(len(b) * 0.1))] for b in bins])))
        peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
        print(f"[dq] {name} N={n:,} (768-d, float32, 10 bins): {s:.1f} s (goal <= 60 s), {k} picked at ratio 0.1, "
              f"peak GPU memory {peak:.1f} GiB")
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()


def cpsam(dev: torch.device, smoke: bool) -> None:
    from dqcl.cpnet.cpsam import CPSAMNet, cellpose4_available
    from dqcl.cpnet.model import cellpose_loss

    if not cellpose4_available():
        print("[cpsam] skipped: Cellpose 4 (cellpose.vit with segment_anything) is not installed")
        return
    if dev.type != "cuda" and not smoke:
        print("[cpsam] skipped: no CUDA device")
        return
    encoder, size, batch, steps = ("tiny", 48, 8, 3) if smoke else ("vit_l", 256, 8, 10)
    torch.manual_seed(0)
    model = CPSAMNet(encoder, bsize=size).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)  # Cellpose 4's train_seg defaults
    x = torch.randn(batch, 1, size, size, device=dev)
    y = torch.zeros(batch, 4, size, size, device=dev)
    y[:, 1] = (torch.rand(batch, size, size, device=dev) > 0.5).float()
    y[:, 2:] = torch.randn(batch, 2, size, size, device=dev).clamp(-1, 1)
    for bf16 in (False, True):
        def step():
            opt.zero_grad()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(x)
            cellpose_loss(out.float(), y).backward()
            opt.step()

        for _ in range(2):
            step()  # warm-up
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        _sync(dev)
        t = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(dev)
        s = time.perf_counter() - t
        peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
        print(f"[cpsam] {encoder} training, batch {batch} at {size} px, AdamW, {'bf16 autocast' if bf16 else 'fp32'}: "
              f"{batch * steps / s:.1f} img/s ({s / steps:.2f} s/step over {steps} steps), peak GPU memory {peak:.1f} GiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="toy sizes on any device, to check the script runs")
    ap.add_argument("--compile", action="store_true", help="also time the fast path with torch.compile")
    ap.add_argument("--only", choices=["train", "agree", "masks", "dq", "cpsam"], action="append")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.smoke:
        print("gpu_check: no CUDA device here; nothing to measure (--smoke checks the script on the CPU)")
        return 0
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "CPU"
    print(f"gpu_check: {name}, torch {torch.__version__}{' (smoke sizes)' if args.smoke else ''}")
    t0 = time.perf_counter()
    parts = {"train": lambda: training(dev, args.smoke, args.compile), "agree": lambda: agreement(dev, args.smoke),
             "masks": lambda: masks(dev, args.smoke), "dq": lambda: dq(dev, args.smoke),
             "cpsam": lambda: cpsam(dev, args.smoke)}
    for part in args.only or list(parts):
        t = time.perf_counter()
        parts[part]()
        print(f"  ({part}: {time.perf_counter() - t:.0f} s)")
    print(f"gpu_check: {time.perf_counter() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
