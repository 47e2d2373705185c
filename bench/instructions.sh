#!/usr/bin/env bash
# Instructions executed (callgrind's Ir, whole process: loading and
# relocating the binary included) by the release binary's start-up, its
# `check` of the compile benchmark's files and a dry run of 10,000 steps,
# for several builds side by side. Instruction counts do not depend on the
# load of the machine, so builds a few percent apart can be compared on 2
# cores shared with other work (CPU time cannot; bench/cpu-before-after.sh
# measures that). Prints a Markdown table, one column per binary.
#
#   bench/instructions.sh INPUT_DIR BIN...
#
# INPUT_DIR holds lines-300.runbook and steps-1000.runbook
# (benches/support/generate.rs, as `cargo bench --bench compile` writes them
# to target/compile-bench/) and runbook-dry-10000.runbook
# (`bench/generate.py DIR runbook dry 10000`). Needs valgrind.
set -euo pipefail
dir=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ir() { # prints the instructions of `$@`
  valgrind --tool=callgrind --callgrind-out-file="$work/out" "$@" 2>&1 >/dev/null |
    awk '/Collected :/ {print $NF}'
}

cases=(
  "--version"
  "check $dir/lines-300.runbook"
  "check $dir/steps-1000.runbook"
  "run $dir/runbook-dry-10000.runbook --dry-run --runs-dir $work/runs"
)
printf '| case |'
for b in "$@"; do printf ' %s |' "$b"; done
printf '\n|---|'
for _ in "$@"; do printf -- '---:|'; done
printf '\n'
for c in "${cases[@]}"; do
  label=${c//$dir\//}
  printf '| `%s` |' "${label//$work\//}"
  for b in "$@"; do
    # shellcheck disable=SC2086 # the case is a word list on purpose
    printf ' %s |' "$(ir "$b" $c | sed -E ':a;s/([0-9])([0-9]{3})($|,)/\1,\2\3/;ta')"
  done
  printf '\n'
done
