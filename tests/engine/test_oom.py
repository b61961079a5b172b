#!/usr/bin/env python3
"""The out-of-memory policy (core/base/mem.h) through the real binary.

1. Input-sized requests that cannot fit: the REPL (in a pseudo-terminal) gets an address-space
   limit (RLIMIT_AS, set on the running process) 96 MB above what it uses after a warm-up; then a
   position matrix, a cosine matrix, attention maps of every layer and head of a long text, and
   the KV cache of a long text (a model of 65,536 positions generates from a short one: its
   cache grows with the text) each fail with "error: out of memory for ...", and so does a
   result whose text does not fit; the next command in the same session runs. Headless, under a limit
   calibrated the same way, the first such failure ends the script with status 1, the message on
   stderr and the results before it on stdout.
2. A bookkeeping allocation that fails (the test hook QKV_TEST_XALLOC_MAX=BYTES: x* requests above
   it fail): the handler prints "qkv: out of memory (allocating N bytes)" on stderr, nothing else,
   and qkv exits with status 3, keeping what it printed before.

3. The trainers under a limit calibrated the same way, with a model whose parameters and their
   gradients do not fit: dpo train, reward train and bench-train each fail with one
   "error: COMMAND: out of memory for ..." (the first two said "dpo train: train: ..."), write no
   checkpoint, and the session goes on.

Parts 1 and 3 are skipped under AddressSanitizer (its shadow memory makes address-space limits
meaningless) or where RLIMIT_AS cannot be set; part 2 always runs.
"""
import json
import os
import pty
import re
import resource
import select
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

QKV = os.path.abspath(sys.argv[1])
TMP = tempfile.mkdtemp(prefix="qkv-oom-")
DB = os.path.join(TMP, "qkv.db")
MB = 1 << 20
HEADROOM = 96 * MB  # what the limited process may still map: far below each failing request
# one malloc arena for every thread, so that the address space a warm-up leaves is what the
# same commands leave again (thread arenas reserve 64 MB each, at the first malloc of a thread)
ENV = dict(os.environ, MALLOC_ARENA_MAX="1", HOME=TMP, XDG_STATE_HOME=os.path.join(TMP, "state"),
           XDG_DATA_HOME=os.path.join(TMP, "data"), TERM="dumb", LC_ALL="C.UTF-8")
failures = 0


def check(cond, what, got=None):
    global failures
    if not cond:
        failures += 1
        print(f"FAIL: {what}" + (f"\n  got: {got!r}" if got is not None else ""))
    return cond


def headless(args, env=None, preexec=None, stdin=None):
    return subprocess.run([QKV, "--db", DB] + args, capture_output=True, text=True, env=env or ENV,
                          preexec_fn=preexec, input=stdin, timeout=300)


def vm_size(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


class Repl:
    """qkv's line REPL in a pseudo-terminal: send a line, read until the next prompt."""

    def __init__(self):
        self.master, slave = pty.openpty()
        self.p = subprocess.Popen([QKV, "--no-tui", "--db", DB], stdin=slave, stdout=slave, stderr=slave,
                                  env=ENV, close_fds=True, start_new_session=True)
        os.close(slave)
        self.buf = ""
        self.until("qkv> ")

    def until(self, marker, timeout=120):
        end = time.time() + timeout
        while marker not in self.buf:
            left = end - time.time()
            if left <= 0:
                raise TimeoutError(f"waited for {marker!r}; got:\n{self.buf[-2000:]}\n{self.threads()}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # the process is gone
                    raise RuntimeError(f"qkv ended (status {self.p.wait()}); its output:\n{self.buf[-2000:]}")
                self.buf += data.decode("utf-8", "replace")
        i = self.buf.index(marker)
        out, self.buf = self.buf[:i], self.buf[i + len(marker):]
        return out

    def threads(self):
        """Where qkv's threads are (for a timeout's message): state, kernel wait channel, CPU time."""
        rows = []
        try:
            for tid in sorted(os.listdir(f"/proc/{self.p.pid}/task"), key=int):
                base = f"/proc/{self.p.pid}/task/{tid}"
                with open(f"{base}/stat") as f:
                    st = f.read().rsplit(")", 1)[1].split()
                with open(f"{base}/wchan") as f:
                    wchan = f.read() or "-"
                rows.append(f"  thread {tid}: state {st[0]}, wchan {wchan}, utime {st[11]} stime {st[12]}")
            rows.insert(0, f"  VmSize {vm_size(self.p.pid) // MB} MB")
        except OSError as ex:
            rows.append(f"  (cannot read /proc: {ex})")
        return "qkv's threads:\n" + "\n".join(rows)

    def run(self, line):
        """The output of one command (the echoed line removed)."""
        os.write(self.master, line.encode() + b"\r")
        out = self.until("qkv> ").replace("\r", "")
        return out.split("\n", 1)[1] if "\n" in out else ""

    def close(self):
        try:
            os.write(self.master, b"quit\r")
            self.p.wait(timeout=30)
        except Exception:
            self.p.kill()
            self.p.wait()
        os.close(self.master)


def new_model(name, spec):
    path = os.path.join(TMP, name)
    p = headless(["-e", f"new-model gpt2 {spec} seed=1 out={path}"])
    if p.returncode:
        raise RuntimeError(f"new-model {spec}: {p.stderr}")
    return path


def warm_up(r, attn_model):
    r.run('generate "hello" max=4 temperature=0')
    r.run("pe sinusoidal len=64 dim=64")
    r.run(f"load {attn_model}")
    r.run("attention ids=1,2,3,4,5,6,7,8 layer=all head=all")


def limit_repl(r):
    """Caps the REPL's address space HEADROOM above what it maps now; False (said) where that cannot be done."""
    used = vm_size(r.p.pid)
    try:
        resource.prlimit(r.p.pid, resource.RLIMIT_AS, (used + HEADROOM, used + HEADROOM))
    except (OSError, AttributeError) as ex:
        print(f"skip: cannot limit the address space of qkv here: {ex}")
        return False
    print(f"REPL: {used // MB} MB mapped, limited to {(used + HEADROOM) // MB} MB")
    return True


def part_input_sized():
    info = json.loads(headless(["--json", "-e", "model"]).stdout.split("\n")[0])
    if info.get("sanitized"):
        print("skip: address-space limits under AddressSanitizer")
        return
    attn_model = new_model("attn", "layers=4 heads=4 d=32 ctx=2048 masks=false")  # 16 maps of 2000^2: 256 MB
    # its KV cache grows with the text: 8 KB a position, a short text fits, "hi " 9,000 times
    # (32,768 positions, 268 MB, with this model's tokenizer) does not
    long_ctx = new_model("longctx", "layers=16 heads=2 d=64 ctx=65536 masks=false")
    r = Repl()
    try:
        warm_up(r, attn_model)
        if not limit_repl(r):
            return

        ids = ",".join(str(1 + i % 200) for i in range(2000))
        steps = [
            # (command, expected error or None, a command that must then work, what it prints)
            ("pe sinusoidal len=8192 dim=8192", "error: out of memory for a 8192 x 8192 position matrix",
             "pe sinusoidal len=4 dim=4", "4 positions x 4 dimensions"),
            ("pe sinusoidal len=8192 dim=512 cosine=true",
             "error: out of memory for the cosine 8192 x 8192 position matrix",
             "pe sinusoidal len=8 dim=8 cosine=true", "8 positions x 8 positions"),
            (f"attention ids={ids} layer=all head=all",
             "error: out of memory for 16 attention maps of 2000 x 2000 tokens (256.0 MB)",
             "attention ids=5,6,7 layer=all head=all", "layer 0 head 0"),
            (f"load {long_ctx}", None, None, None),
            ('generate "hi" max=2 temperature=0', None, None, None),
            ('generate "' + "hi " * 9000 + '" max=1', "error: out of memory for a KV cache of 32768 positions (268 MB",
             'generate "hi" max=2 temperature=0', None),
            (f"load {attn_model}", None, 'generate "hi" max=2 temperature=0', None),
            # under a limit 28 MB above what is used: the matrix and its figure fit (16 MB), the
            # JSON text of their 2M numbers (about 23 MB) does not
            ("pe sinusoidal len=2048 dim=1024", "error: out of memory for the result of pe (",
             "pe sinusoidal len=16 dim=16", "16 positions x 16 dimensions"),
        ]
        for cmd, err, then, then_out in steps:
            if cmd.startswith("pe sinusoidal len=2048"):
                now = vm_size(r.p.pid) + 28 * MB
                resource.prlimit(r.p.pid, resource.RLIMIT_AS, (now, now))
            out = r.run(cmd)
            short = cmd if len(cmd) < 60 else cmd[:57] + "..."
            if err:
                check(err in out, f"REPL under the limit: {short!r} fails cleanly", out)
                check("qkv: out of memory (allocating" not in out, f"{short!r}: an error, not the handler", out)
            else:
                check("error" not in out, f"{short!r} works under the limit", out)
            if then:
                out2 = r.run(then)
                check("error" not in out2 and (then_out is None or then_out in out2),
                      f"after {short!r}, {then!r} still runs", out2)
        check(r.p.poll() is None, "the REPL is still running after the failures")
    finally:
        r.close()
    check(r.p.returncode == 0, "quit ends the REPL with status 0", r.p.returncode)

    # Headless: the same warm-up, then a request that does not fit; the script stops there.
    cal = Repl()
    try:
        cal.run("model")
        used = vm_size(cal.p.pid)
    finally:
        cal.close()
    limit = used + HEADROOM

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    p = headless(["--json", "-e", "model", "-e", "pe sinusoidal len=8192 dim=8192", "-e", "model"], preexec=cap)
    check(p.returncode == 1, "headless: a request that does not fit exits 1", (p.returncode, p.stderr))
    check(p.stderr == "error: out of memory for a 8192 x 8192 position matrix\n",
          "headless: one error line on stderr", p.stderr)
    lines = [l for l in p.stdout.split("\n") if l]
    check(len(lines) == 2 and json.loads(lines[0]).get("arch") == "gpt2" and "error" in json.loads(lines[1]),
          "headless: the first result, then the error object, and nothing after", p.stdout[:300])


def part_bookkeeping():
    # x* requests above 1 MB fail; qkv's own bookkeeping stays far below that, but the word
    # of a 1.5 MB quoted argument is one buffer that grows past it while the command is parsed
    script = os.path.join(TMP, "script.qkv")
    with open(script, "w") as f:
        f.write('model\ntokenize "' + "a" * (1536 * 1024) + '"\nmodel\n')
    env = dict(ENV, QKV_TEST_XALLOC_MAX=str(1 << 20))
    p = headless(["--json", "--script", script], env=env)
    check(p.returncode == 3, "a failed bookkeeping allocation exits with status 3", (p.returncode, p.stderr[-300:]))
    check(p.stderr == "qkv: out of memory (allocating 2097152 bytes)\n",
          "the handler's one line (the buffer doubling from 1 to 2 MB), nothing else", p.stderr[-300:])
    lines = [l for l in p.stdout.split("\n") if l]
    check(len(lines) == 1 and json.loads(lines[0]).get("arch") == "gpt2",
          "what was printed before the failure is kept (stdout flushed), nothing after", p.stdout[:300])
    # the same script without the hook runs to the end
    p = headless(["--json", "--script", script])
    check(p.returncode == 0 and len([l for l in p.stdout.split("\n") if l]) == 3, "without the hook the script runs",
          (p.returncode, p.stderr[-300:]))


def add_rankings(n):
    """n prompts, each with two ranked completions (' good' above ' bad'), straight into the database."""
    headless(["--model", "builtin", "-e", 'generate "a" max=1 seed=1'])  # creates the schema (history does not)
    con = sqlite3.connect(DB)
    con.execute("DELETE FROM runs")
    now = "2026-01-01T00:00:00.000Z"
    for i in range(n):
        prompt = f"Q{i}: how is item {i}?"
        runs = []
        for n_, text in enumerate((" it is good", " it is bad")):
            cur = con.execute(
                "INSERT INTO runs (created, kind, annotator, qkv_version, model_path, model_arch, prompt, temperature, "
                "top_k, top_p, seed, max_tokens, output) VALUES (?, 'rank', 't', 'test', 'builtin', 'gpt2', ?, 1.0, 0, "
                "1.0, ?, 8, ?)", (now, prompt, i * 10 + n_, text))
            runs.append(cur.lastrowid)
        rid = con.execute("INSERT INTO rankings (created, prompt, k, annotator, qkv_version) VALUES (?, ?, 2, 't', "
                          "'test')", (now, prompt)).lastrowid
        for n_, run_id in enumerate(runs):
            con.execute("INSERT INTO ranking_items (ranking_id, n, run_id, rank) VALUES (?, ?, ?, ?)",
                        (rid, n_ + 1, run_id, n_ + 1))
    con.commit()
    con.close()


def part_trainers():
    """The trainers' parameters and gradients that do not fit: each command says so once in its own
    name (reward train and dpo train said "dpo train: train: out of memory ...") and the REPL goes on."""
    info = json.loads(headless(["--json", "-e", "model"]).stdout.split("\n")[0])
    if info.get("sanitized"):
        print("skip: address-space limits under AddressSanitizer")
        return
    big = new_model("big", "layers=2 heads=4 d=768 ctx=64 masks=false")  # 14M parameters: 58 MB, and as much for their gradients
    add_rankings(6)
    r = Repl()
    try:
        r.run(f"load {big}")
        r.run('generate "hello" max=2 temperature=0')
        if not limit_repl(r):
            return
        for cmd, what in ((f"dpo train out={TMP}/dpo steps=1", "dpo train"),
                          (f"reward train out={TMP}/rm steps=1", "reward train"),
                          ("bench-train batch=1 seq=8 steps=1 reps=1", "bench-train")):
            out = r.run(cmd).strip()
            check(out.startswith(f"error: {what}: out of memory for ") and out.count("train:") == 1
                  and "\n" not in out, f"{cmd!r} under the limit: one error in its own name", out)
            check("qkv: out of memory (allocating" not in out, f"{cmd!r}: an error, not the handler", out)
        check(not os.path.exists(f"{TMP}/dpo/model.safetensors") and not os.path.exists(f"{TMP}/rm/model.safetensors"),
              "no checkpoint written by the failed trainers")
        out = r.run('generate "hi" max=2 temperature=0')
        check("error" not in out, "generate still runs after the trainers' failures", out)
        check(r.p.poll() is None, "the REPL is still running after the trainers' failures")
    finally:
        r.close()


def main():
    try:
        part_bookkeeping()
        part_input_sized()
        part_trainers()
    except (TimeoutError, RuntimeError) as ex:
        check(False, str(ex))
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    if failures:
        print(f"{failures} failure(s)")
        return 1
    print("out-of-memory policy: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
