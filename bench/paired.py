#!/usr/bin/env python3
"""Time commands in alternation, so that a machine whose load drifts (other
builds, other benchmarks) affects each command alike.

    bench/paired.py [--rounds R] [--warmup W] [--prepare CMD] [--json OUT] \
        NAME=CMD NAME=CMD ...

Each round runs every command once, in turn (stdout/stderr discarded;
`--prepare` runs before each, untimed). Prints per command the median,
min and mean wall time, and the ratio of each command's median to the
first's, with the spread of the per-round ratios (min..max).
"""
import argparse
import json
import shlex
import statistics
import subprocess
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--prepare")
    ap.add_argument("--json")
    ap.add_argument("commands", nargs="+")
    a = ap.parse_args()
    cmds = []
    for c in a.commands:
        name, _, cmd = c.partition("=")
        cmds.append((name, shlex.split(cmd)))
    times = {n: [] for n, _ in cmds}
    for r in range(a.warmup + a.rounds):
        for name, argv in cmds:
            if a.prepare:
                subprocess.run(a.prepare, shell=True, check=True)
            t0 = time.perf_counter()
            p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                raise SystemExit(f"{name}: exit code {p.returncode}: {argv}")
            if r >= a.warmup:
                times[name].append(dt)
    first = cmds[0][0]
    print(f"| command ({a.rounds} alternating rounds) | median (ms) | min (ms) | mean (ms) "
          f"| median vs {first} | per-round ratio min..max |")
    print("|---|---:|---:|---:|---:|---|")
    for name, _ in cmds:
        t = times[name]
        ratios = [x / y for x, y in zip(t, times[first])]
        print(f"| {name} | {statistics.median(t) * 1000:.1f} | {min(t) * 1000:.1f} | "
              f"{statistics.mean(t) * 1000:.1f} | "
              f"{statistics.median(t) / statistics.median(times[first]):.2f}x | "
              f"{min(ratios):.2f}..{max(ratios):.2f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rounds": a.rounds, "times": times,
                       "commands": {n: c for n, c in cmds}}, f, indent=1)


if __name__ == "__main__":
    main()
