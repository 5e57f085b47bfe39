#!/usr/bin/python3
"""kiln prints floats as Python's repr does, over the whole range of doubles.

flytekit hashes str(dict) of the spec, so a float in `env` (or anywhere in
a spec) must print exactly as CPython prints it: shortest round-trip
digits, exponent below 1e-4 and from 1e16, '.0' on integral values. This
generates doubles over the whole range (random bit patterns, short decimals,
values around the exponent switch points, subnormals), writes them into a
spec's env in YAML float syntax, and compares the text `kiln name --explain`
hashes with Python's own str() of the same dict.

    KILN=build/kiln tests/flytekit/float_repr.py [COUNT]

KILN_SEED fixes the random seed (printed on failure).
"""
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

import yaml


def yaml_float(x):
    # PyYAML's float needs a '.' and a signed exponent: 1e-05 is a string.
    return "%.17e" % x if x == x and abs(x) != math.inf else {1: ".inf", -1: "-.inf"}[int(math.copysign(1, x))]


def shortest_yaml(x):
    # repr's own digits, rewritten into YAML 1.1 float syntax.
    r = repr(x)
    if "e" in r:
        m, e = r.split("e")
        if "." not in m:
            m += ".0"
        return m + "e" + ("" if e[0] in "+-" else "+") + e
    return r


def doubles(rng, n):
    out = []
    for _ in range(n):
        kind = rng.randrange(6)
        if kind == 0:  # any finite double, uniformly over bit patterns
            while True:
                x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
                if math.isfinite(x):
                    break
        elif kind == 1:  # short decimals, as people write them
            x = round(rng.uniform(-1e6, 1e6), rng.randrange(0, 8))
        elif kind == 2:  # around repr's switch to exponents (1e-4, 1e16)
            x = rng.choice([1e-4, 1e16, 1e-5, 1e15, 1e17]) * rng.uniform(0.5, 2.0)
        elif kind == 3:  # subnormals
            x = struct.unpack("<d", rng.getrandbits(52).to_bytes(8, "little"))[0]
        elif kind == 4:  # integral values up to 2**60
            x = float(rng.getrandbits(rng.randrange(1, 61)))
        else:  # powers of ten and their neighbours
            x = 10.0 ** rng.randrange(-320, 309)
            x = math.nextafter(x, rng.choice([0.0, math.inf]))
        out.append(-x if rng.random() < 0.3 else x)
    return out


def main():
    kiln = os.environ["KILN"]
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    seed = int(os.environ.get("KILN_SEED", random.SystemRandom().getrandbits(32)))
    rng = random.Random(seed)
    xs = doubles(rng, n) + [0.0, -0.0, 5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 9007199254740993.0]
    lines = ["env:"]
    env = {}
    for i, x in enumerate(xs):
        text = yaml_float(x) if i % 2 else shortest_yaml(x)
        lines.append(f"  V{i}: {text}")
        env[f"V{i}"] = x
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        path = f.name
    try:
        # PyYAML must read the file as the same doubles (else the test is wrong)
        with open(path) as fh:
            assert yaml.safe_load(fh)["env"] == env
        out = subprocess.run([kiln, "name", "--json", "--explain", path], check=True,
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    got = json.loads(out)["idDict"]
    want = str({"name": "flytekit", "env": env, "platform": "linux/amd64"})
    if got == want:
        print(f"ok: {len(xs)} doubles print as Python's repr (seed {seed})")
        return 0
    gi = got[got.index("{", 1) + 1:].split(", ")
    wi = want[want.index("{", 1) + 1:].split(", ")
    bad = [(g, w) for g, w in zip(gi, wi) if g != w]
    for g, w in bad[:20]:
        print(f"FAIL: kiln {g!r}, python {w!r}")
    print(f"FAIL: {len(bad)} of {len(xs)} doubles differ (KILN_SEED={seed})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
