#!/usr/bin/env bash
# CPU time (perf stat task-clock, ms, mean of -r N runs) of the release
# binary's whole process, for two builds alternately, so that load from
# other work on the machine falls on both alike. Wall time is not reported:
# on a shared machine it mostly measures the other work.
#
#   bench/cpu-before-after.sh BEFORE_BIN AFTER_BIN INPUT_DIR [ROUNDS] [N]
#
# INPUT_DIR holds steps-1000.runbook, steps-10000.runbook, lines-300.runbook
# (benches/support/generate.rs, as `cargo bench --bench compile` writes them
# to target/compile-bench/) and runbook-dry-{1,10000}.runbook
# (`bench/generate.py DIR runbook dry N`). The dry run of 10,000 steps less
# the `check` of the same file is the engine's share of it.
set -euo pipefail
before=$1 after=$2 dir=$3 rounds=${4:-3} n=${5:-20}
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

cpu_ms() { # prints the mean task-clock in ms of `$@`, run $n times
  perf stat -x, -e task-clock -r "$n" "$@" 2>&1 >/dev/null | awk -F, '/task-clock/ {print $1}'
}

cases=(
  "--version"
  "check $dir/lines-300.runbook"
  "check $dir/steps-1000.runbook"
  "check $dir/steps-10000.runbook"
  "check $dir/runbook-dry-10000.runbook"
  "run $dir/runbook-dry-1.runbook --dry-run --runs-dir $runs"
  "run $dir/runbook-dry-10000.runbook --dry-run --runs-dir $runs"
)
printf 'round\tbinary\tcase\ttask-clock ms\n'
for ((r = 1; r <= rounds; r++)); do
  for c in "${cases[@]}"; do
    for b in before after; do
      bin=$before; [[ $b == after ]] && bin=$after
      # shellcheck disable=SC2086 # the case is a word list on purpose
      printf '%s\t%s\t%s\t%s\n' "$r" "$b" "${c/$dir\//}" "$(cpu_ms "$bin" $c)"
    done
  done
done
