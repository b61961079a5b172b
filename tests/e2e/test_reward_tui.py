#!/usr/bin/python3
"""The Reward panels of the Training view end to end: the real binary in tmux at 80x24.

Usage: test_reward_tui.py QKV_BINARY

A reward model (head=linear on the built-in untrained GPT-2) trained headless on a synthetic
preference set (the chosen completion ends with " good"); `reward train` stores its held-out
pairs with their final rewards (reward_heldout), and `curve kind=reward` hands them over as
`heldout`. In the TUI, `:curve kind=reward` shows the run's curve and offers `p`; `p` shows the
held-out pairs: the count and accuracy and both mean rewards as headless JSON gives them, two
histograms over 8 equal bins (chosen, rejected) whose counts equal the bins computed here from
the JSON, and the pairs the model gets most wrong, the largest r_rejected - r_chosen first. `j`
then Enter opens the second of them: its prompt, both completions and both rewards. Esc goes
back to the list, `p` to the curve. Then the Rank view: 3 candidates ranked and submitted; no
reward appears before the submit, and after it the reward model's order (the latest reward run's,
as headless `reward score ranking=ID` gives it: order, rewards, agreement) beside the person's;
with no reward model at all, a submit says so in the view and puts no error on the status line.
Exit 77 when tmux is missing.
"""
import os
import random
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tui as tt  # noqa: E402

W, H = 80, 24
WORDS = [" good", " bad", " meh"]
STEMS = ["the answer is", "I think it is", "it looks", "that was", "we found it"]


def make_db(db, n_prompts):
    """Rankings of the rule: ' good' best, ' bad' and ' meh' below."""
    tt.headless(os.environ, db, 'generate "a" max=1 seed=1', model="builtin")  # the schema (history makes none)
    rnd = random.Random(5)
    con = sqlite3.connect(db)
    con.execute("DELETE FROM runs")
    now = "2026-01-01T00:00:00.000Z"
    for i in range(n_prompts):
        prompt = "Q%d: how is item %d?" % (i, rnd.randrange(1000))
        order = [0, 1, 2]
        rnd.shuffle(order)
        ids = []
        for n, w in enumerate(order):
            text = " " + rnd.choice(STEMS) + WORDS[w]
            cur = con.execute(
                "INSERT INTO runs (created, kind, annotator, qkv_version, model_path, model_arch, prompt, "
                "temperature, top_k, top_p, seed, max_tokens, output) VALUES (?, 'rank', 'syn', 'test', 'builtin', "
                "'gpt2', ?, 1.0, 0, 1.0, ?, 8, ?)", (now, prompt, i * 10 + n, text))
            ids.append((n + 1, cur.lastrowid, w))
        rid = con.execute("INSERT INTO rankings (created, prompt, k, annotator, qkv_version) VALUES (?, ?, 3, "
                          "'alice', 'test')", (now, prompt)).lastrowid
        for n, run_id, w in ids:
            con.execute("INSERT INTO ranking_items (ranking_id, n, run_id, rank) VALUES (?, ?, ?, ?)",
                        (rid, n, run_id, w + 1))
    con.commit()
    con.close()


def bins(held):
    """The two histograms as the view draws them: 8 equal bins over the range of both, top bin first."""
    vals = [h["r_chosen"] for h in held] + [h["r_rejected"] for h in held]
    lo, hi = min(vals), max(vals)
    cc, cr = [0] * 8, [0] * 8
    for h in held:
        for side, c in (("r_chosen", cc), ("r_rejected", cr)):
            b = min(7, max(0, int((h[side] - lo) / (hi - lo) * 8)))
            c[b] += 1
    return cc[::-1], cr[::-1], lo, hi


def rank_view(p, db, rm):
    """Rank 3 candidates, move one, submit: only then the reward model's order appears beside it."""
    tt.command(p, 'rank "Q7: how is item 70?" k=3 max=6 seed=3')
    s = p.wait_text("Enter runs:  order 1 2 3")
    if "reward model" in s or re.search(r"[+-]\d\.\d{4}", s):
        tt.fail("the reward model's opinion shows before the submit:\n" + s)
    p.keys("J")
    p.wait_text("Enter runs:  order 2 1 3")
    p.keys("Enter")
    s = p.wait(lambda s: "reward model (agrees on" in s, "the reward model's order after the submit")
    m = re.search(r"ranking (\d+) stored", s)
    ref = tt.headless(os.environ, db, "reward score ranking=%s model=%s" % (m.group(1) if m else 0, rm))[0]
    want = "reward model (agrees on %d of %d pairs)" % (ref["agree"], ref["pairs"])
    if want not in s:
        tt.fail("the Rank view should say %r:\n%s" % (want, s))
    lines = s.split("\n")
    k = next(i for i, line in enumerate(lines) if "your order" in line)
    reward = {c["n"]: c["reward"] for c in ref["candidates"]}
    pred = [n for group in ref["order"] for n in group]
    for i, n in enumerate([2, 1, 3]):
        left, right = lines[k + 1 + i][:40], lines[k + 1 + i][40:]
        if not left.startswith(" %d. [%d] " % (i + 1, n)):
            tt.fail("your order, row %d: %r (expected candidate %d)" % (i + 1, left, n))
        if not right.startswith(" %d. [%d] %+.4f " % (i + 1, pred[i], reward[pred[i]])):
            tt.fail("the reward model's order, row %d: %r (expected [%d] %+.4f)" % (i + 1, right, pred[i],
                                                                                  reward[pred[i]]))
    if "reward model: %s" % os.path.realpath(rm) not in s:
        tt.fail("the Rank view should name the reward model %s:\n%s" % (rm, s))


def rank_no_model(tmp):
    """With no reward model anywhere, a submit stores the ranking and the view says there is no
    reward model's order, dimly: no error on the status line (it said "error: reward score: ..."
    after every ranking, which reads as if the ranking had failed)."""
    db = os.path.join(tmp, "none.db")
    p = tt.Pane(tmp, W, H, "reward-none")
    try:
        tt.start_qkv(p, db, model="builtin")
        tt.command(p, 'rank "Q1: how is item 1?" k=3 max=6 seed=3')
        p.wait_text("Enter runs:  order 1 2 3")
        p.keys("Enter")
        s = p.wait(lambda s: "no reward model's order" in s, "the Rank view saying there is no reward model")
        if not re.search(r"ranking \d+ stored", s) or "error" in s:
            tt.fail("after a submit with no reward model: expected 'ranking N stored' and no error:\n" + s)
    finally:
        p.close()


def main():
    if not tt.have_tmux():
        return 77
    with tt.session("qkv-reward-e2e-") as tmp:
        db = os.path.join(tmp, "q.db")
        make_db(db, 40)
        out = os.path.join(tmp, "rm")
        r = subprocess.run([tt.QKV, "--model", "builtin", "--db", db, "--json", "-e",
                            "reward train head=linear out=%s val=0.3 epochs=3 lr=0.01" % out],
                           capture_output=True, text=True, timeout=300)
        if r.returncode:
            tt.fail("reward train: %s" % r.stderr[-400:])
            return 1
        cv = tt.headless(os.environ, db, "curve kind=reward")[0]
        held = cv.get("heldout", [])
        if len(held) != cv["heldout_pairs"] or not held:
            tt.fail("curve kind=reward: %d held-out pairs stored, the run has %d" % (len(held), cv["heldout_pairs"]))
            return 1
        right = sum(h["r_chosen"] > h["r_rejected"] for h in held)
        if abs(right / len(held) - cv["heldout_accuracy"]) > 1e-9:
            tt.fail("the stored pairs' accuracy %.4f, the run's %.4f" % (right / len(held), cv["heldout_accuracy"]))
        worst = sorted(held, key=lambda h: h["r_rejected"] - h["r_chosen"], reverse=True)
        p = tt.Pane(tmp, W, H, "reward")
        tt.start_qkv(p, db, model="builtin")
        tt.command(p, "curve kind=reward")
        s = p.wait_text("p  the %d held-out pairs" % len(held))
        if "reward run 1" not in s or "o held-out" not in s:
            tt.fail("the reward run's curve:\n" + s)
        # the legend's last item, the held-out pair accuracy, fits in 80 columns (it was cut off)
        acc = re.search(r"pair accuracy (\d\.\d{3})\s*$", s, re.M)
        if not acc or not 0 <= float(acc.group(1)) <= 1:
            tt.fail("the legend does not end with the held-out pair accuracy at %dx%d:\n%s" % (W, H, s))
        p.keys("p")
        s = p.wait_text("most wrong first")
        n = len(held)
        mc = sum(h["r_chosen"] for h in held) / n
        mr = sum(h["r_rejected"] for h in held) / n
        want = "%d held-out pairs, %d right (%.3f); mean reward: chosen %.3f, rejected %.3f" % (
            n, right, right / n, mc, mr)
        if want not in s:
            tt.fail("the summary should say %r:\n%s" % (want, s))
        if any(len(line) > W for line in s.split("\n")):
            tt.fail("a line is wider than %d columns:\n%s" % (W, s))
        cc, cr, lo, hi = bins(held)
        rows = [line for line in s.split("\n") if re.match(r"^\s*-?\d+\.\d{3}\.\.\s*-?\d+\.\d{3}\s", line)]
        if len(rows) != 8:
            tt.fail("8 histogram rows expected:\n" + s)
        else:
            for k, line in enumerate(rows):
                nums = [int(x) for x in re.findall(r"(?:^|\s)(\d+)(?=\s|$)", line[19:])]
                if nums != [cc[k], cr[k]] or ("\u2588" in line) != (cc[k] > 0) or ("\u2592" in line) != (cr[k] > 0):
                    tt.fail("histogram row %d %r: expected chosen %d, rejected %d" % (k, line, cc[k], cr[k]))
            if "%7.3f" % hi not in rows[0] or "%7.3f" % lo not in rows[-1]:
                tt.fail("the bins should run from %.3f (bottom) to %.3f (top):\n%s" % (lo, hi, "\n".join(rows)))
        lines = s.split("\n")
        k = next(i for i, line in enumerate(lines) if "most wrong first" in line)
        for j in range(3):
            want = "%+8.3f %s" % (worst[j]["r_rejected"] - worst[j]["r_chosen"], worst[j]["prompt"])
            if not lines[k + 1 + j].startswith(want):
                tt.fail("row %d of the most wrong pairs: %r, expected it to start with %r"
                        % (j + 1, lines[k + 1 + j], want))
        p.keys("j")
        p.keys("Enter")
        s = p.wait_text("held-out pair 2 of %d" % n)
        w2 = worst[1]
        for want in ("(ranking %d)" % w2["ranking_id"], "r_rejected - r_chosen %+.4f" % (w2["r_rejected"] - w2["r_chosen"]),
                     w2["prompt"], "chosen    reward %.4f" % w2["r_chosen"], w2["chosen"].strip(),
                     "rejected  reward %.4f" % w2["r_rejected"], w2["rejected"].strip(),
                     "WRONG" if w2["r_rejected"] > w2["r_chosen"] else "right"):
            if want not in s:
                tt.fail("the opened pair should show %r:\n%s" % (want, s))
        p.keys("Escape")
        p.wait_text("most wrong first")
        p.keys("p")
        p.wait_text("p  the %d held-out pairs" % n)
        rank_view(p, db, out)
        p.keys("q")
        tt.wait_shell(p)
        rank_no_model(tmp)
    return tt.finish()


if __name__ == "__main__":
    sys.exit(main())
