#!/bin/sh
# Peers for the side-by-side benchmark: a throwaway virtualenv with
# ansible-core and chaostoolkit from PyPI, and the same work generated for
# each (N trivial steps, N `true` process steps).
#
#   bench/peers.sh            # venv in $PEERS_VENV (default /tmp/peers),
#                             # files in $BENCH_DIR (default /tmp/runbook-bench)
#   PEERS_FRESH=1 bench/peers.sh   # delete and recreate the venv first
#
# Sizes ($ANSIBLE_TRIVIAL etc., below) are kept small where a peer is slow:
# each size pair gives a start-up (1 step) and a per-step slope.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${PEERS_VENV:-/tmp/peers}
DIR=${BENCH_DIR:-/tmp/runbook-bench}
PY=${PYTHON:-python3}

if [ "${PEERS_FRESH:-0}" = 1 ]; then
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/ansible-playbook" ] || [ ! -x "$VENV/bin/chaos" ]; then
  echo "peers: creating $VENV (ansible-core, chaostoolkit from PyPI)" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check ansible-core chaostoolkit
fi
"$VENV/bin/pip" list --disable-pip-version-check 2>/dev/null \
  | grep -Ei '^(ansible-core|chaostoolkit|chaostoolkit-lib) ' >&2 || true

mkdir -p "$DIR"
# Sizes: 1 step (start-up) and a larger N (slope). Ansible's `command`
# spawns a Python module process per task (~0.3 s), hence its small N.
for n in 1 ${ANSIBLE_TRIVIAL:-200}; do "$PY" "$HERE/generate.py" "$DIR" ansible trivial "$n" >/dev/null; done
for n in 1 ${ANSIBLE_TRUE:-20};     do "$PY" "$HERE/generate.py" "$DIR" ansible true "$n" >/dev/null; done
for n in 1 ${CHAOS_TRIVIAL:-1000};  do "$PY" "$HERE/generate.py" "$DIR" chaos trivial "$n" >/dev/null; done
for n in 1 ${CHAOS_TRUE:-1000};     do "$PY" "$HERE/generate.py" "$DIR" chaos true "$n" >/dev/null; done

# A local inventory so that ansible-playbook does not warn or look elsewhere.
printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' \
  "$VENV/bin/python" > "$DIR/inventory.ini"
echo "peers: ready in $DIR" >&2
