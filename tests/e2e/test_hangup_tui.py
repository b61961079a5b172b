#!/usr/bin/env python3
"""test_hangup_tui.py - job control and the terminal going away: Ctrl-Z and fg; the terminal going away while the TUI generates (an SSH connection dropped,
a tmux pane killed: SIGHUP) and a polite kill (SIGTERM): the generation stops as at Ctrl-C, its
tokens are logged as a cancelled run, and qkv leaves (SIGTERM: exit status 143, the shell's
prompt back on a terminal qkv restored). Before 2026-12-07 SIGHUP ended qkv at once and the run's
tokens were lost (nothing logged).

Usage: test_hangup_tui.py QKV_BINARY (exits 77 without tmux)
"""
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tui as tt  # noqa: E402


def qkv_pid(p):
    """The pid of qkv, the child of the pane's shell."""
    shell = p.fmt("#{pane_pid}").strip()
    r = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True)
    pids = [int(x) for x in r.stdout.split()]
    if len(pids) != 1:
        raise RuntimeError("qkv's process under the shell %s: %s" % (shell, pids))
    return pids[0]


def wait_gone(pid, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(") ")[-1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def one(tmp, model, how):
    db = os.path.join(tmp, how + ".db")
    status = os.path.join(tmp, how + ".status")
    p = tt.Pane(tmp, 80, 24, "hup-" + how)
    try:
        tt.start_qkv(p, db, model=model, extra="; echo $? > %s" % status)
        pid = qkv_pid(p)
        tt.command(p, 'generate "Once upon a time" max=1000 seed=1 stop=false')
        s = p.wait(lambda s: (lambda m: m and int(m.group(1)) >= 20)(re.search(r"generating: (\d+) tokens", s)),
                   "the generation under way")
        shown = int(re.search(r"generating: (\d+) tokens", s).group(1))
        if how == "hup":
            p.close()  # tmux's server goes: the pane's terminal hangs up (SIGHUP)
        else:
            os.kill(pid, signal.SIGTERM)
        if not wait_gone(pid):
            tt.fail("%s: qkv still running 60 s after the signal" % how)
            os.kill(pid, signal.SIGKILL)
            return
        con = sqlite3.connect(db)
        try:
            rows = con.execute("SELECT stop_reason, json_array_length(ids) FROM runs").fetchall()
        except sqlite3.OperationalError as ex:  # nothing logged, not even the tables made
            rows = [str(ex)]
        con.close()
        if len(rows) != 1 or rows[0][0] != "cancelled" or rows[0][1] < shown:
            tt.fail("%s during a generation: one cancelled run with the %d+ tokens shown expected, the database "
                    "holds %s" % (how, shown, rows))
        if how == "term":
            tt.wait_shell(p)
            with open(status) as f:
                code = f.read().strip()
            if code != "143":
                tt.fail("SIGTERM: exit status %s, expected 143 (128 + 15)" % code)
    finally:
        p.close()


def suspend(tmp):
    """Ctrl-Z gives the terminal back to the shell with qkv stopped, fg brings the screen back (the
    key did nothing: raw mode turns the terminal's suspend key off)."""
    p = tt.Pane(tmp, 80, 24, "tstp")
    try:
        tt.start_qkv(p, os.path.join(tmp, "tstp.db"), model="builtin")
        pid = qkv_pid(p)
        p.keys("C-z")
        p.wait(lambda s: "Stopped" in s and s.rstrip("\n").split("\n")[-1].strip() == "READY$",
               "the shell's prompt with qkv stopped")
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().split(") ")[-1][0]
        if state != "T":
            tt.fail("Ctrl-Z: qkv's state is %s, not stopped (T)" % state)
        p.type("fg")
        p.keys("Enter")
        p.wait(lambda s: "back from Ctrl-Z" in s and "1 Lab" in s, "the screen again after fg")
        p.keys("q")
        tt.wait_shell(p)
    finally:
        p.close()


def main():
    if not tt.have_tmux():
        return 77
    with tt.session("qkv-hangup-e2e-") as tmp:
        model = os.path.join(tmp, "m")
        # a model slow enough to be caught generating: 8 blocks of d=512
        r = subprocess.run([tt.QKV, "--db", os.path.join(tmp, "make.db"), "-e",
                            "new-model gpt2 layers=8 heads=8 d=512 ctx=1024 seed=1 out=" + model],
                           capture_output=True, text=True, timeout=300)
        if r.returncode:
            tt.fail("new-model: " + r.stderr[-300:])
            return 1
        one(tmp, model, "hup")
        one(tmp, model, "term")
        suspend(tmp)
    return tt.finish()


if __name__ == "__main__":
    sys.exit(main())
