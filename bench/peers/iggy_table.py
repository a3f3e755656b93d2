#!/usr/bin/env python3
"""The table of bench/peers/iggy.sh, from its result lines.

    iggy_table.py RESULTS [MARKDOWN]

RESULTS has one line per run, `<system> <round> key=value ...`, system one of sluice,
iggy-fsync, iggy-nofsync; mb_per_s is message or record data (1,024 B each) over the run's
time on both sides. Ratios are Sluice / Iggy within each round, then the median over rounds.
"""

import statistics
import sys

LABELS = {
    "iggy-fsync": "Apache Iggy, pinned-producer 4 × 500 × 1 KiB, fsync every write",
    "iggy-nofsync": "Apache Iggy, same load, no fsync (page cache)",
}


def parse(path):
    rows = {}
    for line in open(path):
        name, round_, *fields = line.split()
        rows.setdefault(name, {})[int(round_)] = {k: float(v) for k, v in (f.split("=") for f in fields)}
    return rows


def per_gb(runs, key):
    """CPU seconds per GB of data: what the work costs, whatever else ran meanwhile."""
    return statistics.median(r[key] / (r["mb_per_s"] * r["seconds"] / 1e3) for r in runs.values())


def main():
    rows = parse(sys.argv[1])
    sluice = rows["sluice"]

    def mbs(name):
        return [rows[name][r]["mb_per_s"] for r in sorted(rows[name])]

    lines = [
        "| system | MB/s per round | median MB/s | Sluice / it, paired ratios | median of paired ratios "
        "| server CPU s per GB | client CPU s per GB | iggy-bench's own figure, median |",
        "|---|---|---|---|---|---|---|---|",
        f"| Sluice `sluiced --limits unlimited`, put-throughput 4 × 8 in flight × 500 × 1 KiB, fdatasync before ack "
        f"| {', '.join(f'{x:.0f}' for x in mbs('sluice'))} | {statistics.median(mbs('sluice')):.0f} | | "
        f"| {per_gb(sluice, 'server_cpu_s'):.2f} | {per_gb(sluice, 'client_cpu_s'):.2f} | |",
    ]
    for name, label in LABELS.items():
        if name not in rows:
            continue
        rounds = [r for r in sorted(rows[name]) if r in sluice]
        ratios = [sluice[r]["mb_per_s"] / rows[name][r]["mb_per_s"] for r in rounds]
        reported = statistics.median(r["iggy_reported_mb_per_s"] for r in rows[name].values())
        lines.append(
            f"| {label} | {', '.join(f'{x:.0f}' for x in mbs(name))} | {statistics.median(mbs(name)):.0f} "
            f"| {', '.join(f'{x:.2f}' for x in ratios)} | **{statistics.median(ratios):.2f}×** "
            f"| {per_gb(rows[name], 'server_cpu_s'):.2f} | {per_gb(rows[name], 'client_cpu_s'):.2f} | {reported:.0f} |"
        )
    failed = sum(r["failed_records"] for r in sluice.values())
    if failed:
        lines.append(f"\nSluice refused {failed:.0f} records: the runs are not comparable.")
    lines += [
        "",
        "MB/s: message or record data (1,024 B each) over the time until the last producer was done,",
        "on both sides; iggy-bench's own \"Total throughput\" adds up each producer's rate over its own",
        "time and reads higher when producers finish apart. Sluice acknowledges after fdatasync of its",
        "journal (group commit); Iggy with enforce_fsync fsyncs every batch before answering.",
    ]
    text = "\n".join(lines)
    print(text)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
