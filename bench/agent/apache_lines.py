"""Apache combined log lines for bench/agent/run.sh.

    apache_lines.py file PATH LINES            write LINES lines to PATH
    apache_lines.py steady PATH RATE SECONDS   append RATE lines/s to PATH for SECONDS,
                                               100-line writes on a 10 ms grid; prints
                                               {"lines": N, "lines_per_s": R}

The lines are deterministic (seeded) and every one matches COMBINEDAPACHELOG, so LOGTOJSON
converts every line (none is skipped).
"""

import json
import os
import random
import sys
import time

PATHS = ["/", "/index.html", "/api/v1/orders", "/static/app.js", "/images/logo.png", "/login"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "curl/8.5.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Gecko/20100101 Firefox/121.0",
]


def line(rng, n):
    return '%d.%d.%d.%d - user%d [10/Oct/2026:13:%02d:%02d -0700] "GET %s?id=%d HTTP/1.1" %d %d "https://example.com/ref/%d" "%s"\n' % (
        rng.randrange(1, 255), rng.randrange(256), rng.randrange(256), rng.randrange(256),
        n % 1000, (n // 60) % 60, n % 60, rng.choice(PATHS), n, rng.choice([200, 200, 304, 404]),
        rng.randrange(100, 90000), n % 977, rng.choice(AGENTS))


def write_file(path, count):
    rng = random.Random(7)
    with open(path, "w") as f:
        for start in range(0, count, 10000):
            f.write("".join(line(rng, n) for n in range(start, min(count, start + 10000))))


def steady(path, rate, seconds):
    rng = random.Random(11)
    per_tick = rate // 100
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    start = time.monotonic()
    n = 0
    tick = 0
    while tick < seconds * 100:
        tick += 1
        os.write(fd, "".join(line(rng, n + i) for i in range(per_tick)).encode())
        n += per_tick
        delay = start + tick / 100 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    os.close(fd)
    print(json.dumps({"lines": n, "lines_per_s": n / (time.monotonic() - start)}))


if __name__ == "__main__":
    if sys.argv[1] == "file":
        write_file(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "steady":
        steady(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
