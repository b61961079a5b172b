#!/usr/bin/python3
"""End-to-end tests of qkv's full-screen interface: the real binary in tmux, keys in, screens out.

Usage: test_tui.py QKV_BINARY WIDTHxHEIGHT

At the given terminal size: start on the built-in model and on a small `new-model` one, type a
prompt, generate, open the attention view and find the token labels and heatmap cells, move the
cursor and compare the value read out with headless `qkv --json -e 'attention ...'`, switch to the
model view (and a 12-layer model's: thumbnails two rows tall, the grid scrolling with the selection,
the footer naming the layers shown), rank K=4 candidates with the keyboard and find the ranking in the database, look at
the positions, history (runs, then rankings: the new ranking listed and shown) and help views, resize
the pane mid-generation, Ctrl-C a generation, shrink the terminal below the minimum and back,
quit and find the terminal restored. Exit 77 when tmux is missing.
"""
import contextlib
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

QKV = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/app/qkv"
SIZE = sys.argv[2] if len(sys.argv) > 2 else "80x24"
W, H = (int(x) for x in SIZE.split("x"))
TIMEOUT = float(os.environ.get("QKV_E2E_TIMEOUT", "60"))
SETTLE_GAP, SETTLE_MAX = 0.05, 0.15  # Pane.wait: a screen counts once unchanged SETTLE_GAP s later

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg, file=sys.stderr)


def have_tmux():
    """False (with the skip line printed) when tmux is missing: the script then exits 77."""
    if shutil.which("tmux"):
        return True
    print("skip: tmux is not installed")
    return False


@contextlib.contextmanager
def session(prefix):
    """The frame of a tmux test script's run: a fresh temporary directory (yielded, removed
    after); a timeout, a tmux error or a file error counted as a failure; the panes left open
    closed."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        yield tmp
    except (TimeoutError, RuntimeError, OSError, StopIteration) as e:
        fail(str(e))
    finally:
        for p in list(OPEN_PANES):
            p.close()
        shutil.rmtree(tmp, ignore_errors=True)


def finish(ok="ok", where=""):
    """The script's exit status: 1 with the count of failures (and where) on stderr, else 0 and ok."""
    if failures:
        print("%d failure(s)%s" % (len(failures), where), file=sys.stderr)
        return 1
    print(ok)
    return 0


OPEN_PANES = []


class Pane:
    """One tmux server with one pane running a shell, qkv started in it."""

    def __init__(self, tmp, w, h, name):
        OPEN_PANES.append(self)
        self.sock = "qkvtest-%d-%s" % (os.getpid(), name)
        self.tmp = tmp
        conf = os.path.join(tmp, "tmux.conf")
        with open(conf, "w") as f:
            f.write('set -g default-terminal "tmux-256color"\nset -g status off\nset -g escape-time 0\n'
                    "set -g history-limit 100\n")
        self.env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", XDG_STATE_HOME=os.path.join(tmp, "state"),
                        XDG_DATA_HOME=os.path.join(tmp, "data"), HOME=tmp,
                        HISTFILE="")  # else the shell writes tmp/.bash_history after the temporary folder is gone
        self.env.pop("TMUX", None)
        self.env.pop("COLORTERM", None)
        self.tmux("-f", conf, "new-session", "-d", "-x", str(w), "-y", str(h), "-s", "t",
                  "env PS1='READY$ ' bash --norc --noprofile")
        self.wait(lambda s: "READY$" in s, "the shell prompt")

    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-L", self.sock] + list(args), env=self.env, capture_output=True, text=True)
        if check and r.returncode:
            raise RuntimeError("tmux %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def type(self, text):
        self.tmux("send-keys", "-t", "t", "-l", text)

    def screen(self, colours=False):
        return self.tmux("capture-pane", "-p", "-t", "t", *(["-e"] if colours else []))

    def lines(self):
        return self.screen().split("\n")

    def size(self):
        return tuple(int(x) for x in self.tmux("display", "-p", "-t", "t", "#{pane_width} #{pane_height}").split())

    def resize(self, w, h):
        self.tmux("resize-window", "-t", "t", "-x", str(w), "-y", str(h))

    def fmt(self, f):
        return self.tmux("display", "-p", "-t", "t", f).strip()

    def wait(self, pred, what, timeout=TIMEOUT):
        """Poll the screen until pred(screen_text) holds on a settled screen; returns it, or raises.

        A capture can catch a frame the terminal has only partly received (curses rewrites only
        the cells that changed: the readout's new coordinates already there, its old value not
        yet replaced), so a screen that satisfies pred counts once a second capture 50 ms later
        is the same. A screen that keeps changing (a progress line) is taken as it is after
        SETTLE_MAX seconds of holding pred (short: a state that lasts a second must still be
        seen by the next wait), and a passing state as it was seen."""
        end = time.time() + timeout
        s = ""
        while time.time() < end:
            s = self.screen()
            if self._holds(pred, s):
                settle_end = min(end, time.time() + SETTLE_MAX)
                while True:
                    time.sleep(SETTLE_GAP)
                    s2 = self.screen()
                    if s2 == s or not self._holds(pred, s2):
                        return s  # settled, or a passing state already gone: as it was seen
                    s = s2
                    if time.time() >= settle_end:
                        return s
            time.sleep(0.1)
        raise TimeoutError("waited %gs for %s; the screen:\n%s" % (timeout, what, s))

    @staticmethod
    def _holds(pred, s):
        try:
            return bool(pred(s))
        except (ValueError, IndexError):
            return False

    def wait_text(self, text, timeout=TIMEOUT):
        return self.wait(lambda s: text in s, repr(text), timeout)

    def close(self):
        self.tmux("kill-server", check=False)
        if self in OPEN_PANES:
            OPEN_PANES.remove(self)


def headless(env, db, *cmds, model=None):
    args = [QKV, "--db", db, "--json"] + (["--model", model] if model else [])
    for c in cmds:
        args += ["-e", c]
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise RuntimeError("qkv %s failed: %s" % (cmds, r.stderr))
    return [json.loads(l) for l in r.stdout.split("\n") if l.strip()]


def visible(piece, width=10):
    """The label the views show for a token (label_format in UTF-8 mode, common cases)."""
    out = []
    for ch in piece:
        if ch == " ":
            out.append("\u00b7")
        elif ch == "\n":
            out.append("\u21b5")
        elif ch == "\t":
            out.append("\u2192")
        elif ord(ch) < 0x20:
            out.append("^" + chr(ord(ch) + 64))
        elif ch == "\x7f":
            out.append("^?")
        else:
            out.append(ch)
    s = "".join(out)
    return s if len(s) <= width else s[: width - 1] + "\u2026"


def start_qkv(p, db, model=None, extra=""):
    cmd = "%s --db %s%s%s" % (QKV, db, " --model " + model if model else "", extra)
    p.type(cmd)
    p.keys("Enter")
    p.wait_text("1 Lab")


def command(p, line):
    """Type a command on the command line (':' then the text, Enter)."""
    p.keys(":")
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith(":"), "the command line")
    p.type(line)
    p.keys("Enter")


def wait_shell(p):
    """Wait until qkv has exited and the shell shows a fresh prompt."""
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].strip() == "READY$" and p.fmt("#{pane_current_command}") == "bash",
           "qkv to exit and the shell prompt to come back")


READOUT = re.compile(r"\((\d+),(\d+)\) (.*?) = (-?[0-9.]+(?:e[-+]?\d+)?)")


def readout(s):
    for line in s.split("\n"):
        m = READOUT.search(line)
        if m:
            return int(m.group(1)), int(m.group(2)), m.group(3), float(m.group(4))
    raise ValueError("no readout")


def scenario_lab_attention(p, tmp, db, model, name, n_layer, n_head):
    """Type a prompt, generate, attention head view, cursor readout vs headless, model view."""
    start_qkv(p, db, model)
    s = p.wait_text("%s layers x %s heads" % (n_layer, n_head))
    # the header names the weights' type and the KV cache's (kv auto: F32 for F32 weights, else
    # F16), and follows `set kv`
    m = re.search(r"\(\w+ (\w+), %s layers x %s heads, d=\d+, ctx \d+, kv (F32|F16)\)" % (n_layer, n_head), s)
    if not m or m.group(2) != ("F32" if m.group(1) == "F32" else "F16"):
        fail("%s: the header does not show the weights' and the KV cache's types: %r" % (name, s.split("\n")[0]))
    else:
        other = "F16" if m.group(2) == "F32" else "F32"
        command(p, "set kv " + other.lower())
        p.wait_text("kv %s)" % other)
        command(p, "set kv auto")
        p.wait_text("kv %s)" % m.group(2))
    p.keys("e")
    p.wait_text("editing:")
    # a line wrapped over several rows, then Ctrl-A Ctrl-K: the whole line goes (Ctrl-A went to
    # the start of the last screen row, and the prompt kept the rows above it)
    p.type("lorem ipsum " * 40)
    p.keys("C-a", "C-k")
    p.type("The cat sat")
    p.keys("Escape")
    p.wait_text("e edit, g")
    command(p, "set max 6")
    p.wait_text("max 6")
    p.keys("g")
    # (a random seed may end the completion at its first token: "1 token", as a CI run once had it)
    s = p.wait(lambda s: re.search(r"run #(\d+): \d+ tokens?", s), "the generation's status")
    run_id = int(re.search(r"run #(\d+): \d+ tokens?", s).group(1))
    if "Completion: run #%d" % run_id not in s:
        fail("%s: the lab does not show the completion of run %d:\n%s" % (name, run_id, s))
    shown = headless(p.env, db, "show %d" % run_id)[0]
    if shown["prompt"] != "The cat sat":
        fail("%s: the prompt after Ctrl-A Ctrl-K on a wrapped line and typing: %r" % (name, shown["prompt"][-200:]))
    ids = shown["prompt_ids"] + shown["ids"]
    ref = headless(p.env, db, "attention ids=%s layer=0 head=0" % ",".join(map(str, ids)), model=model)[0]
    tokens, matrix = ref["tokens"], ref["matrix"]

    # the attention view, head view of layer 0 head 0
    p.keys("2")
    s = p.wait_text("layer 0/")
    s = p.wait(lambda s: readout(s), "the cursor readout")
    r, c, labels, val = readout(s)
    if (r, c) != (0, 0):
        fail("%s: the cursor starts at (%d,%d), not (0,0)" % (name, r, c))
    want = "%s \u00d7 %s" % (visible(tokens[0]), visible(tokens[0]))
    if labels != want:
        fail("%s: readout labels %r, expected %r" % (name, labels, want))
    # token labels: the row labels (right-aligned before the matrix) are the tokens in order; with
    # half blocks a terminal row holds two matrix rows: the upper one's label before the matrix, the
    # lower one's after it (it had none: half a text's tokens unlabelled)
    rows = s.split("\n")
    first = [re.match(r"\s*(\S+)\s", line) for line in rows]
    i0 = None
    for i in range(3, len(rows)):
        if not first[i] or first[i].group(1) != visible(tokens[0]):
            continue
        end = first[i].end(1) # the row labels are right-aligned to this column
        labels = [line[:end].split()[-1] for line in rows[i:] if line[:end].strip()]
        if len(labels) >= 3 and labels[1] in (visible(tokens[1], 4), visible(tokens[2], 4)):
            i0 = i
            break
    if i0 is None:
        fail("%s: the token labels %r... are not the row labels of the heatmap:\n%s" % (name, tokens[:3], s))
    elif labels[1] == visible(tokens[2], 4) and not rows[i0].split()[-1].startswith(visible(tokens[1], 4)[:3]):
        fail("%s: half blocks: the second token's label %r is not right of the matrix's first row:\n%s"
             % (name, visible(tokens[1]), s))
    if not any(visible(tokens[0]) in line and visible(tokens[1]) in line for line in rows[2:i0 + 1] if i0):
        fail("%s: no column labels above the heatmap:\n%s" % (name, s))
    # heatmap cells: coloured cells (256-colour SGR) and the empty causal mask
    sc = p.screen(colours=True)
    coloured = sum(1 for line in sc.split("\n")[3:] if "38;5;" in line or "48;5;" in line)
    if coloured < 3:
        fail("%s: no coloured heatmap cells on screen:\n%s" % (name, sc))
    if not any(re.search("[\u2580\u2584\u2588 ]\u00b7+", line) for line in rows[3:]):
        fail("%s: the masked upper triangle is not visibly empty:\n%s" % (name, s))
    # move the cursor and read the value
    rr, cc = min(3, len(tokens) - 1), 1
    for _ in range(rr):
        p.keys("j")
    p.keys("l")
    s = p.wait(lambda s: readout(s)[:2] == (rr, cc), "the cursor at (%d,%d)" % (rr, cc))
    _, _, labels, val = readout(s)
    exp = matrix[rr][cc]
    if abs(val - exp) > 5e-4 * max(1.0, abs(exp)):
        fail("%s: value at (%d,%d) reads %g, headless attention gives %g" % (name, rr, cc, val, exp))
    want = "%s \u00d7 %s" % (visible(tokens[rr]), visible(tokens[cc]))
    if labels != want:
        fail("%s: readout labels %r, expected %r" % (name, labels, want))
    # the model view: every layer x head
    p.keys("m")
    wants = ["model view: %s layers x %s heads" % (n_layer, n_head), "L0", "L%d" % (int(n_layer) - 1), "h0",
             "h%d" % (int(n_head) - 1), "mean", "\u258c", "layer 0 head 0: largest weight"]
    p.wait(lambda s: all(w in s for w in wants), "the model view with %s" % wants)
    p.keys("Enter")
    p.wait_text("layer 0/")
    # save exports what the view shows
    svg = os.path.join(tmp, name + ".svg")
    command(p, "save " + svg)
    p.wait_text("saved")
    if not os.path.exists(svg) or "<svg" not in open(svg).read(200):
        fail("%s: save did not write an SVG" % name)
    return run_id


NOTE = 'close "call" \\n, C:\\x'  # quotes and backslashes (a C escape's among them) kept as typed


def scenario_rank(p, tmp, db, name):
    """Rank K=4 candidates with the keyboard; q asks first while the ranking is unfinished."""
    command(p, 'rank "Once upon" k=4 max=5')
    p.wait_text("Enter runs:  order 1 2 3 4")
    p.keys("q")
    p.wait_text("quit and drop the unfinished ranking? y/n")
    p.keys("n")
    p.wait_text("not quitting")
    command(p, "quit")    # the quit command asks the same question
    p.wait_text("quit and drop the unfinished ranking? y/n")
    p.keys("n")
    p.wait_text("not quitting")
    p.keys("4")
    p.wait_text("Enter runs:  order 1 2 3 4")
    p.keys("J")           # candidate 1 down: 2 1 3 4, the cursor on 1
    p.wait_text("order 2 1 3 4")
    p.keys("j")           # the cursor on 3
    p.keys("J")           # 2 1 4 3, the cursor on 3
    p.wait_text("order 2 1 4 3")
    p.keys("=")           # 3 tied with 4
    p.wait_text("order 2 1 4=3")
    p.keys("n")           # a note: its text alone on the command line, stored as typed (quotes too)
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1] == "note:", "the note's prompt on the command line")
    p.type(NOTE[:5])
    p.keys("Up")          # the commands typed before are no note's: Up and Down leave the text
    p.keys("Down")
    p.type(NOTE[5:])
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1] == "note: " + NOTE, "the note typed, Up and Down ignored")
    p.keys("Enter")
    p.wait_text("note: " + NOTE)
    p.keys("Enter")
    s = p.wait(lambda s: re.search(r"ranking (\d+) stored", s), "the stored ranking")
    rid = int(re.search(r"ranking (\d+) stored", s).group(1))
    out = os.path.join(tmp, name + "-rankings.jsonl")
    headless(p.env, db, "export rankings " + out)
    rows = [json.loads(l) for l in open(out)]
    mine = [r for r in rows if r["ranking_id"] == rid]
    if not mine:
        fail("%s: ranking %d is not in the database" % (name, rid))
        return rid
    rk = mine[0]
    ranks = {c["n"]: c["rank"] for c in rk["candidates"]}
    if rk["k"] != 4 or ranks != {2: 1, 1: 2, 4: 3, 3: 3}:
        fail("%s: stored ranking %r, expected ranks 2:1 1:2 4=3:3" % (name, rk.get("order")))
    if rk.get("note") != NOTE:
        fail("%s: note %r, expected %r" % (name, rk.get("note"), NOTE))
    return rid


def scenario_generation_resize_cancel(p, tmp, db, big, name):
    """A long generation: resize the pane while it runs, then Ctrl-C it."""
    start_qkv(p, db, big)
    command(p, "set stop false")
    p.wait(lambda s: s.split("\n")[-3].startswith("temperature"), "the settings on the status line")
    command(p, "set max 200")
    p.wait_text("max 200")
    p.keys("e")
    p.type("Hello")
    p.keys("Escape")
    p.wait_text("e edit, g")
    p.keys("g")
    gen = re.compile(r"generating: (\d+) tokens")
    s = p.wait(lambda s: gen.search(s) and int(gen.search(s).group(1)) >= 3, "the generation to start")
    n0 = int(gen.search(s).group(1))
    w2, h2 = (120, 40) if (W, H) == (80, 24) else (100, 30)
    p.resize(w2, h2)

    def redrawn(h, after):
        # the header on the first row and the hint on the last one: drawn for this height, while the
        # generation goes on
        def pred(s):
            rows = s.rstrip("\n").split("\n")
            m = gen.search(s)
            return m and int(m.group(1)) > after and len(rows) == h and rows[0].startswith(" qkv") and \
                "1 Lab" in rows[1] and rows[h - 1].startswith("press : for a command")
        return pred

    s = p.wait(redrawn(h2, n0), "the screen redrawn at %dx%d while generating" % (w2, h2))
    if p.size() != (w2, h2):
        fail("%s: the pane is %s after resizing" % (name, p.size()))
    n1 = int(gen.search(s).group(1))
    p.resize(W, H)
    p.wait(redrawn(H, n1), "the screen redrawn at %dx%d while generating" % (W, H))
    # q while it generates is said, not kept to quit unasked once it ends (before 2026-12-06;
    # qkv must still run below)
    p.keys("q")
    p.keys("C-c")
    s = p.wait_text("stop: cancelled")
    m = re.search(r"run #(\d+): (\d+) tokens", s)
    if not m:
        fail("%s: no run status after Ctrl-C:\n%s" % (name, s))
        return
    run_id, n = int(m.group(1)), int(m.group(2))
    if not 0 < n < 200:
        fail("%s: %d tokens after Ctrl-C, expected a partial completion" % (name, n))
    if "Completion: run #%d, %d tokens" % (run_id, n) not in s:
        fail("%s: the partial completion is not shown:\n%s" % (name, s))
    if p.fmt("#{pane_current_command}") != "qkv":
        fail("%s: qkv is not running after Ctrl-C (%s)" % (name, p.fmt("#{pane_current_command}")))
    shown = headless(p.env, db, "show %d" % run_id)[0]
    if len(shown["ids"]) != n or shown["stop_reason"] != "cancelled":
        fail("%s: run %d has %d ids, stop %s; expected %d, cancelled" % (name, run_id, len(shown["ids"]),
                                                                       shown["stop_reason"], n))
    # an idle Ctrl-C does not quit either
    p.keys("C-c")
    p.wait_text("nothing is running")
    # Ctrl-C right after typing on the command line (a paste, a fast typist) abandons all of it:
    # the terminal raises SIGINT ahead of the keys still unread, which before 2026-12-06 then
    # reached the view ("'o' does nothing here"; in the Rank view x skipped a pending ranking)
    p.keys("Escape")
    p.keys(":")
    p.tmux("send-keys", "-t", "t", "-l", "hello wox", ";", "send-keys", "-t", "t", "C-c")
    time.sleep(1.5)
    s = p.screen()
    if "does nothing here" in s or "wox" in s or "editing" in s or p.fmt("#{pane_current_command}") != "qkv":
        fail("%s: keys typed before Ctrl-C on the command line reached the view:\n%s" % (name, s))
    # a command of several lines of output: its first line on the status line, and where the rest
    # is (the status showed "    81  a" alone before 2026-12-06)
    command(p, 'tokenize "a b c"')
    p.wait(lambda t: re.search(r"tokenize: +\d+  a \(and \d+ more lines: the Log, 6\)", t), "the first line and the rest")
    # a second Enter typed while rank generates (seconds per candidate here) is dropped, not applied
    # to the candidates once they show: it stored the default order of candidates nobody had read
    command(p, 'rank "Hello" k=2 max=20')
    p.keys("Enter")
    s = p.wait_text("typed while the candidates were generated dropped")
    if re.search(r"ranking \d+ stored", s):
        fail("%s: an Enter typed while rank generated stored a ranking:\n%s" % (name, s))
    # q asks; Ctrl-C withdraws the question with the status that asked it: a y after it does not
    # quit (the question stayed armed, hidden, and y dropped the ranking and quit)
    p.keys("q")
    p.wait_text("quit and drop the unfinished ranking? y/n")
    p.keys("C-c")
    p.wait_text("Ctrl-C: not quitting")
    p.keys("y")
    time.sleep(1)
    if p.fmt("#{pane_current_command}") != "qkv":
        fail("%s: y after Ctrl-C withdrew the quit question quit qkv" % name)
        return
    p.keys("x")
    p.wait_text("skipped")


def save_csv(p, path):
    """Run save PATH on the command line; the rows of the CSV written, split at commas."""
    command(p, "save " + path)
    p.wait_text("saved")
    with open(path) as f:
        return [r.split(",") for r in f.read().strip().split("\n")]


def scenario_other_views(p, tmp, name, rid):
    """Positions (sinusoidal, cosine, saved as CSV), history (runs, show; the ranking rid stored in the
    TUI listed and shown with its tie), help."""
    p.keys("3")
    p.wait_text("sinusoidal position encoding: 64 positions x 128 dimensions")
    p.keys("c")
    p.wait_text("cosine similarity of 64 positions")
    rows = save_csv(p, os.path.join(tmp, name + "-pe.csv"))
    if len(rows) != 65 or len(rows[1]) != 65:
        fail("%s: the positions CSV is %d rows, not 1 + 64" % (name, len(rows)))
    p.keys("5")
    s = p.wait(lambda s: "History:" in s and " rank " in s, "the history with the rank candidates")
    p.keys("Enter")
    p.wait(lambda s: re.search(r"run \d+  \d{4}-\d\d-\d\d", s), "the run shown in the history view")
    # t: the rankings, the one ranked in the TUI first (stored as 2 1 4=3: candidates 3 and 4 tied)
    p.keys("Escape")
    p.keys("t")
    row = re.compile(r"#%d\s+\d{4}-\d\d-\d\dT\d\d:\d\d\s+-\s+4\s+2 1 3=4\s+Once upon\s+note: close \"call\"" % rid)
    p.wait(lambda s: " 1 ranking " in s and row.search(s), "ranking %d listed in the history view" % rid)
    p.keys("Enter")
    wants = ["\u2500 ranking %d \u2500" % rid, "order 2 1 3=4", "note: " + NOTE, "rank 1  candidate 2, run",
             "rank 2  candidate 1, run", "rank 3 (tie)  candidate 3, run", "rank 3 (tie)  candidate 4, run"]
    p.wait(lambda s: all(w in s for w in wants), "ranking %d shown with %s" % (rid, wants))
    p.keys("t")
    p.wait(lambda s: " rank " in s and "r replay" in s, "the runs again")
    p.keys("?")
    p.wait_text("Keys of the History view")
    p.keys("Escape")
    p.wait_text("History:")
    p.keys("1")
    p.wait_text("Prompt")


SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def reversed_text(line):
    """The characters of a captured line (capture-pane -e) drawn in reverse video, runs joined by '|'."""
    out, rev, pos = [], False, 0
    for m in list(SGR.finditer(line)) + [None]:
        chunk = line[pos:m.start()] if m else line[pos:]
        if rev:
            out.append(chunk)
        elif out and out[-1] != "|":
            out.append("|")
        if not m:
            break
        pos = m.end()
        codes = m.group(1).split(";") if m.group(1) else ["0"]
        for c in codes:
            if c in ("0", ""):
                rev = False
            elif c == "7":
                rev = True
            elif c == "27":
                rev = False
    return "".join(out).strip("|")


def row_with(s, text):
    """The first row of screen s holding text (or "")."""
    return next((r for r in s.split("\n") if text in r), "")


def scenario_new_user(p, tmp, db, name):
    """What a new user tries first, and every view and key not covered above, checking after each key
    the screen a person would see: views 7 (Help: filled at once by its key) and 6 (Log), Tab and F1;
    Rank's r (ranks the lab's prompt at once, as its hint says); the lab keys < > + - h l a; positions
    p [ ] { }; history / (filter) and r (replay); :q."""
    start_qkv(p, db)
    p.wait_text("untrained-gpt2-tiny")
    # 7 straight away: the help, with the keys of the view left (Lab) and the commands
    p.keys("7")
    # wait for the whole text (a capture may catch the screen half painted), or its failure
    s = p.wait(lambda s: ("Keys of the Lab view" in s and "Everywhere" in s) or "(empty)" in s, "the help view")
    if "Keys of the Lab view" not in s or "Everywhere" not in s:
        fail("%s: key 7 shows the help view without its text:\n%s" % (name, s))
    if any(len(r) > W for r in s.split("\n")):
        fail("%s: help rows wider than the terminal" % name)
    p.keys("Escape")
    p.wait(lambda s: "Prompt" in s and "e edit" in s, "Esc back to the lab")
    # an error longer than the status line says where it is whole: the Log view (it was cut with
    # nothing to say so); 6 shows it there
    command(p, 'generate "x" %s=1' % ("z" * 30))
    s = p.wait_text("error: generate: unknown option")
    status = [r for r in s.split("\n") if "error: generate: unknown option" in r][0]
    if W < 200 and not status.rstrip().endswith("(6: Log)"):
        fail("%s: a long error on the status line does not point to the Log view: %r" % (name, status))
    p.keys("6")
    p.wait(lambda s: "> generate" in s and "system)" in s, "the whole error in the Log view")
    p.keys("1")
    p.wait(lambda s: "Prompt" in s and "e edit" in s, "back to the lab")
    # Tab walks the views in order, Shift-Tab back
    for want in ("Nothing to show yet", "sinusoidal position encoding: 64 positions", "No ranking pending",
                 "History:", "> model", "Keys of the Log view", "no converted model",
                 "heads on 100 tokens (repeated random)", "no experiment yet", "No curve shown yet.", "e edit, g"):
        p.keys("Tab")
        p.wait_text(want)
    p.keys("BTab")  # back from the lab to the last view, Training
    p.wait_text("No curve shown yet.")
    p.keys("BTab")  # Experiments
    p.wait_text("no experiment yet")
    p.keys("BTab")  # Heads (without a prompt: heads induction)
    p.wait_text("heads on 100 tokens (repeated random): induction")
    p.keys("BTab")  # the quantization view, then the help with its keys
    p.wait_text("no converted model")
    p.keys("BTab")
    p.wait_text("Keys of the Quant view")
    p.keys("Escape")
    p.wait_text("no converted model")
    p.keys("1")
    p.wait(lambda s: "Prompt" in s and "e edit" in s, "back to the lab")
    # F1 in the Log view: the Log's keys
    p.keys("6")
    p.wait(lambda s: "> model" in s and "> set" in s and "Prompt" not in s, "the log with the start-up commands")
    p.keys("F1")
    p.wait_text("Keys of the Log view")
    p.keys("Escape")
    p.wait(lambda s: "> model" in s and "Keys of" not in s, "Esc back to the log")

    # Rank: r with no prompt in the lab says where to type one; with a prompt it ranks at once
    p.keys("4")
    p.wait_text("No ranking pending. Press r")
    p.keys("r")
    p.wait_text("the lab's prompt is empty")
    p.keys("1")
    p.keys("e")
    p.wait_text("editing:")
    p.type("The cat sat")
    p.keys("Escape")
    p.wait_text("e edit, g")
    command(p, "set stop false")  # six tokens, even when the random weights sample <|endoftext|>
    command(p, "set max 6")       # (it runs after set stop)
    p.wait_text("max 6")
    headless(p.env, db, 'generate "Hello" max=3')  # another run in the log (the lab keeps its prompt)
    p.keys("4")
    p.wait_text("No ranking pending")
    p.keys("r")
    s = p.wait_text('Rank 4 candidates for "The cat sat"')
    s = p.wait_text("Enter runs:  order 1 2 3 4")
    last = s.rstrip("\n").split("\n")[-1]
    if last.startswith(":"):
        fail("%s: r left a command line open (%r) instead of ranking" % (name, last))
    p.keys("Enter")
    s = p.wait(lambda s: re.search(r"ranking (\d+) stored", s), "the ranking stored")
    rid = int(re.search(r"ranking (\d+) stored", s).group(1))
    # n after submitting: the note goes with the ranking just stored
    p.keys("n")
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1] == "note:", "the note's prompt on the command line")
    p.type("noted after")
    p.keys("Enter")
    p.wait_text("ranking %d stored, note: noted after" % rid)
    (rk,) = headless(p.env, db, "show ranking=%d" % rid)
    if rk["prompt"] != "The cat sat" or rk["k"] != 4 or rk["order"] != [[1], [2], [3], [4]] or \
            rk["note"] != "noted after":
        fail("%s: r, Enter, n stored %r" % (name, {k: rk[k] for k in ("prompt", "k", "order", "note")}))

    # the lab: generate, then < > choose a parameter (shown in reverse video), + - change it
    p.keys("1")
    p.keys("g")
    s = p.wait(lambda s: re.search(r"^run #(\d+): 6 tokens", s, re.M), "the generation")
    run_id = int(re.search(r"^run #(\d+): 6 tokens", s, re.M).group(1))

    def params():
        sc = p.screen(colours=True)
        row = next(r for r in sc.split("\n") if "temperature" in r and "top_p" in r and "seed" in r)
        return SGR.sub("", row), reversed_text(row)

    def param_state(what, pred):
        end = time.time() + TIMEOUT
        while time.time() < end:
            plain, rev = params()
            if pred(plain, rev):
                return plain, rev
            time.sleep(0.1)
        fail("%s: after %s the parameters read %r (reverse video: %r)" % (name, what, plain, rev))
        return plain, rev

    param_state("starting", lambda t, r: r.startswith("max") and "6" in r)
    p.keys(">")
    param_state(">", lambda t, r: r.startswith("temperature"))
    p.keys(">")
    param_state("> >", lambda t, r: r.startswith("top_k"))
    p.keys("+")
    param_state("+ on top_k", lambda t, r: "top_k 1  " in t and r.startswith("top_k") and "1" in r)
    p.wait_text("top_k 1  top_p")  # the status line: set's answer
    p.keys("-")
    param_state("- on top_k", lambda t, r: "top_k 0 (off)" in t)
    p.keys("<")
    param_state("<", lambda t, r: r.startswith("temperature"))
    p.keys("-")
    param_state("- on temperature", lambda t, r: re.search(r"temperature 0\.9\b", t))
    p.keys("+")
    param_state("+ on temperature", lambda t, r: re.search(r"temperature 1\b", t))
    # h l: pick a completion token; its probability is the run's
    (shown,) = headless(p.env, db, "show %d" % run_id)
    p.keys("h")
    s = p.wait_text("token 6/6")
    p.keys("h")
    # the whole readout, not only its first words: a slow redraw (the sanitizer build) can leave
    # "token 5/6" on screen before its probability
    tok5 = r"token 5/6 .* p ([0-9.]+)\s+logprob (-?[0-9.]+)"
    s = p.wait(lambda t: re.search(tok5, t), "token 5's probability readout")
    m = re.search(tok5, s)
    if not m or abs(float(m.group(2)) - shown["logprobs"][4]) > 2e-3:
        fail("%s: token 5 reads %r, the run's logprob is %g" % (name, m and m.group(0), shown["logprobs"][4]))
    p.keys("l")
    p.wait_text("token 6/6")
    # a: the attention of prompt + completion
    p.keys("a")
    p.wait_text("run #%d: 11 prompt + 6 generated tokens" % run_id)
    # the cursor on the chosen token's row (generated token 6: position 16), not at (0, 0)
    p.wait(lambda s: "(16,16)" in s, "the attention cursor on the chosen token's row")
    # left in the model view, the Attention view still shows the Lab's token by `a`: one head's
    # map, the cursor on its row (before 2026-12-06 the thumbnails, the token lost)
    p.keys("m")
    p.wait_text("model view:")
    p.keys("1")
    p.keys("h")
    p.wait_text("token 5/6")
    p.keys("a")
    p.wait(lambda s: "(15,15)" in s and "model view:" not in s, "a from the model view: the token's row")

    # positions: p switches sinusoidal/learned, [ ] the length, { } the width
    p.keys("3")
    p.wait_text("sinusoidal position encoding: 64 positions x 128 dimensions")
    p.keys("p")
    p.wait_text("learned position encoding: 64 positions x 128 dimensions")
    p.keys("[")
    p.wait_text("learned position encoding: 56 positions x 128 dimensions")
    p.keys("]")
    p.wait_text("learned position encoding: 64 positions x 128 dimensions")
    p.keys("p")
    p.wait_text("sinusoidal position encoding: 64 positions x 128 dimensions")
    p.keys("{")
    p.wait_text("sinusoidal position encoding: 64 positions x 96 dimensions")
    p.keys("}")
    p.wait_text("sinusoidal position encoding: 64 positions x 104 dimensions")
    p.keys("]")
    p.wait_text("sinusoidal position encoding: 72 positions x 104 dimensions")
    rows = save_csv(p, os.path.join(tmp, name + "-new-pe.csv"))
    (ref,) = headless(p.env, db, "pe sinusoidal len=72 dim=104")
    got = [float(x) for x in rows[9][1:]]
    if len(rows) != 73 or len(got) != 104 or max(abs(a - b) for a, b in zip(got, ref["matrix"][8])) > 1e-6:
        fail("%s: the saved positions are not pe sinusoidal len=72 dim=104 (%d rows)" % (name, len(rows)))

    # history: / filters (the Hello run goes), r replays the chosen run in the lab
    p.keys("5")
    p.wait(lambda s: "History:" in s and "Hello" in s and "The cat sat" in s, "the runs, Hello among them")
    p.keys("/")  # the filter's text alone: a typed quote is part of it (it ended the string)
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith('filter runs:'), "the filter's prompt")
    p.type('"cat')
    p.keys("Enter")
    p.wait_text('(history 200 "\\"cat")')
    p.keys("/")
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith('filter runs:'), "the filter's prompt")
    p.type("cat")
    p.keys("Enter")
    s = p.wait_text('(history 200 "cat")')
    listed = [r for r in s.split("\n") if re.match(r"#\d+ ", r)]
    if not listed or any("Hello" in r for r in listed) or not all("The cat sat" in r for r in listed):
        fail("%s: the filtered history lists %r" % (name, listed))
    top = int(listed[0].split()[0][1:])
    p.keys("r")
    s = p.wait(lambda s: re.search(r"replay of run #%d: identical; run #\d+: \d+ tokens?" % top, s),
               "the replay of run %d in the lab" % top)
    if "Prompt" not in s:
        fail("%s: the replay is not shown in the lab:\n%s" % (name, s))
    # the log (6) holds the commands run and their output
    p.keys("6")
    p.wait(lambda s: "> replay %d" % top in s and "identical" in s, "the replay in the log")
    command(p, "q")
    wait_shell(p)


MAP_GLYPHS = re.compile("[\u2580\u2584\u2588\u00b7]")  # a thumbnail's cells: half blocks, the masked dot


def model_grid(s):
    """The model view's thumbnail grid on screen s, and its footer (the readout's row). The grid:
    {layer: (the text rows its maps fill, whether they carry the selection mark)}, from the runs of
    rows holding map cells past the label column, each named by the label L<n> on one of its rows."""
    rows = s.split("\n")
    top = next((i for i, r in enumerate(rows) if re.match(r" +h0 ", r)), len(rows))
    foot = next((r for r in rows if re.match(r"layer \d+ (head \d+|mean over heads): ", r)), "")
    grid, run = {}, []
    for r in rows[top + 1:] + [""]:
        if MAP_GLYPHS.search(r[4:]):
            run.append(r)
            continue
        names = [m.group(1) for m in (re.match(r"L(\d+)", x[:3]) for x in run) if m]
        if run:
            grid[int(names[0]) if len(names) == 1 else "unnamed %r" % run] = \
                (len(run), any(x[3:4] == "\u258c" for x in run))
        run = []
    return grid, foot


def scenario_deep_model_view(p, tmp, db, model, name, n_layer):
    """A model deeper than the screen in the model view: each thumbnail at least two text rows tall
    (one before 2026-12-06: twelve layers in a 24-row terminal squeezed into a row each), the grid
    scrolling with the selection as the arrow keys move it past the bottom and PgUp moves back, the
    footer naming the layers shown when not all are."""
    start_qkv(p, db, model)
    command(p, 'attention "The cat sat on the mat and looked at the dog" layer=all head=all')

    def check(s, sel, what):
        """The layers shown on screen s, checked: thumbnails two rows tall or more, set apart, in
        order, sel among them selected, and the footer naming them."""
        grid, foot = model_grid(s)
        shown = sorted(l for l in grid if isinstance(l, int))
        if not shown or len(shown) < len(grid) or any(h < 2 for h, _ in grid.values()):
            fail("%s: %s: thumbnails less than two rows tall or not apart (layer: rows, selected) %r:\n%s"
                 % (name, what, grid, s))
        elif shown != list(range(shown[0], shown[-1] + 1)):
            fail("%s: %s: layers %r shown out of order:\n%s" % (name, what, shown, s))
        elif sel not in grid or not grid[sel][1] or any(grid[l][1] for l in shown if l != sel):
            fail("%s: %s: layer %d is not shown selected:\n%s" % (name, what, sel, s))
        m = re.search(r"layers (\d+)-(\d+) of %d\b" % n_layer, foot)
        said = list(range(int(m.group(1)), int(m.group(2)) + 1)) if m else \
            list(range(n_layer)) if "all shown" in foot else None
        if said is None:
            fail("%s: %s: the footer does not say which layers are shown: %r" % (name, what, foot))
        elif shown and said != shown:
            fail("%s: %s: layers %d-%d shown, the footer says %r" % (name, what, shown[0], shown[-1], foot))
        return shown

    s = p.wait(lambda s: "model view: %d layers" % n_layer in s and "layer 0 head 0: largest weight" in s,
               "the model view of %d layers" % n_layer)
    shown = check(s, 0, "at first")
    if H <= 24 and len(shown) == n_layer:
        fail("%s: %d layers of two rows each cannot fit %d rows: %r" % (name, n_layer, H, shown))
    # arrows down past the last layer shown: the grid follows
    for _ in range(n_layer - 1):
        p.keys("Down")
    s = p.wait_text("layer %d head 0: largest weight" % (n_layer - 1))
    shown = check(s, n_layer - 1, "after %d Down" % (n_layer - 1))
    if shown and shown[-1] != n_layer - 1:
        fail("%s: the last layer is not at the bottom of the grid: %r" % (name, shown))
    p.keys("PPage")
    s = p.wait(lambda s: re.search(r"layer \d+ head 0: largest weight", s) and
               "layer %d head 0:" % (n_layer - 1) not in s, "PgUp to move up a screen")
    sel = int(re.search(r"layer (\d+) head 0: largest weight", s).group(1))
    check(s, sel, "after PgUp")
    p.keys("q")
    wait_shell(p)


def scenario_encoder(p, tmp, db, model, name):
    """An encoder (BERT): its attention is shown without the causal mask (the upper triangle holds
    the values headless attention gives), and a similarity matrix of texts is a heatmap."""
    start_qkv(p, db, model)
    p.wait_text("bert")
    text = "the cat sat on the mat"
    ref = headless(p.env, db, 'attention "%s" layer=0 head=0' % text, model=model)[0]
    tokens, matrix = ref["tokens"], ref["matrix"]
    command(p, 'attention "%s"' % text)
    s = p.wait(lambda s: readout(s), "the cursor readout of the encoder's head view")
    # the last key of the first query: above the diagonal, empty for a decoder
    last = len(tokens) - 1
    for _ in range(last):
        p.keys("l")
    s = p.wait(lambda s: readout(s)[:2] == (0, last), "the cursor at (0,%d)" % last)
    _, _, _, val = readout(s)
    if not matrix[0][last] > 0 or abs(val - matrix[0][last]) > 5e-4 * max(1.0, matrix[0][last]):
        fail("%s: above the diagonal the encoder's map reads %g, headless gives %g" % (name, val, matrix[0][last]))
    rows = s.split("\n")
    if any(re.search("[\u2580\u2584\u2588 ]\u00b7\u00b7+", line) for line in rows[3:]):
        fail("%s: an encoder's attention is drawn with a masked triangle:\n%s" % (name, s))
    command(p, 'similarity "a cat sat" "a dog sat" "the capital of France"')
    s = p.wait(lambda s: "cosine similarity of 3 texts" in s and visible("a dog sat") in s, "the similarity heatmap")
    if visible("a dog sat") not in s or "the\u00b7capital" not in s:
        fail("%s: the similarity heatmap lacks its text labels:\n%s" % (name, s))
    sim = headless(p.env, db, 'similarity "a cat sat" "a dog sat" "the capital of France"', model=model)[0]["matrix"]
    p.keys("j")
    s = p.wait(lambda s: readout(s)[:2] == (1, 0), "the cursor at (1,0) of the similarity matrix")
    if abs(readout(s)[3] - sim[1][0]) > 5e-4:
        fail("%s: similarity (1,0) reads %g, headless gives %g" % (name, readout(s)[3], sim[1][0]))
    p.keys("q")
    wait_shell(p)


SHADES = [" ", "\u2591", "\u2592", "\u2593", "\u2588"]
QREADOUT = re.compile(r"pos (\d+) .*?KL (\S+)\s+top-1 (same|differs)\s+max \|dlogit\| (\S+)")


def scenario_quant(p, tmp, db, model, name):
    """View 8: quantize draws each layer's weight-error histogram with the RMS error headless
    quantize reports; compare draws the per-position KL strip (shade levels and top-1 marks as the
    headless KL gives them) and reads out the position under the cursor."""
    start_qkv(p, db, model)
    p.keys("8")
    p.wait_text("no converted model")
    text = "the cat sat on a mat"
    ref_q, ref_c = headless(p.env, db, "quantize q4_0", 'compare "%s"' % text, model=model)
    command(p, "quantize q4_0")
    s = p.wait(lambda s: "Weight error" in s and "as Q4_0" in s, "the weight-error histograms")
    rows = s.split("\n")
    for layer in ref_q["layers"]:
        label = str(layer["layer"]) if layer["layer"] >= 0 else "other"
        row = next((r for r in rows if r.startswith(label + " ") and "%" in r), None)
        if row is None:
            fail("%s: no histogram row for layer %s:\n%s" % (name, label, s))
            continue
        pct = "%.3f%%" % (100 * layer["rel_err"])
        bars = row[7:7 + ref_q["hist_bins"]]
        want_bars = [b > 0 for b in layer["hist"]]
        if pct not in row or [c != " " for c in bars.ljust(len(want_bars))] != want_bars or "\u2588" not in bars:
            fail("%s: layer %s row %r: expected rms err/w %s and bars where the histogram %s is non-zero"
                 % (name, label, row, pct, layer["hist"]))
    command(p, 'compare "%s"' % text)
    s = p.wait(lambda s: "KL per position" in s and QREADOUT.search(s), "the KL strip")
    kl, top1 = ref_c["kl"], ref_c["top1"]
    mx = max(kl)
    want = "".join(SHADES[0 if k <= 0 else min(4, max(1, math.ceil(4 * k / mx)))] for k in kl)
    want_top = "".join("\u00b7" if t else "\u00d7" for t in top1)
    rows = s.split("\n")
    strip = next((r for r in rows if r.startswith("KL ") and "per position" not in r), "").ljust(6 + len(kl))
    marks = next((r for r in rows if r.startswith("top-1 ")), "").ljust(6 + len(kl))
    if strip[6:6 + len(kl)] != want or marks[6:6 + len(kl)] != want_top:
        fail("%s: KL strip %r / %r, expected %r / %r (KL %s, top-1 %s)" % (name, strip[6:], marks[6:], want, want_top,
                                                                             kl, top1))
    for _ in range(3):
        p.keys("l")
    s = p.wait(lambda s: QREADOUT.search(s).group(1) == "3", "the readout of position 3")
    m = QREADOUT.search(s)
    if abs(float(m.group(2)) - kl[3]) > 1e-3 * kl[3] + 1e-12 or (m.group(3) == "same") != top1[3] or \
            abs(float(m.group(4)) - ref_c["max_logit_diffs"][3]) > 1e-3:
        fail("%s: position 3 reads %r, headless KL %g top-1 %s max %g" % (name, m.group(0), kl[3], top1[3],
                                                                         ref_c["max_logit_diffs"][3]))


def scenario_heads(p, tmp, db, model, name):
    """The Heads view (9): `heads` as a layer x head heatmap whose cells read what headless heads
    gives, s switching the statistic; the logit lens and patching heatmaps; layersim (CKA, cosine)
    and probe train modes read as headless; save exports the view."""
    start_qkv(p, db, model)
    text, clean, corrupt = "the cat sat on the mat", "the cat sat", "the dog sat"
    ref = headless(p.env, db, 'heads "%s"' % text, 'lens "%s"' % clean, 'patch "%s" "%s" wrong=#5' % (clean, corrupt),
                   model=model)
    heads, lens, patch = ref
    n_head = heads["n_head"]
    command(p, 'heads "%s"' % text)
    s = p.wait(lambda s: "heads on %d tokens: entropy" % len(heads["tokens"]) in s and "9 Hea" in s,
               "the Heads view with the entropy heatmap")
    s = p.wait(lambda s: readout(s), "the cursor readout of the Heads view")
    if abs(readout(s)[3] - heads["heads"][0]["entropy"]) > 5e-4 * max(1, heads["heads"][0]["entropy"]):
        fail("%s: Heads (0,0) entropy reads %g, headless %g" % (name, readout(s)[3], heads["heads"][0]["entropy"]))
    p.keys("s")
    p.wait_text("prev_token")
    p.keys("j")
    s = p.wait(lambda s: "prev_token" in s and readout(s)[:2] == (1, 0), "the cursor at (1,0) of prev_token")
    want = heads["heads"][n_head]["prev_token"]
    if abs(readout(s)[3] - want) > 5e-4:
        fail("%s: Heads (1,0) prev_token reads %g, headless %g" % (name, readout(s)[3], want))
    rows = save_csv(p, os.path.join(tmp, name + "-heads.csv"))
    if len(rows) != 1 + heads["n_layer"] or len(rows[1]) != 1 + n_head:
        fail("%s: the Heads CSV is %d x %d, not 1 + layers x 1 + heads" % (name, len(rows), len(rows[1])))
    command(p, 'lens "%s"' % clean)
    s = p.wait(lambda s: "logit lens" in s and "top token" in s, "the logit lens heatmap")
    s = p.wait(lambda s: readout(s)[:2] == (0, 0), "the lens readout")
    if abs(readout(s)[3] - lens["layers"][0]["target_prob"][0]) > 5e-4:
        fail("%s: lens (0,0) reads %g, headless %g" % (name, readout(s)[3], lens["layers"][0]["target_prob"][0]))
    # i: heads induction, and the status line with it (it kept the lens's line)
    p.keys("i")
    s = p.wait(lambda s: "(repeated random): induction" in s, "the induction heatmap")
    status = s.rstrip("\n").split("\n")[-2]
    if not status.startswith("heads: ") or "induction" not in status:
        fail("%s: after i the status line reads %r" % (name, status))
    command(p, 'patch "%s" "%s" wrong=#5' % (clean, corrupt))
    s = p.wait(lambda s: "patching" in s and ": resid" in s, "the patching heatmap (residual stream)")
    last = len(patch["resid"]) - 1
    for _ in range(last):
        p.keys("j")
    T = len(patch["resid"][0])
    for _ in range(T - 1):
        p.keys("l")
    s = p.wait(lambda s: readout(s)[:2] == (last, T - 1), "the cursor at the last layer and position")
    if abs(readout(s)[3] - 1.0) > 1e-3:
        fail("%s: patching the last residual at the last position reads %g, not 1" % (name, readout(s)[3]))
    p.keys("s")
    p.wait_text(": heads")
    p.keys("s")
    p.wait_text(": mlp")
    p.keys("1")
    p.wait_text("Prompt")
    p.keys("9")
    p.wait_text(": mlp")
    # layer similarity and a probe: their modes named on the mode line, cells read as headless
    sim, probe = headless(p.env, db, 'layersim "%s"' % text, "probe train number n=20 seed=2", model=model)
    command(p, 'layersim "%s"' % text)
    p.wait(lambda s: "layer similarity on %d tokens" % len(sim["tokens"]) in s and ": cka" in s and "mode:" in s,
           "the layersim mode (CKA)")
    p.keys("l")
    s = p.wait(lambda s: ": cka" in s and readout(s)[:2] == (0, 1), "the cursor at (0,1) of the CKA")
    if abs(readout(s)[3] - sim["cka"][0][1]) > 5e-4:
        fail("%s: layersim CKA (0,1) reads %g, headless %g" % (name, readout(s)[3], sim["cka"][0][1]))
    p.keys("s")
    p.wait_text(": cosine")
    command(p, "probe train number n=20 seed=2")
    s = p.wait(lambda s: "probe on 'number'" in s and "majority baseline %.3f" % probe["majority"] in s,
               "the probe mode with its baseline")
    s = p.wait(lambda s: "probe on" in s and readout(s)[:2] == (0, 0), "the probe readout")
    if abs(readout(s)[3] - probe["layers"][0]["accuracy"]) > 5e-4:
        fail("%s: probe (emb, accuracy) reads %g, headless %g" % (name, readout(s)[3], probe["layers"][0]["accuracy"]))
    rows = save_csv(p, os.path.join(tmp, name + "-probe.csv"))
    if len(rows) != 1 + len(probe["layers"]) or len(rows[1]) != 4:
        fail("%s: the probe CSV is %d x %d, not 1 + layers x 1 + 3" % (name, len(rows), len(rows[1])))
    p.keys("q")
    wait_shell(p)


def scenario_small_and_quit(p, name):
    """Below the minimum size a message, back to normal when enlarged; q restores the terminal. With
    a ranking pending, q there asks its question on that screen (the status line is not shown)."""
    command(p, 'rank "Hi" k=2 max=2')
    p.wait(lambda s: "Rank 2 candidates" in s, "a pending ranking")
    p.resize(30, 8)
    p.wait(lambda s: "needs a terminal" in s and "30x8" in s, "the minimum-size message")
    p.keys("q")
    p.wait(lambda s: "quit anyway and drop it? y/n" in s.replace("\n", " ").replace("  ", " "), "the quit question on the small screen")
    p.keys("n")
    p.wait(lambda s: "needs a terminal" in s and "30x8" in s, "the minimum-size message again")
    # a narrow view bar names every view apart (Help and Heads were both "He")
    p.resize(72, 15)
    s = p.wait(lambda s: "needs a terminal" not in s and re.search(r"\b8 \w", s.split("\n")[1]), "the 72-column view bar")
    names = re.findall(r"\b([0-9]) (\w+)", s.split("\n")[1])
    got = [n for _, n in names]
    if len(got) < 9 or len(set(got)) != len(got):
        fail("%s: the 72-column view bar names views alike: %r" % (name, names))
    # narrower, every view still: the others by their keys (below 60 columns 8, 9, 0 and Training
    # were cut off)
    p.resize(50, 15)
    want = ["1", "2", "3", "4", "Rank*", "5", "6", "7", "8", "9", "0", "T"]
    p.wait(lambda s: s.split("\n")[1].split()[:len(want)] == want, "the 50-column view bar: %s" % " ".join(want))
    p.resize(W, H)
    p.wait(lambda s: "1 Lab" in s and "needs a terminal" not in s, "the interface back")
    p.keys("x")  # the ranking skipped: q then quits without asking
    p.wait(lambda s: "skipped" in s, "the ranking skipped")
    if p.fmt("#{alternate_on}") != "1":
        fail("%s: qkv does not use the alternate screen" % name)
    p.keys("q")
    wait_shell(p)
    if p.fmt("#{alternate_on}") != "0":
        fail("%s: the alternate screen is still on after quitting" % name)
    p.type("echo \"S=$(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo|isig|opost)' | tr '\\n' ' ')\"")
    p.keys("Enter")

    def answer(s):
        return [l for l in s.split("\n") if re.match(r"^S=[-a-z ]+$", l.strip())]

    s = p.wait(answer, "stty's answer")
    flags = answer(s)[-1].strip()[2:].split()
    for flag in ["icanon", "echo", "isig", "opost"]:
        if flag not in flags:
            fail("%s: terminal not restored: stty shows %r" % (name, flags))
            break


def leave(p):
    """Esc, and wait for the command line or the editor to close (a key sent at once after Esc is
    read as Alt and that key)."""
    p.keys("Escape")
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith("press :"), "the command line closed")


def typed_while_small(p, text, seen):
    """Shrink the terminal below the minimum, type text, enlarge it again: seen(screen) must hold."""
    p.resize(40, 10)
    p.wait(lambda s: "needs a terminal" in s and "40x10" in s, "the minimum-size message")
    p.type(text)
    time.sleep(0.3)
    p.resize(W, H)
    p.wait(seen, "%r typed while the terminal was too small" % text)


def scenario_keys(p, tmp, db, name):
    """Keys as terminals send them, run under the C locale and TERM=screen (an SSH session that
    forwarded no locale): non-ASCII keys typed and pasted into the command line (the C locale
    dropped the character and the keys after it: 'tokenize "caf' and an open quote), an escape
    sequence screen's description does not name (Ctrl-Right's ESC [1;5C ran as ESC, '[', '1',
    ';', '5', 'C': four view switches), Home and End as rxvt sends them, keys typed while the
    terminal is below the minimum size (a q quit at once, unasked, the prompt lost; the others were
    dropped), and a long paste whole."""
    p.type("env LANG=C LC_ALL=C TERM=screen %s --db %s" % (QKV, db))
    p.keys("Enter")
    p.wait_text("1 Lab")
    command(p, 'tokenize "caf\u00e9 na\u00efve \u00fcber"')
    p.wait(lambda s: "tokenize:" in s and "error" not in s, "the tokenize result under the C locale")
    out = headless(p.env, db, 'tokenize "caf\u00e9 na\u00efve \u00fcber"', model="builtin")[0]
    p.keys("6")
    p.wait_text("%d tokens" % out["count"])  # every byte of the three accented letters
    p.keys("1")
    p.wait_text("1 Lab")
    # a 2-byte key taken back whole by Backspace
    p.keys(":")
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith(":"), "the command line")
    p.type('tokenize "x\u00e9')
    p.keys("BSpace")
    p.type('e"')
    s = p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith(':tokenize "xe"'), "backspace over a 2-byte key")
    leave(p)
    # an escape sequence screen does not name: ignored whole, the view unchanged
    p.keys("2")
    p.wait(lambda s: "Attention" in s.split("\n")[1], "the attention view")
    before = p.lines()[1]
    p.tmux("send-keys", "-t", "t", "-H", "1b", "5b", "31", "3b", "35", "43")
    s = p.wait_text("a key qkv does not know (ESC [1;5C) was ignored")
    if s.split("\n")[1] != before or "does nothing here" in s:
        fail("%s: ESC [1;5C ran as keys: %r" % (name, s.split("\n")[:2] + s.split("\n")[-3:]))
    # Home and End as rxvt and PuTTY send them, on the command line
    p.keys(":")
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith(":"), "the command line")
    p.type('okenize "ab"')
    p.tmux("send-keys", "-t", "t", "-H", "1b", "5b", "31", "7e")  # Home: ESC [ 1 ~
    p.type("t")
    p.tmux("send-keys", "-t", "t", "-H", "1b", "5b", "34", "7e")  # End: ESC [ 4 ~
    p.type(" special=false")
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith(':tokenize "ab" special=false'), "Home and End")
    leave(p)
    # below the minimum size, typing goes on: the command line, then the prompt editor
    p.keys("1")
    p.wait_text("1 Lab")
    p.keys(":")
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith(":"), "the command line")
    p.type('tokenize "ab')
    typed_while_small(p, 'q cd"', lambda s: s.rstrip("\n").split("\n")[-1].startswith(':tokenize "abq cd"'))
    leave(p)
    p.keys("e")
    p.wait_text("editing the prompt")
    p.type("The ")
    typed_while_small(p, "quick", lambda s: "The quick" in s and "editing the prompt" in s)
    leave(p)
    # a long paste arrives whole (3,900 characters: it took half a minute, painted after each key)
    p.keys(":")
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].startswith(":"), "the command line")
    long = 'tokenize "' + " ".join("word%d" % i for i in range(500)) + ' END"'
    p.type(long)
    p.wait(lambda s: s.rstrip("\n").split("\n")[-1].endswith('END"'), "the pasted command")
    p.keys("Enter")
    want = headless(p.env, db, long, model="builtin")[0]["count"]
    p.wait_text("(and %d more lines" % want)  # the status line: its first line and the count
    p.keys("q")
    wait_shell(p)


def scenario_locked_db(p, tmp, name):
    """Another process holds the database's write lock while a ranking is stored: the status line says
    that qkv waits and for what, Ctrl-C stops the wait with the ranking still pending, and once the lock
    is gone the same Enter stores it."""
    db = os.path.join(tmp, name + ".db")
    start_qkv(p, db)
    command(p, 'rank "Once upon" k=2 max=3')
    p.wait_text("Enter runs:  order 1 2")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE runs SET prompt = prompt")
    try:
        p.keys("Enter")
        s = p.wait_text("for another process to finish writing (Ctrl-C stops waiting)")
        if W >= 120 and db not in s:
            fail("%s: the wait does not name the database file: %r" % (name, s))
        p.keys("C-c")
        p.wait_text("error: order: cannot store the ranking")
        p.wait_text("Enter runs:  order 1 2")  # still pending
        p.keys("6")  # the whole message in the Log view, wrapped where the width (and the
        # length of the temporary folder's path) has it
        p.wait(lambda s: "stopped waiting for another process that holds the database" in " ".join(s.split()),
               "the whole message in the Log view")
        p.keys("4")
        p.wait_text("Enter runs:  order 1 2")
    finally:
        holder.execute("COMMIT")
        holder.close()
    p.keys("Enter")
    s = p.wait(lambda s: re.search(r"ranking (\d+) stored", s), "the ranking stored after the lock went")
    rid = int(re.search(r"ranking (\d+) stored", s).group(1))
    c = sqlite3.connect(db)
    n = c.execute("SELECT count(*) FROM rankings WHERE id = ?", (rid,)).fetchone()[0]
    c.close()
    if n != 1:
        fail("%s: ranking %d is not in the database" % (name, rid))
    p.keys("q")
    wait_shell(p)


def scenario_nothing_to_show(p, tmp, db, name):
    """Positions' p passes over the learned encodings a rotary model lacks without leaving an error on
    the status line; the Heads view's n and c without a prompt in the lab say what they need."""
    start_qkv(p, db, "teach")
    p.keys("3")
    p.wait_text("sinusoidal position encoding: 64 positions x 128 dimensions")
    p.keys("p")
    s = p.wait_text("rotary, theta")
    if "error" in s or "no learned position" in s:
        fail("%s: passing over the learned encodings left a message: %r" % (name, s))
    p.keys("9")
    p.wait(lambda s: "9 Hea" in s and "heads" in s, "the Heads view")
    p.keys("n")
    p.wait_text("lens needs a prompt")
    p.keys("c")
    p.wait_text("layersim needs a prompt")
    p.keys("q")
    wait_shell(p)


def scenario_unlogged(p, tmp, name):
    """A database file that is not one: a generation is shown, said to be not logged (the status
    line and the Lab's heading said "run #0" before 2026-12-06, a run that does not exist)."""
    bad = os.path.join(tmp, "not-a-db.txt")
    with open(bad, "wb") as f:
        f.write(b"not a database\n" * 300)
    start_qkv(p, bad)
    command(p, 'generate "The cat" max=3 seed=1')
    s = p.wait(lambda s: "not logged" in s and "Completion: not logged" in s, "the generation said not logged")
    if "run #0" in s:
        fail("%s: a run that was not logged is shown as run #0:\n%s" % (name, s))
    p.keys("q")
    wait_shell(p)


def sgr_colours(sc):
    """The colour parameters of the SGR sequences in a captured screen (39/49, the defaults, are none)."""
    found = []
    for m in re.finditer("\x1b\\[([0-9;]*)m", sc):
        ps = m.group(1).split(";")
        for p_ in ps:
            if p_.isdigit() and (30 <= int(p_) <= 38 or 40 <= int(p_) <= 48 or 90 <= int(p_) <= 107):
                found.append(m.group(0))
                break
    return found


def scenario_no_color(p, tmp, db, name):
    """NO_COLOR set (no-color.org): the screen has no colour, the heatmaps the ASCII glyph ramp (the
    variable was ignored before 2026-12-07); QKV_COLOR still chooses."""
    p.type("env NO_COLOR=1 %s --db %s" % (QKV, db))
    p.keys("Enter")
    p.wait_text("1 Lab")
    command(p, 'attention "The cat sat on the mat" layer=0 head=0')
    p.wait(lambda s: "layer 1/" in s or "layer 0" in s, "the attention map")
    sc = p.screen(colours=True)
    if sgr_colours(sc):
        fail("%s: colours on the screen with NO_COLOR set: %r" % (name, sgr_colours(sc)[:5]))
    if not any(c in p.screen() for c in "@%#*+="):
        fail("%s: no ASCII ramp glyphs in the heatmap with NO_COLOR set:\n%s" % (name, p.screen()))
    p.keys("q")
    wait_shell(p)
    p.type("env NO_COLOR=1 QKV_COLOR=256 %s --db %s" % (QKV, db))
    p.keys("Enter")
    p.wait_text("1 Lab")
    command(p, 'attention "The cat sat on the mat" layer=0 head=0')
    p.wait(lambda s: "layer 1/" in s or "layer 0" in s, "the attention map")
    if not sgr_colours(p.screen(colours=True)):
        fail("%s: QKV_COLOR=256 gave no colours with NO_COLOR set" % name)
    p.keys("q")
    wait_shell(p)


def scenario_replay_other_model(p, env, db, name):
    """A replay of a run the built-in model (4 layers x 4 heads) made, in a session on another model
    (2 x 3): the replay opens the run's model, and the header and the attention of the run follow
    it (they kept the old model's counts: `a` drew the old model's layers and heads, the header
    named it; before 2026-12-07)."""
    (run,) = headless(env, db, 'generate "abcabc" max=4 seed=1 temperature=0', model="builtin")
    command(p, "replay %d" % run["run_id"])
    p.wait_text("replay of run #%d" % run["run_id"])
    s = p.wait(lambda s: "4 layers x 4 heads" in s.split("\n")[0], "the header naming the replayed run's model")
    p.keys("1")
    p.wait_text("Completion")
    p.keys("a")
    s = p.wait(lambda s: "layer 0/3" in s or "layer 0/1" in s, "the attention of the replayed run")
    if "layer 0/3" not in s or "generated tokens" not in s:
        fail("%s: the attention of the replayed run is not the built-in model's 4 layers:\n%s" % (name, s))


def scenario_lab_foreign_run(p, tmp, db, name):
    """A :generate typed in the Lab while a prompt is being written: the run's prompt shows from its
    first token, the heading names the settings it ran with that the parameter line does not, and u
    brings the prompt being written back (the prompt was dropped without a word, and the line showed
    the session's settings as the run's, before 2026-12-07)."""
    start_qkv(p, db)
    p.keys("e")
    p.type("my own draft")
    p.keys("Escape")
    command(p, 'generate "The cat" max=3 temperature=0')
    s = p.wait(lambda s: "ran with temperature 0 max 3 (the line" in s and "stop:" in s, "the heading naming the run's settings")
    if "my own draft" in s or "The cat" not in s or "u: back to yours" not in s:
        fail("%s: the Lab does not show the run's prompt, or does not say u brings yours back:\n%s" % (name, s))
    p.keys("u")
    s = p.wait_text("my own draft")
    if "of the previous prompt" not in s:
        fail("%s: the draft brought back, the completion is not said to be of the previous prompt:\n%s" % (name, s))
    p.keys("q")
    wait_shell(p)


def main():
    if not have_tmux():
        return 77
    if not os.path.exists(QKV):
        print("error: no qkv binary at %s" % QKV, file=sys.stderr)
        return 1
    with session("qkv-e2e-") as tmp:
        env = dict(os.environ, XDG_STATE_HOME=os.path.join(tmp, "state"), XDG_DATA_HOME=os.path.join(tmp, "data"))
        db = os.path.join(tmp, "qkv.db")
        small = os.path.join(tmp, "small")
        big = os.path.join(tmp, "big")
        headless(env, db, "new-model gpt2 layers=2 heads=3 d=48 ctx=128 seed=7 out=" + small)
        headless(env, db, "new-model gpt2 layers=12 heads=12 d=768 ctx=512 seed=3 out=" + big)
        bert = os.path.join(tmp, "bert")
        headless(env, db, "new-model bert layers=2 heads=2 d=32 ctx=64 seed=5 std=0.3 out=" + bert)

        # 1. the built-in model: lab, attention, model view, ranking, terminal hygiene
        p = Pane(tmp, W, H, "a")
        scenario_lab_attention(p, tmp, db, None, "builtin", "4", "4")
        rid = scenario_rank(p, tmp, db, "builtin")
        scenario_other_views(p, tmp, "builtin", rid)
        scenario_small_and_quit(p, "builtin")
        hist = os.path.join(tmp, "state", "qkv", "history")
        if not os.path.exists(hist) or "rank" not in open(hist, errors="replace").read():
            fail("the command history was not kept under $XDG_STATE_HOME/qkv/: %r" %
                 (open(hist, errors="replace").read() if os.path.exists(hist) else os.listdir(tmp)))
        p.close()

        # 2. a small model written by new-model
        p = Pane(tmp, W, H, "b")
        scenario_lab_attention(p, tmp, db, small, "new-model", "2", "3")
        scenario_replay_other_model(p, env, db, "replay-other-model")
        command(p, "q")  # :q, as vi users type it (the other panes use the q key and the quit command)
        wait_shell(p)
        p.close()

        # 3. a new user's first keys, and every view and key not tried above
        p = Pane(tmp, W, H, "d")
        scenario_new_user(p, tmp, os.path.join(tmp, "new-user.db"), "new-user")
        p.close()

        # 4. an encoder: attention without the causal mask, a similarity heatmap
        p = Pane(tmp, W, H, "e")
        scenario_encoder(p, tmp, db, bert, "encoder")
        p.close()

        # 4b. the Heads view: heads, lens and patch heatmaps
        p = Pane(tmp, W, H, "f")
        scenario_heads(p, tmp, db, small, "heads")
        p.close()

        # 4c. twelve layers in the model view: thumbnails two rows tall, the grid scrolls
        p = Pane(tmp, W, H, "m")
        scenario_deep_model_view(p, tmp, db, big, "deep", 12)
        p.close()

        # 5. quantization: weight-error histograms, the KL strip
        quant = os.path.join(tmp, "quant")
        headless(env, db, "new-model gpt2 layers=2 heads=2 d=64 ctx=64 seed=11 std=0.2 out=" + quant)
        p = Pane(tmp, W, H, "f")
        scenario_quant(p, tmp, db, quant, "quant")
        p.close()

        # 5a. the C locale and TERM=screen: non-ASCII keys, unknown sequences, typing while small
        p = Pane(tmp, W, H, "k")
        scenario_keys(p, tmp, db, "keys")
        p.close()

        # 5b. a database locked by another process while a ranking is stored
        p = Pane(tmp, W, H, "g")
        scenario_locked_db(p, tmp, "locked")
        p.close()

        # 5b'. a database file that is not one: generations are not logged, and say so
        p = Pane(tmp, W, H, "u")
        scenario_unlogged(p, tmp, "unlogged")
        scenario_lab_foreign_run(p, tmp, db, "lab-foreign")
        scenario_no_color(p, tmp, db, "no-color")
        p.close()

        # 5c. the teaching model (rotary positions, no learned ones): keys that have nothing to show
        p = Pane(tmp, W, H, "h")
        scenario_nothing_to_show(p, tmp, db, "teach")
        p.close()

        # 6. a larger model: resize mid-generation, Ctrl-C
        p = Pane(tmp, W, H, "c")
        scenario_generation_resize_cancel(p, tmp, db, big, "large")
        p.keys("q")
        wait_shell(p)
        p.close()
    return finish("tui e2e at %dx%d: ok" % (W, H), " at %dx%d" % (W, H))


if __name__ == "__main__":
    sys.exit(main())
