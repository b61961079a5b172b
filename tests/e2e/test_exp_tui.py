#!/usr/bin/python3
"""The experiment view end to end: the real binary in tmux at 80x24 on the built-in model.

Usage: test_exp_tui.py QKV_BINARY

Key 0 opens the Experiments view (the view bar still holds all ten views at 80 columns); an
experiment typed on the command line (odd-one-out, multiple choice scored by log-likelihood, so
that an untrained model gets some right) shows a progress bar with its items and the time left
while it runs, then the accuracy of each condition as a bar with its 95% Wilson interval: the numbers,
the bar's length and the error bar's ends are checked against headless `experiment show` of the
same database. Enter opens the first item of a condition: right or wrong, the answer extracted
and the prompt's last line as headless `experiment show ID item=0 condition=C` gives them; n
moves to the next item, Esc goes back, :save writes the bars as SVG (after another view's figure too: each view saves its own). Exit 77 when tmux is missing.
"""
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tui as tt  # noqa: E402  (its Pane drives tmux; it reads QKV_BINARY from argv too)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from statsref import wilson95  # noqa: E402

W, H = 80, 24
EXP = "experiment odd-one-out shots=0,1 seeds=1 limit=8"
LIVE_HEAD = "experiment 1  task odd-one-out  model builtin  running  "
PROGRESS = re.compile(r"running experiment 1 ([\u2588\u2591]+) (\d+)/16 (\d+)%  \d+:\d\d, (\d+:\d\d|\?) left")


def bar_geometry(labels):
    """Columns of the bars as views/barchart.c lays them out: label, count, bar, value."""
    lw = max([9] + [len(s) for s in labels])
    lw = min(lw, W // 3)
    bx = lw + 1 + 6 + 1
    return bx, W - bx - 15


def label(c):
    return "shots=%d cot=%s seed=%d" % (c["shots"], "on" if c["cot"] else "off", c["seed"])


def main():
    if not tt.have_tmux():
        return 77
    with tt.session("qkv-exp-e2e-") as tmp:
        db = os.path.join(tmp, "q.db")
        p = tt.Pane(tmp, W, H, "exp")
        tt.start_qkv(p, db)
        s = p.wait_text("4 layers x 4 heads")
        p.keys("0")
        s = p.wait_text("no experiment yet")
        bar = s.split("\n")[1]
        for k in "1234567890":
            if " %s " % k not in bar:
                tt.fail("the view bar at 80 columns lacks view %s: %r" % (k, bar))
        if "0 Experiments" not in bar or len(bar.rstrip()) > W:
            tt.fail("the view bar does not show the current view's whole name: %r" % bar)

        # the run: a progress bar with the time left and the bars filling in, read from one screen
        # of the run in progress (it lasts a second or two: a second wait could find it over)
        tt.command(p, EXP)
        s = p.wait(lambda s: PROGRESS.search(s) and LIVE_HEAD in s, "the progress bar and the live bars")
        m = PROGRESS.search(s)
        cells, done, pct = m.group(1), int(m.group(2)), int(m.group(3))
        if pct != 100 * done // 16:
            tt.fail("progress %d/16 shown as %d%%" % (done, pct))
        full = cells.count("\u2588")
        if full != len(cells) * done // 16:
            tt.fail("progress %d/16: %d of %d cells full, expected %d" % (done, full, len(cells), len(cells) * done // 16))
        if "now: shots=" not in s:
            tt.fail("the progress does not say what runs now:\n" + s)
        # the counts of the bars on the screen agree with its progress (a condition not begun
        # may have no bar yet)
        rows = s.split("\n")
        for lab, n in (("shots=0 cot=off seed=1 ", min(done, 8)), ("shots=1 cot=off seed=1 ", max(0, done - 8))):
            row = next((r for r in rows if r.startswith(lab)), None)
            got = row[len(lab):].split()[0] if row else "0"
            if got != str(n) or (row is None and n > 0):
                tt.fail("%s/16 done: the bar of %s shows n=%s, expected %d:\n%s" % (done, lab, got, n, s))
        if "running  %d/16 items" % done not in s:
            tt.fail("the live head does not count %d items:\n%s" % (done, s))
        s = p.wait_text("experiment 1  task odd-one-out  model builtin  done  16/16 items")
        ref = tt.headless(p.env, db, "experiment show 1")[0]
        conds = ref["conditions"]
        labels = [label(c) for c in conds]
        bx, bw = bar_geometry(labels)
        rows = s.split("\n")
        for c, lab in zip(conds, labels):
            row = next((r for r in rows if r.startswith(lab + " ")), None)
            if row is None:
                tt.fail("no bar for %s:\n%s" % (lab, s))
                continue
            want = "%.3f \u00b1 %.3f" % (c["accuracy"], c["stderr"])
            if not row.rstrip().endswith(want) or " %d " % c["n"] not in row[:bx]:
                tt.fail("%s: the row %r, expected n=%d and %s" % (lab, row, c["n"], want))
            # the error bar spans the 95% Wilson interval of correct of n, at 0/n and n/n too
            lo, hi = wilson95(c["correct"], c["n"])
            a, b = (math.floor(v * (bw - 1) + 0.5) for v in (lo, hi))
            seg = row[bx:bx + bw]
            if seg.find("\u251c") != a or seg.find("\u2524") != b:
                tt.fail("%s: error bar at %d..%d in %r, expected %d..%d" % (lab, seg.find("\u251c"),
                                                                            seg.find("\u2524"), seg, a, b))
        if "error bars: 95% confidence interval" not in s:
            tt.fail("the legend of the bars is missing:\n" + s)

        # an item of the second condition, against headless experiment show
        p.keys("j")
        p.keys("Enter")
        s = p.wait_text("item 0 (of 0-7)  condition 1: " + labels[1])
        it = tt.headless(p.env, db, "experiment show 1 item=0 condition=1")[0]
        verdict = "RIGHT" if it["correct"] else "WRONG"
        if "condition 1: %s  %s" % (labels[1], verdict) not in s:
            tt.fail("the item should say %s:\n%s" % (verdict, s))
        for want in ("target:  " + it["target"], "answer:  " + it["answer"],
                     it["runs"][0]["prompt"].split("\n")[0]):
            if want not in s:
                tt.fail("the item screen lacks %r:\n%s" % (want, s))
        # the answer's token probabilities, scrolled into view: each piece and exp(logprob)
        toks = it["runs"][0]["tokens"]
        if not toks:
            tt.fail("headless experiment show gives the item no tokens")
        want = ["  %s%s %6.4f " % (tt.visible(t["piece"], 14), " " * (14 - len(tt.visible(t["piece"], 14))),
                                   math.exp(t["logprob"])) for t in toks]
        for _ in range(20):
            if all(w in p.screen() for w in want):
                break
            p.keys("j")
            p.wait(lambda s: True, "the screen after j")
        s = p.wait(lambda s: "token probabilities:" in s and all(w in s for w in want), "the token probabilities")
        for t, w in zip(toks, want):
            row = next(r for r in s.split("\n") if w in r)
            cells = row[row.index(w) + len(w):].rstrip()
            full = round(math.exp(t["logprob"]) * 24 * 8) // 8
            if cells.count("\u2588") != full:
                tt.fail("token %r: %d full cells in its bar, expected %d: %r" % (t["piece"], cells.count("\u2588"), full, row))
        p.keys("n")
        p.wait_text("item 1 (of 0-7)  condition 1")
        p.keys("Escape")
        s = p.wait_text("j k condition")
        tt.command(p, "save %s" % os.path.join(tmp, "bars.svg"))
        p.wait_text("saved experiment 1")
        with open(os.path.join(tmp, "bars.svg"), encoding="utf-8") as f:
            svg = f.read()
        if "95% Wilson score interval" not in svg or svg.count("<rect") < 2:
            tt.fail("the saved SVG lacks the bars or their legend")
        # another view's figure in between (the positions map): back here, save writes these bars
        # still, and a view showing no figure saves nothing (both wrote the positions map)
        p.keys("3")
        p.wait_text("sinusoidal")
        p.keys("0")
        p.wait_text("j k condition")
        tt.command(p, "save %s" % os.path.join(tmp, "again.csv"))
        p.wait_text("saved experiment 1")
        with open(os.path.join(tmp, "again.csv"), encoding="utf-8") as f:
            head = f.readline().strip()
        if head != "condition,n,accuracy,stderr,ci_low,ci_high":
            tt.fail("save in the Experiments view after the Positions view: header %r" % head)
        p.keys("8")
        tt.command(p, "save %s" % os.path.join(tmp, "quant.csv"))
        p.wait_text("nothing to save yet")
        if os.path.exists(os.path.join(tmp, "quant.csv")):
            tt.fail("save in the Quant view with nothing quantized wrote another view's figure")
        p.keys("q")
        tt.wait_shell(p)
    return tt.finish()


if __name__ == "__main__":
    sys.exit(main())
