#!/usr/bin/python3
"""The out-of-memory handler while the full-screen interface owns the terminal (tmux).

Usage: test_oom_tui.py QKV_BINARY

qkv starts in a 80x24 pane with the test hook QKV_TEST_XALLOC_MAX=1048576 (x* requests above
1 MB fail; the interface needs less than that at this size). The window then grows to 1000x250:
the cell grid of that screen (250,000 cells) is a bookkeeping allocation above the limit, so the
handler runs. Checked: qkv leaves with status 3, its one line "qkv: out of memory (allocating N
bytes)" is on the restored screen, the alternate screen is off and the terminal modes are back
(stty: icanon echo isig opost). Before that, the same start without growing the window works,
so the failure is the resize's. Exit 77 when tmux is missing.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tui as tt  # noqa: E402  (its Pane drives tmux; it reads QKV_BINARY from argv too)

LIMIT = 1 << 20


def shell_answer(p, cmd, key):
    """Run cmd in the pane's shell, which prints KEY=..., and return the value."""
    p.type(cmd)
    p.keys("Enter")
    pat = re.compile(r"^%s=(.*)$" % key)

    def answer(s):
        return [m.group(1) for m in (pat.match(l.strip()) for l in s.split("\n")) if m]

    return answer(p.wait(answer, "the shell's %s" % key))[-1].strip()


def main():
    if not tt.have_tmux():
        return 77
    with tt.session("qkv-oom-tui-") as tmp:
        db = os.path.join(tmp, "qkv.db")
        p = tt.Pane(tmp, 80, 24, "oom")
        cmd = "QKV_TEST_XALLOC_MAX=%d %s --db %s" % (LIMIT, tt.QKV, db)
        # 1. the hook alone leaves the interface working at 80x24
        p.type(cmd)
        p.keys("Enter")
        p.wait_text("1 Lab")
        p.keys("q")
        tt.wait_shell(p)
        if shell_answer(p, 'echo "RC=$?"', "RC") != "0":
            tt.fail("under the hook at 80x24, qkv should start and quit normally")
        p.keys("C-l")
        # 2. grow the window: the cell grid does not fit under the hook
        p.type(cmd)
        p.keys("Enter")
        p.wait_text("1 Lab")
        if p.fmt("#{alternate_on}") != "1":
            tt.fail("qkv does not use the alternate screen")
        p.resize(1000, 250)
        s = p.wait(lambda s: "READY$" in s.split("qkv: out of memory")[-1] and "qkv: out of memory" in s,
                   "the handler's line and the shell prompt")
        lines = [l.rstrip() for l in s.split("\n") if "out of memory" in l]
        if len(lines) != 1 or not re.fullmatch(r"qkv: out of memory \(allocating (\d+) bytes\)", lines[0]) or \
                int(re.search(r"\d+", lines[0]).group()) <= LIMIT:
            tt.fail("expected one line 'qkv: out of memory (allocating N bytes)' with N > %d; got %r" % (LIMIT, lines))
        rc = shell_answer(p, 'echo "RC=$?"', "RC")
        if rc != "3":
            tt.fail("the out-of-memory handler should exit with status 3, not %s" % rc)
        if p.fmt("#{alternate_on}") != "0":
            tt.fail("the alternate screen is still on after the handler")
        flags = shell_answer(p, "echo \"S=$(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo|isig|opost)' | "
                                "tr '\\n' ' ')\"", "S").split()
        if sorted(flags) != ["echo", "icanon", "isig", "opost"]:
            tt.fail("terminal not restored after the handler: stty shows %r" % flags)
    return tt.finish("out-of-memory handler in the TUI: ok")


if __name__ == "__main__":
    sys.exit(main())
