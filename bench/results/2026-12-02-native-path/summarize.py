#!/usr/bin/env python3
"""Tables of rounds.sh's result lines: per round each variant's MB/s, its ratio to Iggy with
fsync and to the first Sluice variant (main) of the same round, sluiced CPU s per GB, and the
medians of the paired ratios.

    summarize.py ROUNDS.TXT [ROUNDS.TXT ...]   (rounds of several files are numbered on)
"""
import re
import statistics
import sys

rounds, order = [], []
for path in sys.argv[1:]:
    current = {}
    for line in open(path):
        m = re.match(r"(\S+) (\d+) (\S+) load=(\S+) mb_per_s=([0-9.]+).*?seconds=([0-9.]+).*server_cpu_s=([0-9.]+)", line)
        if not m:
            continue
        name, index = m.group(1), int(m.group(2))
        if name not in order:
            order.append(name)
        mbs, secs, cpu = float(m.group(5)), float(m.group(6)), float(m.group(7))
        current.setdefault(index, {})[name] = (mbs, cpu / (mbs * secs / 1e3), float(m.group(4)), m.group(3))
    rounds += [current[i] for i in sorted(current)]

iggy, variants = order[0], order[1:]
base = variants[0]
print("| round | " + " | ".join(f"{v} MB/s" for v in order) + " | "
      + " | ".join(f"{v} / Iggy" for v in variants) + " | "
      + " | ".join(f"{v} / {base}" for v in variants[1:]) + " | load (first, last) |")
print("|" + "---|" * (1 + len(order) + len(variants) + len(variants) - 1 + 1))
to_iggy = {v: [] for v in variants}
to_base = {v: [] for v in variants[1:]}
cpu = {v: [] for v in order}
for n, r in enumerate(rounds, 1):
    if not all(v in r for v in order):
        continue
    cells = [f"{r[v][0]:.1f}" for v in order]
    for v in variants:
        to_iggy[v].append(r[v][0] / r[iggy][0])
    for v in variants[1:]:
        to_base[v].append(r[v][0] / r[base][0])
    for v in order:
        cpu[v].append(r[v][1])
    cells += [f"{to_iggy[v][-1]:.2f}" for v in variants] + [f"{to_base[v][-1]:.2f}" for v in variants[1:]]
    print(f"| {n} | " + " | ".join(cells) + f" | {r[iggy][2]}, {r[variants[-1]][2]} |")
print()
print(f"{len(to_iggy[base])} rounds; medians of the paired ratios:")
for v in variants:
    line = f"  {v}: / Iggy with fsync {statistics.median(to_iggy[v]):.2f}"
    if v in to_base:
        line += f", / {base} {statistics.median(to_base[v]):.2f}"
    print(line + f"; MB/s median {statistics.median(r[v][0] for r in rounds if v in r):.1f}")
print(f"  {iggy}: MB/s median {statistics.median(r[iggy][0] for r in rounds if iggy in r):.1f}")
print("server CPU s per GB of record data, median: "
      + ", ".join(f"{v} {statistics.median(cpu[v]):.2f}" for v in order))
