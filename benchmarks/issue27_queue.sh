#!/usr/bin/env bash
# Issue 27's runs in the background, as two workers of one torch thread each (2 cores). Every step is resumable
# (stored runs are skipped, Optuna keeps its trials), so a killed queue is started again as is:
#   nohup bash benchmarks/issue27_queue.sh > issue27.log 2>&1 &
# Commit leaderboard/tuning/, leaderboard/steps_converge.sqlite and the republication's store as they grow.
#
# 1. The tuning's last strategies, A-GEM and GEM, one worker each, then the whole tuning file,
#    benchmarks/tuned/budget_baselines.json. All done 2026-12-08: this step now finds every budget spent and
#    rewrites the committed file byte for byte.
# 2. The republication (budget_tuned): benchmarks/budget_tuned*.toml, committed with the tuning file before
#    their first run; the step refuses to start on a spec or tuning file not committed as it is.
# (The convergence check, steps_converge_250/500/1000, is done: leaderboard/steps_converge.md.)
# 3. Its 2,000-step extension; 4. issue 28's ordering study (orderings.toml). Both resumable as the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
export DQCL_THREADS="${DQCL_THREADS:-1}"
spec=benchmarks/tuning_budget_baselines.toml
tuning=(--trials 8 --store leaderboard/tuning/runs.sqlite --quiet)
part="$(mktemp -d)"
dqcl tune "$spec" "${tuning[@]}" --strategy agem --out "$part/agem.json" &
first=$!
dqcl tune "$spec" "${tuning[@]}" --strategy gem --out "$part/gem.json"
wait "$first"
dqcl tune "$spec" "${tuning[@]}" --out benchmarks/tuned/budget_baselines.json
specs=(benchmarks/budget_tuned.toml benchmarks/budget_tuned_headline.toml benchmarks/budget_tuned_sweep.toml)
for s in "${specs[@]}" benchmarks/tuned/budget_baselines.json; do
    if ! git ls-files --error-unmatch "$s" >/dev/null 2>&1 || ! git diff --quiet HEAD -- "$s"; then
        echo "issue27_queue: $s is not committed as it is; commit the republication's specs and tuning file before their runs" >&2
        exit 2
    fi
done
for s in "${specs[@]}"; do
    dqcl run benchmark "$s" --store leaderboard/runs.sqlite --executor process --workers 2 --quiet
done
# 3. The convergence check's extension, fixed in benchmarks/steps_converge.toml before its runs: 2,000 steps
#    (12 runs, about 2 h); steps_check then judges 1,000 against 2,000 (rewrite leaderboard/steps_converge.md from it).
committed() {  # every file named is tracked and as committed, or the queue stops before their runs
    local f
    for f in "$@"; do
        if ! git ls-files --error-unmatch "$f" >/dev/null 2>&1 || ! git diff --quiet HEAD -- "$f"; then
            echo "issue27_queue: $f is not committed as it is; commit it before its runs" >&2
            exit 2
        fi
    done
}
committed benchmarks/steps_converge.toml
dqcl run benchmark benchmarks/steps_converge.toml --set train.steps=2000 --set 'study.name="steps_converge_2000"' \
    --store leaderboard/steps_converge.sqlite --executor process --workers 2 --quiet
"$(dirname "$(command -v dqcl)")/python" benchmarks/steps_check.py --converge leaderboard/steps_converge.sqlite || true  # into the log
# 4. Issue 28's ordering study at the tuned protocol (144 runs, about 13 h), committed before its first run.
committed benchmarks/orderings.toml benchmarks/claims/generalist_first.toml benchmarks/tuned/budget_baselines.json
dqcl run benchmark benchmarks/orderings.toml --store leaderboard/runs.sqlite --executor process --workers 2 --quiet
