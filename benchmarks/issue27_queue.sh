#!/usr/bin/env bash
# Issue 26's added claim seeds and issue 27's runs in the background, as two workers of one torch thread each
# (2 cores): one runs the claim seeds, then the convergence check (naive and joint at 250, 500 and 1,000
# steps); the other the tuning. Every step is resumable (stored runs are skipped, Optuna keeps its trials),
# so a killed queue is started again as is:
#   nohup bash benchmarks/issue27_queue.sh > issue27.log 2>&1 &
# Commit leaderboard/runs.sqlite, leaderboard/tuning/ and leaderboard/steps_converge.sqlite as they grow.
set -euo pipefail
cd "$(dirname "$0")/.."
export DQCL_THREADS="${DQCL_THREADS:-1}"
(
    dqcl run claims --store leaderboard/runs.sqlite --quiet
    for steps in 250 500 1000; do
        dqcl run benchmark benchmarks/steps_converge.toml --set "train.steps=$steps" --set "study.name=\"steps_converge_$steps\"" \
            --store leaderboard/steps_converge.sqlite --quiet
    done
) &
first=$!
mkdir -p leaderboard/tuning benchmarks/tuned
dqcl tune benchmarks/tuning_budget_baselines.toml --trials 8 --out benchmarks/tuned/budget_baselines.json \
    --store leaderboard/tuning/runs.sqlite
wait "$first"
