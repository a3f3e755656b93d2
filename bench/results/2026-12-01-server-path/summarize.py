import re, sys, statistics
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"pair (\d+) (A|B) \S+ load (\S+) server_cpu_s=([0-9.]+) .*?([0-9.]+) records/s.*, ([0-9.]+) s$", line.strip())
    if m:
        rate, secs, cpu = float(m.group(5)), float(m.group(6)), float(m.group(4))
        rows.setdefault(int(m.group(1)), {})[m.group(2)] = (rate * 1024 / 1e6, cpu / (rate * 1024 * secs / 1e9), float(m.group(3)))
print("| pair | A MB/s | B MB/s | B/A | A sluiced CPU s/GB | B sluiced CPU s/GB | B/A CPU per GB | load (A, B) |")
print("|---|---|---|---|---|---|---|---|")
r, c = [], []
for i, p in sorted(rows.items()):
    if "A" in p and "B" in p:
        r.append(p["B"][0] / p["A"][0]); c.append(p["B"][1] / p["A"][1])
        print(f"| {i} | {p['A'][0]:.1f} | {p['B'][0]:.1f} | {r[-1]:.2f} | {p['A'][1]:.2f} | {p['B'][1]:.2f} | {c[-1]:.2f} | {p['A'][2]}, {p['B'][2]} |")
print(f"\nmedian of paired ratios B/A: throughput {statistics.median(r):.2f}, sluiced CPU s per GB {statistics.median(c):.2f}")
