#!/usr/bin/env python3
"""Print one closing line over meson test logs: 'N passed, N failed, N skipped'."""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            for line in f:
                r = json.loads(line).get("result")
                if r in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif r == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except OSError:
        failed += 1
        print(f"summary: no test log at {path}", file=sys.stderr)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
