#!/usr/bin/env python3
"""Writes the benchmark's data set, the same bytes on every run (seeded PRNG).

Usage: make_dataset.py DIR [SCALE]

SCALE 1 (default) is about 1.1 GiB: 20,000 small text files (about 10 KiB each, in 200
directories) and 4 large files of 224 MiB each, half random bytes, half repeated text
(so about half-compressible).
"""
import os
import random
import sys

WORDS = ("backup restore archive stream bucket object manifest checksum lambda runner "
         "queue lease progress stage hook retention schedule execution destination "
         "compress encrypt verify snapshot incremental ").split()


def text_block(rng, size):
    out = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(12)) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out)[:size].encode()


def main():
    root = sys.argv[1]
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    marker = os.path.join(root, ".complete-%s" % scale)
    if os.path.exists(marker):
        return
    rng = random.Random(20261123)
    small = int(20000 * scale)
    # A pool of text reused with offsets keeps generation fast and the bytes fixed.
    pool = text_block(rng, 4 << 20)
    for i in range(small):
        d = os.path.join(root, "small", "d%03d" % (i % 200))
        os.makedirs(d, exist_ok=True)
        size = 2048 + rng.randrange(16384)
        start = rng.randrange(len(pool) - size)
        with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
            f.write(pool[start:start + size])
    big = int(224 * scale) << 20
    os.makedirs(os.path.join(root, "large"), exist_ok=True)
    for i in range(4):
        with open(os.path.join(root, "large", "blob%d.bin" % i), "wb") as f:
            written = 0
            while written < big:
                chunk = 1 << 20
                if (written // chunk) % 2 == 0:
                    f.write(rng.randbytes(chunk))
                else:
                    start = rng.randrange(len(pool) - chunk)
                    f.write(pool[start:start + chunk])
                written += chunk
    open(marker, "w").close()


if __name__ == "__main__":
    main()
