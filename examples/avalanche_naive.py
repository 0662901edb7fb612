"""Train Avalanche's own `Naive` (plain fine-tuning) on dqcl's domains, without dqcl's runner.

    python examples/avalanche_naive.py

`dqcl.benchmark(spec)` gives the spec's domains as an Avalanche benchmark (one training
experience per domain, a test experience per domain) with the same patches and Cellpose flow
targets a dqcl run uses; `dqcl.network` and `dqcl.loss` are the network and loss; `dqcl.scores`
and `dqcl.evaluator` score with dqcl's metrics. Any other Avalanche strategy (`Replay`, `EWC`,
...) or plugin takes the same arguments. Prints the score matrix R (AP@0.5): row i after training
experience i, column j the test domain j. A toy for a CPU (a tiny network, 24 patches of 48 px and
120 steps per domain: about half a minute on 2 cores); flow targets are cached under .dqcl_cache/
in the working folder.
"""

import torch
from avalanche.training import Naive

import dqcl

SPEC = {  # a spec TOML's tables as a dict; a path to a spec file works too
    "study": {"name": "avalanche_naive", "data_seed": 0},
    "data": {"patch_size": 48, "stride": 48, "diameter": 16},
    "domains": {
        "cyto": {"n_train": 6, "n_test": 2, "size": 200},  # built-in: fluorescent cells, bright on dark
        "histo": {"n_train": 6, "n_test": 2, "size": 200},  # built-in: H&E nuclei, dark on light
    },
    "model": {"widths": [8, 16, 32, 64]},
    "eval": {"niter": 100},
}
ORDERING = ["cyto", "histo"]


def main(seed: int = 0, epochs: int = 40) -> list[list[float]]:
    torch.manual_seed(seed)
    bm = dqcl.benchmark(SPEC, ordering=ORDERING, seed=seed)
    model = dqcl.network(SPEC)
    scores = dqcl.scores(SPEC)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        criterion=dqcl.loss,
        train_mb_size=8,
        train_epochs=epochs,
        eval_mb_size=32,
        evaluator=dqcl.evaluator(scores),
        device="cpu",
    )
    for experience in bm.train_stream:
        strategy.train(experience)
        strategy.eval(bm.test_stream)  # one row of R: every domain, after this experience
    R = scores.R("ap50")
    print("R (AP@0.5): row = after training on, column = test domain")
    print(f"{'':>8}" + "".join(f"{d:>8}" for d in ORDERING))
    for name, row in zip(ORDERING, R):
        print(f"{name:>8}" + "".join(f"{v:8.3f}" for v in row))
    return R


if __name__ == "__main__":
    main()
