#!/usr/bin/env bash
# Issue 26's added claim seeds and issue 27's runs in the background, as two workers of one torch thread each
# (2 cores): the claim seeds in one, the tuning and then the convergence check in the other. Every step is
# resumable (stored runs are skipped, Optuna keeps its trials), so a killed queue is started again as is:
#   DQCL_THREADS=1 nohup bash benchmarks/issue27_queue.sh > issue27.log 2>&1 &
# Commit leaderboard/runs.sqlite, leaderboard/tuning/ and leaderboard/steps_converge.sqlite as they grow.
set -euo pipefail
cd "$(dirname "$0")/.."
export DQCL_THREADS="${DQCL_THREADS:-1}"
dqcl run claims --store leaderboard/runs.sqlite --quiet &
claims=$!
mkdir -p leaderboard/tuning benchmarks/tuned
dqcl tune benchmarks/tuning_budget_baselines.toml --trials 8 --out benchmarks/tuned/budget_baselines.json \
    --store leaderboard/tuning/runs.sqlite
for steps in 250 500 1000; do
    dqcl run benchmark benchmarks/steps_converge.toml --set "train.steps=$steps" --set "study.name=\"steps_converge_$steps\"" \
        --store leaderboard/steps_converge.sqlite --quiet
done
wait "$claims"
