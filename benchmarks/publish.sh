#!/usr/bin/env bash
# Runs every published CPU study into the committed store leaderboard/runs.sqlite, then rebuilds
# leaderboard/: every strategy at one memory budget with compute matched (budget_baselines, 10 seeds for
# the headline strategies), the paper's replay claim under one shared rate (budget_claims_replay), the
# rate-or-count study and its factorial follow-up (replay_threshold) and the redundancy study, with per-seed data and >= 1,000 test objects per domain;
# then budget_baselines republished under the tuned protocol (budget_tuned, with its budget sweep) and the
# four-domain ordering study (orderings).
# Resumable: stored runs are skipped and a killed run resumes from its checkpoint. `dqcl run claims` makes 508 runs
# (388, about 8 hours from an empty store with two workers on a 2-core CPU, and issue 26's 120 added seeds),
# the republication 245 and the ordering study 144 (about 16-17 and 13 hours more, estimated in their specs'
# headers). Run it in the background:
#   nohup bash benchmarks/publish.sh > publish.log 2>&1 &
# The studies published before (dqcl 0.3, Cellpose 3.1.1.3, generator 1) are kept in leaderboard/archive/.
set -euo pipefail
cd "$(dirname "$0")/.."
# one Cellpose for every run of the store: its flow targets differ between 3.x and 4.x (see README)
"$(dirname "$(command -v dqcl)")/python" -c "
import sys
from importlib.metadata import version
v = version('cellpose')
sys.exit(0 if v == '4.2.1.1' else f'publish.sh: the published store holds runs of Cellpose 4.2.1.1; this environment has {v}')"
store=leaderboard/runs.sqlite
opts=(--store "$store" --quiet --executor process --workers "${DQCL_WORKERS:-2}")
# every study the Claims section reads, budget_baselines (all strategies) among them
dqcl run claims "${opts[@]}"
# issue 27's republication under the tuned protocol (every strategy at its tuned values, 1,000 steps, cosine,
# the budget sweep): 245 runs, about 16-17 hours with two workers; read by no claim
# then issue 28's four-domain ordering study at that protocol (144 runs, about 13 hours with two workers)
for spec in benchmarks/budget_tuned.toml benchmarks/budget_tuned_headline.toml benchmarks/budget_tuned_sweep.toml \
            benchmarks/orderings.toml; do
    dqcl run benchmark "$spec" "${opts[@]}"
done
# with the tuning grid behind budget_tuned's values (every trial, the chosen ones marked)
dqcl leaderboard build --store "$store" --out leaderboard --tuned benchmarks/tuned/budget_baselines.json
