# refenv.py - the reference libraries of the test virtual environment (tests/requirements.txt).
#
# need('torch', 'transformers') imports them, or ends the test: with a skip (exit 77) and a
# one-line reason when a developer runs it without the environment, with a failure (exit 1)
# when QKV_REQUIRE_REFS=1 (as `./dev test` sets), so that a broken environment cannot pass
# as skipped references.

import importlib
import os
import sys

SKIP = 77


def required():
    return os.environ.get('QKV_REQUIRE_REFS', '') not in ('', '0')


def missing(reason):
    """End the test: fail under QKV_REQUIRE_REFS=1, else skip. Never returns."""
    if required():
        print('FAIL: %s (QKV_REQUIRE_REFS=1: references are required; ./dev test sets up .venv-test)' % reason,
              flush=True)
        sys.exit(1)
    print('SKIP: %s (./dev test sets up the test environment .venv-test)' % reason, flush=True)
    sys.exit(SKIP)


def need(*names):
    """Import each module name; return them in order, or end the test through missing()."""
    mods = []
    for name in names:
        try:
            mods.append(importlib.import_module(name))
        except ImportError as ex:
            missing('reference library %s cannot be imported under %s: %s' % (name, sys.executable, ex))
    return mods[0] if len(mods) == 1 else mods
