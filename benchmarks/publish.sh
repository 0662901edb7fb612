#!/usr/bin/env bash
# Runs every published CPU study into the committed store leaderboard/runs.sqlite, then rebuilds
# leaderboard/. Resumable: stored runs are skipped and a killed run resumes from its checkpoint.
# About 4 hours on a 2-core CPU (two worker processes); run it in the background:
#   nohup bash benchmarks/publish.sh > publish.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
store=leaderboard/runs.sqlite
opts=(--store "$store" --quiet --executor process --workers "${DQCL_WORKERS:-2}")
for spec in baselines baselines_headline; do
    dqcl run benchmark "benchmarks/$spec.toml" "${opts[@]}"
done
dqcl run claims "${opts[@]}"
dqcl leaderboard build --store "$store" --out leaderboard
