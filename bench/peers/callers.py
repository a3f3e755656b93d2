#!/usr/bin/env python3
"""Top symbols by self time from `perf script` output, each with the Sluice code that called it.

    perf script --no-inline -i perf.data -F comm,tid,period,ip,sym,dso | bench/peers/callers.py [TOP]

For each of the TOP (10) symbols with the most samples: its share of all samples, and the
nearest frame of Sluice's own code (a function of a `sluice_*` crate) on the stacks that ended
in it, with the share of the symbol's samples each such caller holds: "memmove 14%, 8% of it
from BatchWriter::push_record" says which copy to remove. Frames of glommio, std and libc in
between are skipped; a stack with no Sluice frame names its leaf's direct caller instead.
`--no-inline` keeps `perf script` fast (resolving inlined frames takes it minutes); functions
inlined into their callers are then attributed to those.
"""

import collections
import re
import sys

# `perf script` prints a sample's header, then one frame a line, then a blank line.
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(?P<sym>.+?)\s+\((?P<dso>[^()]*)\)\s*$")
CALLERS_SHOWN = 4


def short(symbol):
    """Drop the offset and generic noise so that one function is one name."""
    symbol = re.sub(r"\+0x[0-9a-f]+$", "", symbol)
    symbol = symbol.replace(" (inlined)", "")
    return symbol


def samples(lines):
    frames = []
    for line in lines:
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        match = FRAME.match(line)
        if match:
            frames.append(short(match.group("sym")))
    if frames:
        yield frames


def main():
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    total = 0
    selves = collections.Counter()
    callers = collections.defaultdict(collections.Counter)
    for frames in samples(sys.stdin):
        total += 1
        leaf = frames[0]
        selves[leaf] += 1
        caller = next((f for f in frames[1:] if "sluice_" in f and f != leaf), None)
        if caller is None:
            # Inlined into a glommio task or called by the kernel: name the nearest frame.
            caller = f"(no sluice frame; {frames[1] if len(frames) > 1 else 'no caller'})"
        callers[leaf][caller] += 1
    if not total:
        raise SystemExit("no samples with call stacks in the input")
    print(f"{total} samples")
    for rank, (symbol, count) in enumerate(selves.most_common(top), 1):
        print(f"{rank:2}. {100 * count / total:5.1f}%  {symbol}")
        for caller, n in callers[symbol].most_common(CALLERS_SHOWN):
            print(f"            {100 * n / count:5.1f}% of it from {caller}")


if __name__ == "__main__":
    main()
