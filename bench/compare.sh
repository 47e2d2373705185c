#!/bin/sh
# Whole-process benchmarks of `runbook`, in one run on this machine, with
# hyperfine: start-up, a 10,000-node dry run, 1,000 `true` steps against the
# same loop in plain sh, the example drills, and the same work in
# ansible-playbook (local connection) and Chaos Toolkit (`chaos run`).
# Prints markdown tables (bench/summarize.py).
#
# Live runs fsync the journal before each change (the previous change's
# outcome rides on that fsync: group commit); none per `run ... readonly`
# step. So the per-step cost of steps that change something is largely the
# disk's fdatasync latency, which is measured and printed too (runbook
# overlaps it with the shell's start-up: the shell waits at a gate until the
# start is on disk). The 1,000
# `run "true"` steps are run both ways: as written (a change, one fsync and
# a "no undo" warning, three shown) and declared `readonly`. The binary is $CARGO_TARGET_DIR/release/runbook if that
# is set, else target/release/runbook. The 1,000
# `true` steps are also timed against the sh loop in alternation
# (bench/paired.py), so that a drifting load does not favour either.
#
#   bench/compare.sh                 # everything (builds, creates the venv)
#   RUNS=20 bench/compare.sh         # more runs per command (default 10)
#   NO_PEERS=1 bench/compare.sh      # runbook and sh only
#   NO_BUILD=1 bench/compare.sh      # use target/release/runbook as it is
#
# Files go to $BENCH_DIR (default /tmp/runbook-bench); hyperfine's JSON
# exports stay there (*.hf.json) for a second look.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DIR=${BENCH_DIR:-/tmp/runbook-bench}
VENV=${PEERS_VENV:-/tmp/peers}
RUNS=${RUNS:-10}
SLOW_RUNS=${SLOW_RUNS:-3}
export BENCH_DIR="$DIR" PEERS_VENV="$VENV"

command -v hyperfine >/dev/null || {
  echo "compare: hyperfine is missing (Debian: apt-get install hyperfine)" >&2
  exit 1
}

if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example live_step_floor)
fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
RB="${CARGO_TARGET_DIR:-$ROOT/target}/release/runbook"
# A copy, so that a rebuild in the working tree during the run changes nothing.
mkdir -p "$DIR"
cp "$RB" "$DIR/runbook"
cp "$(dirname "$RB")/examples/live_step_floor" "$DIR/live_step_floor"
RB="$DIR/runbook"
FLOOR="$DIR/live_step_floor"

gen() { python3 "$HERE/generate.py" "$DIR" "$@" >/dev/null; }
gen runbook dry 1
gen runbook dry 10000
gen runbook trivial 1
gen runbook trivial "${RB_LIVE_TRIVIAL:-200}"
gen runbook true 1
gen runbook true 1000
gen runbook readtrue 1
gen runbook readtrue 1000
gen sh true 1000
gen sh bintrue 1000

if [ "${NO_PEERS:-0}" != 1 ]; then
  "$HERE/peers.sh"
fi

RUNS_DIR="$DIR/runs"
CLEAN="rm -rf $RUNS_DIR"

hf() { # name runs warmup cmd...
  name=$1 runs=$2 warmup=$3
  shift 3
  echo "== $name" >&2
  hyperfine --shell=none --style basic --prepare "$CLEAN" --runs "$runs" \
    --warmup "$warmup" --export-json "$DIR/$name.hf.json" "$@" >&2
}

rb() { echo "$RB $*"; }

# 1. Start-up and the 10,000-node dry run (compile alone: `check`).
hf engine "$RUNS" 3 \
  -n "runbook --version" "$(rb --version)" \
  -n "runbook run --dry-run, 1 step" "$(rb run "$DIR/runbook-dry-1.runbook" --dry-run --runs-dir "$RUNS_DIR")" \
  -n "runbook check, 10000 steps" "$(rb check "$DIR/runbook-dry-10000.runbook")" \
  -n "runbook run --dry-run, 10000 steps" "$(rb run "$DIR/runbook-dry-10000.runbook" --dry-run --runs-dir "$RUNS_DIR")" \
  -n "runbook run --dry-run --output json, 10000 steps" "$(rb run "$DIR/runbook-dry-10000.runbook" --dry-run --output json --runs-dir "$RUNS_DIR")"

# 2. 1,000 `true` processes: runbook against plain sh.
hf process "$RUNS" 2 \
  -n "runbook run, 1 x run true" "$(rb run "$DIR/runbook-true-1.runbook" --runs-dir "$RUNS_DIR")" \
  -n "runbook run, 1000 x run true" "$(rb run "$DIR/runbook-true-1000.runbook" --runs-dir "$RUNS_DIR")" \
  -n "runbook run, 1 x run true readonly" "$(rb run "$DIR/runbook-readtrue-1.runbook" --runs-dir "$RUNS_DIR")" \
  -n "runbook run, 1000 x run true readonly" "$(rb run "$DIR/runbook-readtrue-1000.runbook" --runs-dir "$RUNS_DIR")" \
  -n "sh loop, 1000 x /bin/sh -c true" "/bin/sh $DIR/sh-true-1000.sh" \
  -n "sh loop, 1000 x /bin/true" "/bin/sh $DIR/sh-bintrue-1000.sh"

# 3. Trivial steps (nothing outside the engine): in a dry run (the journal
# buffered) and in a live run (`notify` to the console; journal fsynced).
hf trivial "$RUNS" 2 \
  -n "runbook run --dry-run, 1 x simulated run" "$(rb run "$DIR/runbook-dry-1.runbook" --dry-run --runs-dir "$RUNS_DIR")" \
  -n "runbook run --dry-run, 10000 x simulated run" "$(rb run "$DIR/runbook-dry-10000.runbook" --dry-run --runs-dir "$RUNS_DIR")" \
  -n "runbook run, 1 x notify console" "$(rb run "$DIR/runbook-trivial-1.runbook" --runs-dir "$RUNS_DIR")" \
  -n "runbook run, ${RB_LIVE_TRIVIAL:-200} x notify console" "$(rb run "$DIR/runbook-trivial-${RB_LIVE_TRIVIAL:-200}.runbook" --runs-dir "$RUNS_DIR")"

# 4. Drills (issue 4): every example drill, and the flagship's 10-minute
# verify window that expires.
hf drills "$RUNS" 2 \
  -n "runbook test runbooks/" "$(rb test "$ROOT/runbooks/")" \
  -n "runbook drill, flagship 10m verify window" "$(rb drill "$ROOT/runbooks/api_config_rollback.runbook" --scenario "$ROOT/runbooks/api_config_rollback.undo_fails.drill.yaml")"

# 5. The 1,000 `true` steps against the sh loop, in alternation, with the
# floor under them: a bare tokio loop doing only the spawn and the journal
# lines (examples/live_step_floor.rs), with runbook's gated fsync and with
# none.
echo "== paired" >&2
mkdir -p "$RUNS_DIR"
python3 "$HERE/paired.py" --rounds "${PAIRED_ROUNDS:-10}" --prepare "$CLEAN; mkdir -p $RUNS_DIR" \
  --json "$DIR/paired.json" \
  "sh loop, 1000 x /bin/sh -c true=/bin/sh $DIR/sh-true-1000.sh" \
  "runbook run, 1000 x run true=$(rb run "$DIR/runbook-true-1000.runbook" --runs-dir "$RUNS_DIR")" \
  "runbook run, 1000 x run true readonly=$(rb run "$DIR/runbook-readtrue-1000.runbook" --runs-dir "$RUNS_DIR")" \
  "floor: bare tokio loop, 1000 steps, gated fsync=$FLOOR 1000 gate $RUNS_DIR/floor.jsonl" \
  "floor: bare tokio loop, 1000 steps, no fsync=$FLOOR 1000 none $RUNS_DIR/floor.jsonl" \
  > "$DIR/paired.md"

# 6. The disk's fdatasync latency, where the journals are written.
mkdir -p "$RUNS_DIR"
python3 - "$RUNS_DIR" > "$DIR/fsync.txt" <<'PY'
import os, statistics, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
t = []
for _ in range(200):
    os.write(fd, b"x" * 400 + b"\n")
    t0 = time.perf_counter()
    os.fdatasync(fd)
    t.append(time.perf_counter() - t0)
os.close(fd)
os.unlink(path)
t.sort()
print(f"fdatasync of a 400-byte append, 200 times: median {statistics.median(t) * 1e3:.2f} ms, "
      f"p10 {t[20] * 1e3:.2f} ms, p90 {t[180] * 1e3:.2f} ms")
PY

if [ "${NO_PEERS:-0}" != 1 ]; then
  CHAOS="$VENV/bin/chaos --no-version-check --no-log-file run --journal-path $DIR/chaos-journal.json"
  ANSIBLE="$VENV/bin/ansible-playbook -i $DIR/inventory.ini"
  hf chaos "$RUNS" 1 \
    -n "chaos run, 1 x python action" "$CHAOS $DIR/chaos-trivial-1.json" \
    -n "chaos run, 1000 x python action" "$CHAOS $DIR/chaos-trivial-1000.json" \
    -n "chaos run, 1 x process true" "$CHAOS $DIR/chaos-true-1.json" \
    -n "chaos run, 1000 x process true" "$CHAOS $DIR/chaos-true-1000.json"
  hf ansible "$SLOW_RUNS" 1 \
    -n "ansible-playbook, 1 x debug" "$ANSIBLE $DIR/ansible-trivial-1.yml" \
    -n "ansible-playbook, ${ANSIBLE_TRIVIAL:-200} x debug" "$ANSIBLE $DIR/ansible-trivial-${ANSIBLE_TRIVIAL:-200}.yml" \
    -n "ansible-playbook, 1 x command true" "$ANSIBLE $DIR/ansible-true-1.yml" \
    -n "ansible-playbook, ${ANSIBLE_TRUE:-20} x command true" "$ANSIBLE $DIR/ansible-true-${ANSIBLE_TRUE:-20}.yml"
fi
rm -rf "$RUNS_DIR"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
  echo "runbook: $($RB --version) ($(cd "$ROOT" && git rev-parse --short HEAD)); $(hyperfine --version); $(/bin/sh -c 'readlink -f /bin/sh')"
  if [ "${NO_PEERS:-0}" != 1 ]; then
    echo "peers: $("$VENV/bin/ansible-playbook" --version 2>/dev/null | sed -n 1p); chaostoolkit $("$VENV/bin/chaos" --version 2>&1 | awk '{print $NF}'); $("$VENV/bin/python" --version)"
  fi
} > "$DIR/machine.txt"
python3 "$HERE/summarize.py" "$DIR"
