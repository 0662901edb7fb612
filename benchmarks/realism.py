"""Realism of the built-in data: train only on built-in `nuclei`, score on real fluorescent nuclei.

    python benchmarks/realism.py [--store leaderboard/realism.sqlite] [--figure docs/realism.png]

Writes the real image shipped in the stardist wheel as a folder domain (left half to train on,
right half to test on; see `dqcl.data.sources.packaged`), runs `benchmarks/realism.toml`
(resumable: stored runs are skipped), prints the zero-shot score (after training on built-in
nuclei only) beside the score after training on the real half, with 95 % intervals over seeds,
and draws the comparison of image statistics between built-in and real images (intensity
histograms, radially averaged power spectra, object diameters), both at the spec's diameter.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "benchmarks" / "realism.toml"
DATA = SPEC.parent / "data" / "dsb2018_stardist"  # the spec's folder domain (path = "data/dsb2018_stardist")


def _spectrum(image: np.ndarray, size: int = 64) -> np.ndarray:
    """Radially averaged power spectrum of the central ``size`` px crop (normalised image)."""
    h, w = image.shape
    crop = image[(h - size) // 2 : (h + size) // 2, (w - size) // 2 : (w + size) // 2]
    crop = (crop - crop.mean()) / (crop.std() + 1e-8)
    power = np.abs(np.fft.fftshift(np.fft.fft2(crop))) ** 2
    yy, xx = np.indices(power.shape)
    r = np.hypot(yy - size // 2, xx - size // 2).astype(int)
    return np.bincount(r.ravel(), power.ravel())[: size // 2] / np.maximum(np.bincount(r.ravel())[: size // 2], 1)


def _areas_diameters(masks) -> np.ndarray:
    out = []
    for m in masks:
        areas = np.bincount(np.asarray(m, np.int64).ravel())[1:]
        out += list(2 * np.sqrt(areas[areas > 0] / np.pi))
    return np.asarray(out)


def comparison_figure(spec, out: Path) -> Path:
    """Built-in `nuclei` against the real image: intensity histograms, power spectra, object diameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dqcl.core.atomic import save_figure
    from dqcl.data.domains import DOMAINS
    from dqcl.data.imageio import normalize
    from dqcl.data.scale import to_diameter
    from dqcl.data.sources.packaged import dsb_nuclei

    target = spec.data.diameter
    params = {k: v for k, v in spec.domains["nuclei"].params.items()}
    built = DOMAINS.get("nuclei").factory(seed=spec.data_seed, **{**params, "n_train": 24})
    real_img, real_mask = dsb_nuclei()
    sets = {
        "built-in nuclei": [to_diameter(i, m, target) for i, m in zip(built.train.images, built.train.masks)],
        "real (DSB 2018)": [to_diameter(normalize(real_img.astype(np.float32)), real_mask, target)],
    }
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for name, items in sets.items():
        values = np.concatenate([i.ravel() for i, _, _ in items])
        axes[0].hist(np.clip(values, -0.2, 1.6), bins=60, density=True, histtype="step", lw=1.5, label=name)
        spectra = np.mean([_spectrum(i) for i, _, _ in items if min(i.shape) >= 64], axis=0)
        axes[1].loglog(np.arange(1, len(spectra)), spectra[1:] / spectra[1:].sum(), lw=1.5, label=name)
        axes[2].hist(_areas_diameters([m for _, m, _ in items]), bins=np.arange(0, 40, 1.5), density=True, histtype="step", lw=1.5, label=name)
    axes[0].set(title="intensity (1st-99th percentile normalised)", xlabel="value", ylabel="density")
    axes[1].set(title="radially averaged power spectrum", xlabel="spatial frequency (cycles / 64 px)", ylabel="share of power")
    axes[2].set(title=f"object diameters after rescaling to {target:g} px", xlabel="equivalent diameter (px)", ylabel="density")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out, dpi=90)


def check_inputs(args: argparse.Namespace) -> None:
    """Everything the user gave, checked before the first byte is written (the real-image folder
    included): a store that is not a dqcl store or holds realism runs of the wrong shape, a figure
    or store over an input or over a file dqcl did not write (`dqcl.core.outputs`), a bad count."""
    import dqcl
    from dqcl.core.atomic import folder_problem
    from dqcl.core.outputs import FIGURE, STORE, check_output
    from dqcl.core.validation import out_of_range
    from dqcl.errors import DqclError, OutputError

    problem = out_of_range("--workers", args.workers, 1, 1024)  # the executor's bound
    if problem:
        raise DqclError(problem)
    store, figure = Path(args.store), Path(args.figure)
    reading = [(SPEC, "the realism spec"), (DATA, "the real-image folder the spec reads")]
    check_output(store, STORE, reading=reading, what="--store")
    if store.exists() or store.is_symlink():
        dqcl.load_results(store, study="realism")  # refuses, reading only, what is not a dqcl store of whole runs
    check_output(figure, FIGURE, reading=[*reading, (store, "the results store")], what="--figure")
    for folder in (store.parent, store.parent / "checkpoints", figure.parent):
        problem = folder_problem(folder)
        if problem:
            raise OutputError(f"{folder}: cannot be written ({problem})")


def _main(argv: list[str] | None) -> None:
    from dqcl.core.scripts import ArgumentParser

    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(ROOT / "leaderboard" / "realism.sqlite"))
    ap.add_argument("--figure", default=str(ROOT / "docs" / "realism.png"))
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    check_inputs(args)

    import dqcl
    from dqcl.config.parse import load_spec
    from dqcl.data.sources.packaged import DSB_SOURCE, write_dsb_halves
    from dqcl.results.stats import fmt, summarise

    write_dsb_halves(DATA)
    spec = load_spec(SPEC)
    dqcl.run(SPEC, store=args.store, executor="process" if args.workers > 1 else "local", workers=args.workers)
    df = dqcl.load_results(args.store, study="realism")
    rows = df[(df.metric == "ap50") & (df.ordering == "nuclei>dsb")]
    zero = [R[0][1] for R in rows.R]
    trained = [R[1][1] for R in rows.R]
    builtin = [R[0][0] for R in rows.R]
    print(f"real nuclei: {DSB_SOURCE}")
    print(f"AP@0.5 on the real test half, zero-shot (built-in nuclei only): {fmt(summarise(zero), interval=True)} (n = {len(zero)})")
    print(f"AP@0.5 on the real test half after training on the real train half: {fmt(summarise(trained), interval=True)}")
    print(f"AP@0.5 on built-in nuclei's own test split: {fmt(summarise(builtin), interval=True)}")
    print(comparison_figure(spec, Path(args.figure)))


def main(argv: list[str] | None = None) -> int:
    """The exit code: 0, or 2 with one line for a bad argument, store or output (nothing written then)."""
    from dqcl.core.scripts import run_script

    return run_script(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
