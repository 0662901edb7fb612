"""Compare strategies from a published leaderboard (or your own results store) with pandas.

    python examples/compare_strategies.py                      # leaderboard/leaderboard.json
    python examples/compare_strategies.py results/dqcl.sqlite  # your own runs

Prints, per study and ordering, each strategy's mean ACC and forgetting (AP@0.5) over seeds,
and its ACC difference to naive fine-tuning paired by seed.
"""

import sys
from pathlib import Path

import dqcl

source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "leaderboard" / "leaderboard.json"
df = dqcl.load_results(source)
ap = df[(df.metric == "ap50") & df.selector.isna()]

table = ap.groupby(["study", "ordering", "strategy"]).agg(
    n=("seed", "nunique"), acc=("acc", "mean"), acc_std=("acc", "std"), forgetting=("forgetting", "mean")
)
naive = ap[ap.strategy == "naive"].set_index(["study", "ordering", "seed"])["acc"]
paired = ap.join(naive.rename("naive_acc"), on=["study", "ordering", "seed"])
table["acc_minus_naive"] = (paired.acc - paired.naive_acc).groupby([paired.study, paired.ordering, paired.strategy]).mean()
print(table.round(3).sort_values(["study", "ordering", "acc"], ascending=[True, True, False]).to_string())
