#!/usr/bin/env python3
"""Summarize bench/compare.sh's hyperfine exports as markdown tables.

    bench/summarize.py DIR

Start-up is the mean of the 1-step run; the cost per step is the slope
between the 1-step and the N-step runs, (t_N - t_1) / (N - 1), so that
start-up and per-step costs are not mixed up.
"""
import json
import os
import re
import statistics
import sys


def load(d):
    res = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".hf.json"):
            with open(os.path.join(d, f)) as fh:
                for r in json.load(fh)["results"]:
                    res[r["command"]] = r
    return res


def ms(x):
    return x * 1000.0


def fmt(x):
    """Milliseconds, three significant digits."""
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def main():
    d = sys.argv[1]
    res = load(d)
    for f in ("machine.txt", "fsync.txt"):
        if os.path.exists(os.path.join(d, f)):
            with open(os.path.join(d, f)) as fh:
                for line in fh:
                    print(f"    {line.rstrip()}")
    print()

    print("| command | mean ± σ (ms) | min (ms) | max (ms) | user (ms) | sys (ms) | runs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in res.items():
        print(f"| {name} | {fmt(ms(r['mean']))} ± {fmt(ms(r['stddev'] or 0))} | "
              f"{fmt(ms(r['min']))} | {fmt(ms(r['max']))} | {fmt(ms(r['user']))} | "
              f"{fmt(ms(r['system']))} | {len(r['times'])} |")
    print()

    def mean(name):
        r = res.get(name)
        return None if r is None else ms(r["mean"])

    def slope(prefix, unit):
        """(start-up, per step, N) from the commands `prefix, 1 x unit` and
        `prefix, N x unit`."""
        one = mean(f"{prefix}, 1 x {unit}")
        big = [(int(m.group(1)), n) for n in res
               for m in [re.fullmatch(re.escape(prefix) + r", (\d+) x " + re.escape(unit), n)]
               if m and m.group(1) != "1"]
        if one is None or not big:
            return None
        n, name = max(big)
        return one, (mean(name) - one) / (n - 1), n

    rows = []
    s = mean("runbook run --dry-run, 1 step")
    if s is not None:
        rows.append(("start-up: `runbook run --dry-run`, 1 step", f"{fmt(s)} ms", "< 10 ms",
                     "met" if s < 10 else "MISSED"))
    dry = mean("runbook run --dry-run, 10000 steps")
    chk = mean("runbook check, 10000 steps")
    if dry is not None:
        rows.append(("whole process: dry run of 10,000 nodes (journal written)",
                     f"{fmt(dry)} ms", "< 200 ms", "met" if dry < 200 else "MISSED"))
    if dry is not None and chk is not None:
        per = (dry - chk) / 10000 * 1000
        rows.append(("of which compile (`runbook check`, same file)", f"{fmt(chk)} ms", "", ""))
        rows.append(("run minus check, per node", f"{per:.1f} µs", "< 5 µs (in-process: see the criterion bench)", ""))
    proc = slope("runbook run", "run true")
    sh = mean("sh loop, 1000 x /bin/sh -c true")
    shb = mean("sh loop, 1000 x /bin/true")
    rb1000 = mean("runbook run, 1000 x run true")
    paired = None
    if os.path.exists(os.path.join(d, "paired.json")):
        with open(os.path.join(d, "paired.json")) as fh:
            paired = json.load(fh)["times"]
    if paired and len(paired) >= 2:
        # The first command is the sh loop; each other one is a runbook run.
        (sn, st), *runs = list(paired.items())
        for rn, rt in runs:
            ratio = statistics.median(rt) / statistics.median(st)
            if not rn.startswith("runbook run"):
                # A reference (examples/live_step_floor.rs), not a target.
                rows.append((f"{rn} vs the sh loop, alternating, medians of {len(rt)}",
                             f"{fmt(ms(statistics.median(rt)))} / {fmt(ms(statistics.median(st)))} ms "
                             f"= {ratio:.2f}x", "", ""))
                continue
            what = rn.removeprefix("runbook run, 1000 x ")
            rows.append((f"1,000 `{what}` vs sh loop of 1,000 `/bin/sh -c true`, "
                         f"alternating, medians of {len(rt)}",
                         f"{fmt(ms(statistics.median(rt)))} / {fmt(ms(statistics.median(st)))} ms "
                         f"= {ratio:.2f}x", "<= 1.5x", "met" if ratio <= 1.5 else "MISSED"))
    if rb1000 is not None and sh is not None:
        ratio = rb1000 / sh
        rows.append(("the same, hyperfine means (one command after the other)",
                     f"{fmt(rb1000)} / {fmt(sh)} ms = {ratio:.2f}x", "<= 1.5x",
                     "met" if ratio <= 1.5 else "MISSED"))
    if rb1000 is not None and shb is not None:
        rows.append(("1,000 `run \"true\"` vs sh loop of 1,000 `/bin/true`",
                     f"{fmt(rb1000)} / {fmt(shb)} ms = {rb1000 / shb:.2f}x", "", ""))
    t = mean("runbook test runbooks/")
    if t is not None:
        rows.append(("`runbook test runbooks/` (all example drills, whole process)",
                     f"{fmt(t)} ms", "< 1 s", "met" if t < 1000 else "MISSED"))
    t = mean("runbook drill, flagship 10m verify window")
    if t is not None:
        rows.append(("flagship drill, 10-minute verify window expiring (whole process: "
                     "start-up and compile included)", f"{fmt(t)} ms", "< 50 ms",
                     "met" if t < 50 else "MISSED"))
    if os.path.exists(os.path.join(d, "paired.md")):
        with open(os.path.join(d, "paired.md")) as fh:
            print(fh.read())
    if rows:
        print("| figure | measured | target | |")
        print("|---|---:|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        print()

    # Peers: start-up and per-step cost, and the ratios to runbook.
    trivial = [
        ("runbook (dry run: simulated `run`, journal buffered)",
         slope("runbook run --dry-run", "simulated run")),
        ("runbook (live run, `notify` to console, journal fsynced once per step: the notification's start, with the previous outcome)",
         slope("runbook run", "notify console")),
        ("Chaos Toolkit (python action `os.getpid`)", slope("chaos run", "python action")),
        ("Ansible (local, `debug`)", slope("ansible-playbook", "debug")),
    ]
    process = [
        ("runbook (`run \"true\"`, a change: one fsync per step)", proc),
        ("runbook (`run \"true\" readonly`, no fsync per step)", slope("runbook run", "run true readonly")),
        ("Chaos Toolkit (process action `true`)", slope("chaos run", "process true")),
        ("Ansible (local, `command: true`)", slope("ansible-playbook", "command true")),
    ]
    for title, table in (("trivial steps", trivial), ("`true` process steps", process)):
        table = [(n, v) for n, v in table if v is not None]
        bases = [(n, v) for n, v in table if n.startswith("runbook")]
        if not bases:
            continue
        heads = ["start-up (ms)", "per step (ms)", "N"]
        for i, _ in enumerate(bases):
            tag = f" [{chr(ord('a') + i)}]" if len(bases) > 1 else ""
            heads += [f"start-up ÷ runbook{tag}", f"per step ÷ runbook{tag}"]
        print(f"| {title} | " + " | ".join(heads) + " |")
        print("|---|" + "---:|" * len(heads))
        for i, (name, (one, per, n)) in enumerate(table):
            tag = f" [{chr(ord('a') + i)}]" if len(bases) > 1 and i < len(bases) else ""
            cells = [fmt(one), fmt(per), str(n)]
            for _, (b1, bp, _) in bases:
                cells += [f"{one / b1:.1f}x", f"{per / bp:.1f}x" if bp > 0 else "-"]
            print(f"| {name}{tag} | " + " | ".join(cells) + " |")
        print()

if __name__ == "__main__":
    main()
