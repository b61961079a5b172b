#!/usr/bin/python3
"""The Training view end to end: the real binary in tmux at 80x24.

Usage: test_train_tui.py QKV_BINARY

Tab after the Experiments view opens the Training view (the view bar, eleven views, still fits
80 columns and names the current one whole). `train` typed on the command line switches to it
and draws the run while it goes: a progress bar with the steps done and the time left, then,
when it ends, the whole stored curve: the header, the last loss and held-out loss equal to
headless `curve` of the same database, the points on the chart (one column per step range, the
highest loss on the top row, the lowest on the bottom one). :save FILE.csv writes one row per
step with the stored losses. `:curve kind=reward` on a database with no reward run says so.
Exit 77 when tmux is missing.
"""
import csv
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tui as tt  # noqa: E402

W, H = 80, 24
STEPS = 1500
PROGRESS = re.compile(r"running train 1 ([\u2588\u2591]+) (\d+)/%d (\d+)%%" % STEPS)


def main():
    if not tt.have_tmux():
        return 77
    with tt.session("qkv-train-e2e-") as tmp:
        db = os.path.join(tmp, "q.db")
        text = os.path.join(tmp, "text.txt")
        with open(text, "w") as f:
            f.write("the cat sat on the mat. the dog ran to the park. " * 400)
        out = os.path.join(tmp, "model")
        p = tt.Pane(tmp, W, H, "train")
        tt.start_qkv(p, db)
        p.wait_text("4 layers x 4 heads")
        p.keys("0")
        p.wait_text("no experiment yet")
        p.keys("Tab")
        s = p.wait_text("No curve shown yet.")
        bar = s.split("\n")[1]
        if "Training" not in bar or len(bar.rstrip()) > W or " 0 " not in bar or " 1 " not in bar:
            tt.fail("the view bar at 80 columns with the Training view current: %r" % bar)

        # a run drawn as it goes, then the stored curve
        tt.command(p, "train %s out=%s layers=2 heads=2 d=64 ctx=64 steps=%d batch=4 seq=32 eval_every=100 "
                   "warmup=20 lr=3e-3" % (text, out, STEPS))
        s = p.wait(lambda s: PROGRESS.search(s), "the progress bar of the run", timeout=120)
        m = PROGRESS.search(s)
        done, pct = int(m.group(2)), int(m.group(3))
        if pct != 100 * done // STEPS:
            tt.fail("progress %d/%d shown as %d%%" % (done, STEPS, pct))
        if "now: step" not in s or "loss" not in s:
            tt.fail("the progress does not say where the run is:\n" + s)
        s = p.wait(lambda s: "training run 1  gpt2  " in s and "(running)" not in s and "running train" not in s,
                   "the finished run", timeout=600)
        ref = tt.headless(p.env, db, "curve 1")[0]
        pts = ref["points"]
        if len(pts) != STEPS or pts[-1]["step"] != STEPS:
            tt.fail("curve 1: %d points, the last at step %s" % (len(pts), pts[-1]["step"] if pts else None))
        held = [x for x in pts if x["val_loss"] is not None]
        want = "loss %.4f (step %d)" % (pts[-1]["loss"], STEPS)
        if want not in s:
            tt.fail("the legend should say %r:\n%s" % (want, s))
        want = "held-out loss %.4f (step %d)" % (held[-1]["val_loss"], held[-1]["step"])
        if want not in s:
            tt.fail("the legend should say %r:\n%s" % (want, s))
        rows = s.split("\n")
        chart = [r for r in rows if "\u2502" in r]
        hi = max(max(x["loss"] for x in pts), max(x["val_loss"] for x in held))
        lo = min(min(x["loss"] for x in pts), min(x["val_loss"] for x in held))
        if len(chart) < 8 or "%8.4f" % hi not in chart[0] or "%8.4f" % lo not in chart[-1]:
            tt.fail("the value axis should run from %.4f to %.4f:\n%s" % (hi, lo, "\n".join(chart)))
        plotted = sum(r.count("\u2022") for r in chart)
        if plotted < 40 or not any("o" in r.split("\u2502", 1)[1] for r in chart):
            tt.fail("the chart shows %d loss points and no held-out ones:\n%s" % (plotted, "\n".join(chart)))
        # the first steps' loss is the highest: its point is on the top rows, the last ones low
        first_col = [r.split("\u2502", 1)[1][:1] for r in chart]
        if "\u2022" not in "".join(first_col[:3]):
            tt.fail("the first step's loss is not near the top of the chart:\n%s" % "\n".join(chart))

        tt.command(p, "save %s" % os.path.join(tmp, "curve.csv"))
        p.wait_text("saved")
        with open(os.path.join(tmp, "curve.csv"), newline="") as f:
            table = list(csv.reader(f))
        body = [r for r in table[1:] if r]
        if len(body) != STEPS or abs(float(body[-1][1]) - pts[-1]["loss"]) > 1e-4 * max(1, pts[-1]["loss"]):
            tt.fail("the saved CSV: %d rows, the last %r; expected %d rows ending with loss %.6f"
                    % (len(body), body[-1] if body else None, STEPS, pts[-1]["loss"]))

        tt.command(p, "curve kind=reward")
        p.wait_text("no reward run in")
        p.keys("[")
        p.wait_text("the first run")
        p.keys("q")
        tt.wait_shell(p)
    return tt.finish()


if __name__ == "__main__":
    sys.exit(main())
