#!/usr/bin/env bash
# Issue 26's added claim seeds, then issue 27's runs, one after another, in the background; every step is
# resumable (stored runs are skipped, Optuna keeps its trials), so a killed queue is started again as is:
#   nohup bash benchmarks/issue27_queue.sh > issue27.log 2>&1 &
# Commit leaderboard/runs.sqlite, leaderboard/tuning/ and leaderboard/steps_converge.sqlite as they grow.
set -euo pipefail
cd "$(dirname "$0")/.."
dqcl run claims --store leaderboard/runs.sqlite --quiet
mkdir -p leaderboard/tuning benchmarks/tuned
dqcl tune benchmarks/tuning_budget_baselines.toml --trials 8 --out benchmarks/tuned/budget_baselines.json \
    --store leaderboard/tuning/runs.sqlite
for steps in 250 500 1000; do
    dqcl run benchmark benchmarks/steps_converge.toml --set "train.steps=$steps" --set "study.name=\"steps_converge_$steps\"" \
        --store leaderboard/steps_converge.sqlite --quiet
done
