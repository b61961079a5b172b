#!/usr/bin/env python3
# test_refenv.py - suite 'reference': the test virtual environment holds the reference
# libraries at the versions pinned in tests/requirements.txt (the ones the reference tests were
# written against), and torch is the CPU build. Skips (77) without the environment unless
# QKV_REQUIRE_REFS=1, which `./dev test` sets.
# Usage: test_refenv.py [QKV_BINARY] (unused; meson passes it to every Python test).

import os
import sys
from importlib import metadata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refenv  # noqa: E402

# the libraries the reference tests import, by module name and distribution name
LIBS = [('torch', 'torch'), ('transformers', 'transformers'), ('tokenizers', 'tokenizers'),
        ('tiktoken', 'tiktoken'), ('sentencepiece', 'sentencepiece'), ('safetensors', 'safetensors'),
        ('gguf', 'gguf'), ('numpy', 'numpy'), ('jinja2', 'jinja2'), ('accelerate', 'accelerate'),
        ('google.protobuf', 'protobuf')]


def pins(path):
    """{normalised distribution name: version} of the name==version lines of a requirements file."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if '==' in line:
                name, ver = line.split('==', 1)
                out[name.strip().lower().replace('_', '-')] = ver.strip()
    return out


def main():
    src = os.environ.get('QKV_SRCDIR', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
    want = pins(os.path.join(src, 'tests', 'requirements.txt'))
    refenv.need(*[m for m, _ in LIBS])
    failures = 0
    for _, dist in LIBS:
        pin = want.get(dist)
        got = metadata.version(dist)
        if pin is None:
            print('FAIL: %s is not pinned in tests/requirements.txt' % dist)
            failures += 1
        elif got.split('+')[0] != pin:
            print('FAIL: %s: expected %s (tests/requirements.txt), got %s under %s' % (dist, pin, got, sys.executable))
            failures += 1
        else:
            print('%-14s %s' % (dist, got))
    import torch
    if torch.version.cuda is not None:
        print('FAIL: torch: expected the CPU build, got one built for CUDA %s' % torch.version.cuda)
        failures += 1
    print('refenv: %d failure(s)' % failures)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
