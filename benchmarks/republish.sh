#!/usr/bin/env bash
# Issue 18's republication on generator 2's domains: one memory budget for every rehearsal strategy,
# compute matched, per-seed data, >= 1,000 test objects per domain, 10 seeds for the headline cells,
# claim (c) under one shared rate (budget_claims_replay) and the rate-or-count study. Runs into the
# committed store leaderboard/next/runs.sqlite, then builds leaderboard/next/. Resumable: stored runs are skipped and a killed run resumes from its checkpoint.
# 275 runs of 170-260 s each with two workers on a 2-core CPU: about 7-8 hours. Run it
# in the background:
#   nohup bash benchmarks/republish.sh > republish.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
# one Cellpose for every run of the store: its flow targets differ between 3.x and 4.x (see README)
"$(dirname "$(command -v dqcl)")/python" -c "
import sys
from importlib.metadata import version
v = version('cellpose')
sys.exit(0 if v == '4.2.1.1' else f'republish.sh: the republication runs with Cellpose 4.2.1.1; this environment has {v}')"
mkdir -p leaderboard/next
store=leaderboard/next/runs.sqlite
opts=(--store "$store" --quiet --executor process --workers "${DQCL_WORKERS:-2}")
for spec in budget_baselines budget_claims_replay rate_or_count_rate rate_or_count_count rate_or_count_share budget_baselines_headline; do
    dqcl run benchmark "benchmarks/$spec.toml" "${opts[@]}"
done
dqcl leaderboard build --store "$store" --out leaderboard/next
