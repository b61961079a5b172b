#!/usr/bin/python3
"""The tmux tests' Pane.wait against scripted screens (no tmux, no qkv).

A capture can catch a frame the terminal has only partly received. The case that failed in CI
(tui-200x60 under the sanitizers): the cursor moved from (3,0) to (3,1), and curses rewrote the
coordinates before the value, so one capture read "(3,1) ... = 0.2351", the old cell's value.
Checked: wait returns the settled screen, not that frame; a state that has already passed is
returned as seen; a screen that never stops changing is returned after SETTLE_MAX.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tui as tt  # noqa: E402

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


class Scripted(tt.Pane):
    """A Pane whose captures are the given frames in turn (the last one repeated)."""

    def __init__(self, frames):  # no tmux server
        self.frames, self.i = list(frames), 0

    def screen(self, colours=False):
        s = self.frames[min(self.i, len(self.frames) - 1)]
        self.i += 1
        return s


def at_3_1(s):
    r = tt.readout(s)
    return r[:2] == (3, 1)


# the torn frame: coordinates of the new cell, value of the old one; the full frame next
p = Scripted(["(3,0) e \u00d7 T = 0.2351", "(3,1) e \u00d7 h = 0.2351", "(3,1) e \u00d7 h = 0.2619"])
s = p.wait(at_3_1, "the cursor at (3,1)")
check(tt.readout(s)[3] == 0.2619, "wait returned a frame not yet settled: %r" % s)

# a passing state (a status shown once) is returned as it was seen
p = Scripted(["working", "run #1: 6 tokens", "ready"])
s = p.wait(lambda s: "run #1" in s, "the status")
check(s == "run #1: 6 tokens", "a passing state: %r" % s)

# a screen that keeps changing while pred holds (a progress line) is taken within SETTLE_MAX
p = Scripted(["step %d/100" % i for i in range(1000)])
t0 = time.time()
s = p.wait(lambda s: s.startswith("step"), "progress")
check(s.startswith("step") and time.time() - t0 < tt.SETTLE_MAX + 1.0, "a changing screen: %r after %.1fs" % (s, time.time() - t0))

if failures:
    sys.exit(1)
print("Pane.wait: 3 cases OK")
