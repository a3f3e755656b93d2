#!/usr/bin/env python3
"""Where sluiced's time goes, in kinds of work: sums `perf report --sort symbol` lines by kind.

    perf report -i perf.data --no-children --sort symbol --stdio -g none --percent-limit 0 \
        | bench/peers/categories.py

The kinds are those issue 19 names as what bounds the record path (copies, zeroing,
allocation, checksums, hashing, decimal formatting, flatbuffers, base64, JSON trees), so the
profile before and after an optimisation can be compared kind by kind. A symbol counts for the
first kind whose pattern it matches.
"""

import re
import sys

KINDS = [
    ("copies (memmove/memcpy)", r"memmove|memcpy"),
    ("zeroing (memset)", r"memset"),
    ("allocation (malloc/free/realloc/consolidate/unlink)", r"malloc|_int_free|cfree|unlink_chunk|realloc|consolidate|__libc_free|tcache"),
    ("xxh3 checksums", r"xxh3|xxhash"),
    ("MD5 of partition keys", r"md5"),
    ("SipHash / std HashMap", r"sip::|hash_one|hashbrown"),
    ("decimal formatting (u128, fmt)", r"fmt|write_char|pad_integral|format_inner|write_str"),
    ("flatbuffers verify/build", r"flatbuffers"),
    ("base64", r"base64"),
    ("JSON (serde_json, Value tree, shape checker)", r"serde_json|http::value|shapes::Checker|serde_core"),
    ("bytes refcounts", r"^bytes::"),
    ("kernel", r"^\[k\]"),
]
LINE = re.compile(r"\s+([\d.]+)%\s+(\[[.k]\])\s+(.*)$")


def main():
    totals = {kind: 0.0 for kind, _ in KINDS}
    rest = 0.0
    for line in sys.stdin:
        match = LINE.match(line)
        if not match:
            continue
        percent, space, symbol = float(match.group(1)), match.group(2), match.group(3).strip()
        key = ("[k] " if space == "[k]" else "") + symbol
        kind = next((kind for kind, pattern in KINDS if re.search(pattern, key)), None)
        if kind:
            totals[kind] += percent
        else:
            rest += percent
    for kind, _ in KINDS:
        print(f"{totals[kind]:5.1f}%  {kind}")
    print(f"{rest:5.1f}%  everything else")


if __name__ == "__main__":
    main()
