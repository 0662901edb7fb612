"""The how-to "update a Cellpose model without drift": its runs and its table.

    python benchmarks/update_howto.py run     # resumable: stored seeds are skipped
    python benchmarks/update_howto.py table   # leaderboard/update_howto.md from the store

The protocol and the rules the table's sentences follow are in benchmarks/howto/update.toml, fixed
before the first run. Per seed: built-in ``nuclei`` and ``histo`` exported as folders (``dqcl domains
export``), a network trained on nuclei (the user's model), then ``dqcl update --compare`` from it onto
histo; every run is kept in leaderboard/update_howto.sqlite (studies ``update_howto_source`` and
``update_howto``), the exported folders and networks under .dqcl_cache/update_howto/ (made again when
missing).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "benchmarks" / "howto" / "update.toml"
STORE = ROOT / "leaderboard" / "update_howto.sqlite"
WORK = ROOT / ".dqcl_cache" / "update_howto"
OUT = ROOT / "leaderboard" / "update_howto.md"
METHODS = {"dq_replay": "`dqcl update` (DQ replay)", "naive": "naive fine-tuning", "joint": "retrain on all (joint)"}


def _protocol() -> dict:
    return tomllib.loads(RULES.read_text())


def _source(p: dict, seed: int, folder: Path) -> Path:
    """The user's stand-in model for ``seed``: a network trained on the nuclei folder, kept in the store."""
    from dqcl.config.parse import parse_spec
    from dqcl.results.store import Store
    from dqcl.study.preflight import preflight
    from dqcl.train.run import run_one

    raw = {
        "study": {"name": "update_howto_source", "seeds": [seed], "orderings": [["nuclei"]], "data_seed": seed, "device": "cpu"},
        "data": {"patch_size": p["patch"], "stride": p["patch"], "diameter": p["diameter"], "pad": True,
                 "cache_dir": str(ROOT / ".dqcl_cache")},
        "domains": {"nuclei": {"kind": "folder", "path": str(folder)}},
        "model": {"widths": p["widths"]},
        "train": {"steps": p["source_steps"], "warmup_steps": 25, "batch_size": p["batch_size"], "lr": p["lr"], "reset_optimizer": True},
        "strategies": {"naive": {}},
        "output": {"save_weights": "final"},
    }
    (cfg,) = preflight(parse_spec(raw, "update_howto source", ROOT)).runs
    files = WORK / f"seed{seed}" / "source"
    final = files / "final.pth"
    with Store(STORE) as store:
        if store.has(cfg.key) and final.is_file():
            return final
        result = run_one(cfg, artifacts=files, on_step=lambda msg: print(f"seed {seed} source: {msg}", file=sys.stderr, flush=True))
        if not store.has(cfg.key):
            store.put(cfg.key, cfg.to_dict(), {**result, "executor": "update_howto", "attempts": 1})
    return final


def _done(seed: int) -> bool:
    """A seed is done when every compared method is stored (``dqcl update`` stores dq_replay first, then the others)."""
    from dqcl.results.store import Store

    if not STORE.is_file():
        return False
    with Store(STORE, readonly=True) as store:
        return set(METHODS) <= {r["config"]["strategy"]["label"] for r in store.runs("update_howto") if r["config"]["seed"] == seed}


def run() -> None:
    from dqcl.data.export import export_domain
    from dqcl.results.store import Store
    from dqcl.study.update import update_model

    from dqcl.study.update import _threads

    p = _protocol()["protocol"]
    _threads()
    for seed in p["seeds"]:
        if _done(seed):
            print(f"seed {seed}: stored already", file=sys.stderr)
            continue
        folders = {}
        for name in ("nuclei", "histo"):
            folders[name] = WORK / f"seed{seed}" / name
            if not folders[name].is_dir():
                export_domain(name, folders[name], seed=seed, n_train=p["n_train"], n_test=p["n_test"], size=p["size"])
        model = _source(p, seed, folders["nuclei"])
        update_model(model, folders["nuclei"], folders["histo"], WORK / f"seed{seed}" / "updated.pth", replay=p["replay"],
                     steps=p["steps"], lr=p["lr"], batch=p["batch_size"], patch=p["patch"], seed=seed, device="cpu",
                     compare=True, report=WORK / f"seed{seed}" / "report", store=STORE, study="update_howto", overwrite=True,
                     say=lambda msg, s=seed: print(f"seed {s} {msg}", file=sys.stderr, flush=True))


def table() -> str:
    """The how-to's table and sentences, from the store, by the rules of benchmarks/howto/update.toml."""
    from dqcl.results.stats import fmt, paired, summarise
    from dqcl.results.store import Store

    cfg = _protocol()
    rules = cfg["rules"]
    with Store(STORE, readonly=True) as store:
        runs = list(store.runs("update_howto"))
        sources = list(store.runs("update_howto_source"))
    by: dict[str, dict[int, dict]] = {m: {} for m in METHODS}
    for r in runs:
        by[r["config"]["strategy"]["label"]][r["config"]["seed"]] = r["result"]
    seeds = sorted(set.intersection(*(set(v) for v in by.values()))) if all(by.values()) else []
    if not seeds:
        return "No run of the how-to is stored yet (python benchmarks/update_howto.py run).\n"

    def ap(res: dict, row: str, domain: int) -> float:
        return float((res["baseline"]["ap50"] if row == "before" else res["R"]["ap50"][-1])[domain])

    before = {s: by["dq_replay"][s] for s in seeds}
    lines = ["| | nuclei (old) AP@0.5 | histo (new) AP@0.5 | forgetting (old) | training s |", "| --- | --- | --- | --- | --- |",
             f"| before (the nuclei model) | {fmt(summarise(ap(before[s], 'before', 0) for s in seeds))} | "
             f"{fmt(summarise(ap(before[s], 'before', 1) for s in seeds))} | | |"]
    verdicts = []
    joint_new = {s: ap(by["joint"][s], "after", 1) for s in seeds}
    joint_t = summarise(sum(by["joint"][s]["timings"]["train_s"]) for s in seeds)
    for m, label in METHODS.items():
        res = by[m]
        forgetting = summarise(ap(res[s], "before", 0) - ap(res[s], "after", 0) for s in seeds)
        t = summarise(sum(res[s]["timings"]["train_s"]) for s in seeds)
        label = f"`dqcl update` (DQ replay of {cfg['protocol']['replay']:.0%} of the old patches)" if m == "dq_replay" else label
        lines.append(f"| {label} | {fmt(summarise(ap(res[s], 'after', 0) for s in seeds))} | "
                     f"{fmt(summarise(ap(res[s], 'after', 1) for s in seeds))} | {fmt(forgetting, signed=True)} | {t.mean:.0f} |")
        kept = ("kept the old AP" if forgetting.hi < rules["kept_margin"] else "lost old AP" if forgetting.lo > rules["kept_margin"]
                else "undecided on the old AP")
        sentence = f"- {label}: {kept} (forgetting {fmt(forgetting, signed=True)}; margin {rules['kept_margin']})"
        if m != "joint":
            diff = paired({s: ap(res[s], "after", 1) for s in seeds}, joint_new)
            e = rules["equal_margin"]
            new = ("as good on the new images as retraining on all" if -e < diff.lo and diff.hi < e
                   else "worse on the new images than retraining on all" if diff.hi < -e else "undecided against retraining on all on the new images")
            sentence += f"; {new} (new AP minus joint's {fmt(diff, signed=True)}; margin ±{e}); training time {t.mean / joint_t.mean:.2f}x joint's"
        verdicts.append(sentence + ".")
    src = [r for r in sources if r["config"]["seed"] in seeds]
    plastic = summarise(r["result"]["R"]["ap50"][-1][0] for r in src)
    random = summarise(r["result"]["baseline"]["ap50"][0] for r in src)
    threads = sorted({r["threads"] for m in by.values() for r in m.values()})
    device = sorted({r["device"] for m in by.values() for r in m.values()})
    used = [m[s]["versions"] for m in by.values() for s in seeds]
    versions = ", ".join(sorted({f"{v.get('dqcl', '?')} (commit {str(v.get('dqcl_commit', '?'))[:12]})" for v in used}))
    head = [f"Seeds {seeds} ({len(seeds)}); mean ± sd [95 % interval over seeds]. The nuclei model reached {fmt(plastic)} AP@0.5 on "
            f"nuclei after {cfg['protocol']['source_steps']} steps, from {fmt(random)} at random initialisation. Training seconds on "
            f"{', '.join(device)} with {', '.join(map(str, threads))} thread(s); dqcl {versions}.", ""]
    # every seed on its own: a mean over seeds can hide that some updates collapsed and others did not
    per_seed = ["| seed | before: old / new | " + " | ".join(f"{'`dqcl update`' if m == 'dq_replay' else METHODS[m]}: old / new" for m in METHODS) + " |",
                "| --- | --- | " + " | ".join("---" for _ in METHODS) + " |"]
    for s in seeds:
        per_seed.append(f"| {s} | {ap(before[s], 'before', 0):.3f} / {ap(before[s], 'before', 1):.3f} | "
                        + " | ".join(f"{ap(by[m][s], 'after', 0):.3f} / {ap(by[m][s], 'after', 1):.3f}" for m in METHODS) + " |")
    return "\n".join(["# Updating a nuclei model on histology: what each way costs", "",
                      "Generated by `python benchmarks/update_howto.py table` from leaderboard/update_howto.sqlite under the rules "
                      "of benchmarks/howto/update.toml (fixed before the runs).", "", *head, *lines, "", *verdicts, "",
                      "Each seed's AP@0.5 on the held-out old (nuclei) and new (histo) images:", "", *per_seed, ""])


def _main(argv: list[str]) -> int:
    from dqcl.core.atomic import write_text

    if argv[:1] == ["run"]:
        run()
        argv = ["table"]
    if argv[:1] == ["table"]:
        write_text(OUT, table())
        print(OUT)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
