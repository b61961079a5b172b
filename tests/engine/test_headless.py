#!/usr/bin/env python3
"""Headless mode and the command language, through the real binary.

-e, --script, commands on stdin, --json (one object per command per line), key=value
options, C escapes in quoted text, `error: ...` on stderr with a non-zero exit, and the
engine commands' JSON fields (DESIGN.md's table).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import qkv_cli  # noqa: E402

QKV = sys.argv[1]
TMP = qkv_cli.scratch_dir("qkv-headless-")
DB = os.path.join(TMP, "qkv.db")
failures = 0


def run(args, stdin=None, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([QKV, "--db", DB] + args, input=stdin, capture_output=True, env=e, timeout=120)


def check(cond, what, got=None):
    global failures
    if not cond:
        failures += 1
        print(f"FAIL: {what}" + (f"\n  got: {got!r}" if got is not None else ""))


def jlines(p):
    return [json.loads(l) for l in p.stdout.decode().split("\n") if l]


# --json: one object per command per line, with the documented fields
p = run(["--json", "-e", 'model; tokenize "Hi"; logits "Hi" top=3; generate "Hi" max=4 seed=7; '
         'attention "abc" layer=0 head=0; bench prompt=8 gen=4 reps=1; help; help generate'])
check(p.returncode == 0, "a good script exits 0", p.stderr)
out = jlines(p)
check(len(out) == 8, "eight commands give eight JSON lines", len(out))
want = [
    {"arch", "n_layer", "n_head", "n_embd", "n_ctx", "vocab", "params", "path"},
    {"ids", "pieces"},
    {"ids", "top"},
    {"run_id", "text", "ids", "logprobs", "prefill_tok_s", "decode_tok_s"},
    {"tokens", "matrix"},
    {"prefill_tok_s", "decode_tok_s", "threads"},
    {"commands"},
    {"usage"},
]
for o, w in zip(out, want):
    check(w <= set(o), f"fields {sorted(w)} present", sorted(o))
m, tok, lg, gen, att = out[:5]
check(m["arch"] == "gpt2" and m["untrained"], "without --model the built-in untrained GPT-2 opens", m)
check(tok["ids"] == [39, 72] and tok["pieces"] == ["H", "i"], "byte-level tokens of 'Hi'", tok)
check(len(lg["top"]) == 3 and set(lg["top"][0]) >= {"id", "piece", "logit", "prob"}, "logits top=3", lg["top"])
check(abs(sum(t["prob"] for t in lg["top"])) <= 1.0, "probabilities are probabilities", lg["top"])
check(len(gen["ids"]) == 4 and len(gen["logprobs"]) == 4, "generate max=4 gives 4 tokens", gen)
check(all(l <= 0 for l in gen["logprobs"]), "log-probabilities are <= 0", gen["logprobs"])
check(att["matrix"][0][1:] == [0, 0] and abs(sum(att["matrix"][2]) - 1) < 1e-5, "causal attention rows", att["matrix"])

# bench: the bounds are sampled around every repetition; each figure's fraction is the
# median of the repetitions' own, with their spread and the samples behind them
p = run(["--json", "-e", "bench prompt=8 gen=4 reps=3"])
check(p.returncode == 0, "bench reps=3 runs", p.stderr)
bn = jlines(p)[0] if p.returncode == 0 else {}
for k in ["prefill_tok_s_reps", "decode_tok_s_reps", "read_gb_s_before", "read_gb_s_after",
          "decode_bw_fraction_reps", "prefill_sgemm_fraction_reps"]:
    v = bn.get(k)
    check(isinstance(v, list) and len(v) == 3 and all(x > 0 for x in v), f"bench {k}: 3 positive values", v)
check(len(bn.get("sgemm_gflops_reps", [])) == 4, "bench: sgemm sampled before each rep and after the last", bn)
if all(k in bn for k in ["decode_bw_fraction_reps", "decode_tok_s_reps", "read_gb_s_before", "read_gb_s_after"]):
    fr = sorted(bn["decode_bw_fraction_reps"])
    check(bn["decode_bw_fraction_min"] == fr[0] and bn["decode_bw_fraction_max"] == fr[-1]
          and abs(bn["decode_bw_fraction"] - fr[1]) <= 1e-9 * fr[1], "decode_bw_fraction is the median rep", bn)
    # each rep's fraction: weight bytes x its tok/s over the mean of the samples around it
    for f, t, r0, r1 in zip(bn["decode_bw_fraction_reps"], bn["decode_tok_s_reps"], bn["read_gb_s_before"],
                            bn["read_gb_s_after"]):
        want = bn["weight_bytes_per_token"] * t / (0.5 * (r0 + r1) * 1e9)
        check(abs(f - want) <= 1e-6 * want, "a rep's fraction is held against the samples around it", (f, want))
    check(bn["decode_tok_s"] == max(bn["decode_tok_s_reps"]), "decode_tok_s is the best rep", bn)
    check(bn["read_gb_s"] == max(bn["read_gb_s_before"] + bn["read_gb_s_after"]), "read_gb_s is the largest sample", bn)
    pf = sorted(bn["prefill_sgemm_fraction_reps"])
    check(abs(bn["prefill_sgemm_fraction"] - pf[1]) <= 1e-9 * pf[1], "prefill_sgemm_fraction is the median rep", bn)
    check(0 <= bn["read_drift_max"] < 10, "read_drift_max is a fraction", bn.get("read_drift_max"))

# bench prompt=0: generation from an empty context (llama-bench's tg), no prefill and no sgemm
# bound; prompt=1: a prefill of one decoding step, timed, with no sgemm bound either
p = run(["--json", "-e", "model; bench prompt=0 gen=4 reps=2; bench prompt=1 gen=4 reps=2"])
check(p.returncode == 0, "bench prompt=0 and prompt=1 run", p.stderr)
o = jlines(p) if p.returncode == 0 else [{}] * 3
if len(o) == 3 and o[1]:
    md, b0, b1 = o
    # a phase not measured: its arrays null as its medians are (they were [] here, [0, 0] for gen=0)
    check(b0["prefill_tok_s"] is None and b0["prefill_tok_s_reps"] is None and b0["prefill_sgemm_fraction"] is None
          and b0["sgemm_gflops"] is None and b0["sgemm_gflops_reps"] is None and b0["prefill_sgemm_fraction_reps"] is None,
          "bench prompt=0: no prefill figures (null)", b0)
    check(len(b0["decode_tok_s_reps"]) == 2 and all(x > 0 for x in b0["decode_tok_s_reps"])
          and b0["decode_bw_fraction"] > 0, "bench prompt=0 times generation", b0)
    want = 2 * md["n_layer"] * md["n_kv_head"] * md["head_dim"] * 4 * (0 + (4 + 1) / 2)
    check(b0["kv_bytes_per_token"] == want, "bench prompt=0: the KV cache over the generation's own context",
          (b0["kv_bytes_per_token"], want))
    check(b1["prefill_tok_s"] > 0 and len(b1["prefill_tok_s_reps"]) == 2 and b1["prefill_sgemm_fraction"] is None
          and b1["sgemm_gflops_reps"] is None, "bench prompt=1: timed, without an sgemm bound", b1)
p = run(["--json", "-e", "bench prompt=8 gen=0 reps=2"])
bg = jlines(p)[0] if p.returncode == 0 else {}
check([bg.get(k, "absent") for k in ("decode_tok_s", "decode_tok_s_reps", "decode_bw_fraction_reps")] == [None] * 3
      and len(bg.get("prefill_tok_s_reps") or []) == 2, "bench gen=0: no generation figures (null)", bg)
p = run(["-e", "bench prompt=0 gen=4 reps=1; bench prompt=1 gen=4 reps=1"])
t = p.stdout.decode()
check(p.returncode == 0 and "no prompt: generation from an empty context" in t and "prefill 1 token:" in t
      and "of sgemm" not in t and "nan" not in t.lower(), "bench prompt=0 / 1: the text says what was timed", t)
p = run(["--json", "-e", "quantize q8_0", "-e", "bench prompt=0 gen=4 reps=2 against=original"])
bq = jlines(p)[-1] if p.returncode == 0 else {}
check(bq.get("prefill_ratio", 0) is None and bq.get("prefill_ratio_reps", 0) is None and bq.get("decode_ratio", 0) > 0
      and bq.get("against", {}).get("prefill_tok_s", 0) is None, "bench prompt=0 against=original: generation only",
      (p.stderr, bq))
p = run(["-e", 'logits "%s"' % ("a " * 300)])
check(p.returncode == 1 and p.stderr.decode() == "error: 600 tokens do not fit in the context of 256 (0 of its positions "
      "in use)\n", "a prompt longer than the context: one line that says so", p.stderr)
p = run(["-e", "prompt show en-fr shots=100"])
check(p.returncode == 1 and p.stderr.decode() == "error: shots=100: 100 is out of range (0 to 64)\n",
      "a list option out of range names the option and its range", p.stderr)
# a plain name that is neither a file nor an installed model says where names are looked up; a
# llama2.c checkpoint alone names load's own option for its tokenizer (it said --tokenizer)
p = run(["-e", "load no-such-model-name"])
check(p.returncode == 1 and b"nor an installed model in " in p.stderr and b"`models` lists them" in p.stderr,
      "load NAME of nothing: where names are looked up", p.stderr)
l2c = os.path.join(os.environ.get("QKV_SHARED_MODELS", ""), "llama2c-stories260k", "stories260K.bin")
if os.path.exists(l2c):
    alone = os.path.join(TMP, "l2c-alone")
    os.makedirs(alone)
    shutil.copy(l2c, alone)
    p = run(["-e", "load " + os.path.join(alone, "stories260K.bin")])
    check(p.returncode == 1 and b"tokenizer=TOKENIZER.bin, or --tokenizer" in p.stderr,
          "a llama2.c checkpoint without its tokenizer: load's tokenizer= named", p.stderr)
p = run(["-e", "load builtin tokenizer=/nonexistent"])
check(p.returncode == 1 and b"own byte-level tokenizer" in p.stderr, "load builtin tokenizer= is refused, not ignored",
      p.stderr)
# --model builtin --tokenizer: refused as load's tokenizer= is (tokenize used the other tokenizer,
# its ids beyond the model's 257, while generate kept the byte-level one)
tokdir = os.path.join(TMP, "tok-for-builtin")
p = run(["-e", "new-model gpt2 layers=1 heads=1 d=16 ctx=32 seed=1 out=" + tokdir])
p = run(["--model", "builtin", "--tokenizer", tokdir, "-e", 'tokenize "the the"'])
check(p.returncode == 1 and b"own byte-level tokenizer" in p.stderr and not p.stdout,
      "--model builtin --tokenizer is refused", p.stderr + p.stdout)
p = run(["-e", "bench prompt=0 gen=0"])
check(p.returncode != 0 and b"gen= > 0" in p.stderr, "bench prompt=0 gen=0 is refused", p.stderr)

# bench against=original: after quantize, the original model is timed in the same
# repetitions; each ratio is the repetition's own, the figure their median
p = run(["--json", "-e", "quantize q8_0", "-e", "bench prompt=8 gen=20 reps=3 against=original"])
check(p.returncode == 0, "bench against=original runs after quantize", p.stderr)
bq = jlines(p)[-1] if p.returncode == 0 else {}
ag = bq.get("against", {})
check(ag.get("dtype") == "F32" and bq.get("dtype") == "Q8_0" and bq.get("model", "").startswith(ag.get("model", "?")),
      "bench against=original names the original and its type", bq)
for side in (bq, ag):
    for k in ("prefill", "decode"):
        v = side.get(k + "_tok_s_reps", [])
        check(len(v) == 3 and all(x > 0 for x in v) and side.get(k + "_tok_s") == max(v or [0]),
              f"bench against: {k} speeds of 3 reps, the best reported", side)
for k in ("prefill", "decode"):
    mine, theirs, ratios = bq.get(k + "_tok_s_reps", []), ag.get(k + "_tok_s_reps", []), bq.get(k + "_ratio_reps", [])
    check(len(ratios) == 3 and all(abs(r - a / b) <= 1e-6 * r for r, a, b in zip(ratios, mine, theirs)),
          f"bench against: each {k} ratio is the repetition's speed over the original's", (ratios, mine, theirs))
    check(len(ratios) == 3 and abs(bq.get(k + "_ratio", 0) - sorted(ratios)[1]) <= 1e-12,
          f"bench against: {k}_ratio is the median repetition's", bq)
# set threads after quantize: both models run on the new count (the original's context was kept
# on the old one, so the ratio compared 1 thread with 2)
p = run(["--threads", "2", "--json", "-e", "quantize q8_0", "-e", "bench prompt=8 gen=4 reps=1 against=original",
         "-e", "set threads 1", "-e", "bench prompt=8 gen=4 reps=1 against=original"])
o = jlines(p) if p.returncode == 0 else []
th = [(x.get("threads"), x.get("against", {}).get("threads")) for x in o if "against" in x]
check(th == [(2, 2), (1, 1)], "set threads after quantize: bench against=original times both on the new count", th)
p = run(["-e", "bench against=original"])
check(p.returncode != 0 and b"not a conversion" in p.stderr, "bench against=original without quantize is refused",
      p.stderr)
p = run(["-e", "quantize q8_0", "-e", "bench against=f16"])
check(p.returncode != 0 and b"against= takes 'original'" in p.stderr, "bench against= other than original is refused",
      p.stderr)

# the same seed gives the same tokens; another seed (almost surely) others
a = jlines(run(["--json", "-e", 'generate "The" max=12 seed=42 temperature=1.5']))[0]
b = jlines(run(["--json", "-e", 'generate "The" max=12 seed=42 temperature=1.5']))[0]
c = jlines(run(["--json", "-e", 'generate "The" max=12 seed=43 temperature=1.5']))[0]
check(a["ids"] == b["ids"], "same seed, same tokens", (a["ids"], b["ids"]))
check(a["ids"] != c["ids"], "another seed, other tokens", (a["ids"], c["ids"]))
g1 = jlines(run(["--json", "-e", 'generate "The" max=8 temperature=0']))[0]
check(all(s["id"] == s["top"][0]["id"] for s in g1["steps"]), "greedy picks the most likely token", g1["steps"][:2])
check(isinstance(a["seed"], int) and a["seed"] == 42, "the seed is reported", a.get("seed"))
r = jlines(run(["--json", "-e", 'generate "The" max=2 temperature=1']))[0]
check(isinstance(r["seed"], int), "a random seed is chosen and reported", r.get("seed"))

# C escapes in quoted text; key=value options; a leading ':'
p = run(["--json", "-e", r':tokenize "a\nb\t\x41\u00e9" special=false'])
t = jlines(p)[0]
check(t["pieces"] == ["a", "\n", "b", "\t", "A", "<0xC3>", "<0xA9>"], "escapes decode to the bytes", t["pieces"])

# the text form shows a token as every table cell does (README: · ↵ ^[; tokenize wrote \n and \x1b)
p = run(["-e", r'tokenize "a\nb \x1b" special=false'])
cells = [l.split(None, 1)[1] if len(l.split(None, 1)) > 1 else "" for l in p.stdout.decode().splitlines()[:-1]]
check(cells == ["a", "\u21b5", "b", "\u00b7", "^["], "tokenize shows a newline, a space and ESC as the tables do", cells)

# the count's word agrees with it (it said "1 tokens")
for text, want in (("a", "1 token"), ("a b", "3 tokens")):
    p = run(["-e", 'tokenize "%s" special=false' % text])
    last = p.stdout.decode().rstrip("\n").split("\n")[-1]
    check(last == want, "tokenize %r ends with %r" % (text, want), last)

# commands from a pipe run as their lines come: a program reads the candidates of a rank and then
# writes its order (a pipe read to its end before the first command made that hang)
proc = subprocess.Popen([QKV, "--db", DB, "--json"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
got = []
reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)
proc.stdin.write(b'rank "Once upon a time" k=2 max=3 seed=5\n')
proc.stdin.flush()
reader.start()
reader.join(60)
cands = json.loads(got[0]).get("candidates", []) if got and got[0] else []
check(len(cands) == 2, "a rank's candidates arrive while the pipe is still open", got)
if cands:
    proc.stdin.write(b"order 2 1\n")
    proc.stdin.write(b'tokenize "a\nb"\n')  # a quoted text across lines runs once it is whole
    out, err = proc.communicate(timeout=60)
    rs = [json.loads(l) for l in out.decode().split("\n") if l.strip()]
    check(proc.returncode == 0 and len(rs) == 2 and rs[0].get("ranking_id") and rs[1].get("count") == 3,
          "then its order is stored, and the two-line command runs whole", (proc.returncode, rs, err[-300:]))
else:
    proc.kill()
    proc.communicate()

# --script and stdin give the same as -e
script = os.path.join(TMP, "s.qkv")
with open(script, "w") as f:
    f.write('# a comment\ntokenize "x y"\nset temperature 0\ngenerate "x" max=3\n')
s1 = run(["--json", "--script", script])
s2 = run(["--json"], stdin=open(script, "rb").read())
strip = lambda p: [{k: v for k, v in o.items() if not k.endswith(("_s", "_ms")) and k not in ("seed", "run_id", "created")} for o in jlines(p)]
check(s1.returncode == 0 and strip(s1) == strip(s2) and len(strip(s1)) == 3, "--script and stdin agree",
      (s1.stdout[:200], s2.stdout[:200]))

# Input that never ends: --script refuses a device (/dev/zero was read whole: 4 GB in 8 s, nothing
# printed), and a command line read from a stream stops at 16 MiB with a message naming the limit
# (standard input from /dev/zero grew the same way); a quote opened and never closed over many
# lines stops there too, without reading its text again at each line (quadratic: it hung).
def bounded(args, stdin, timeout=60, limit_mb=600):
    """Run qkv ARGS with stdin (a file object); (returncode or None when it was killed, stdout,
    stderr, peak resident MB, seconds). Killed past timeout or past limit_mb resident (the machine's
    memory is shared)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    proc = subprocess.Popen([QKV, "--db", DB] + args, stdin=stdin, stdout=out, stderr=err)
    t0, peak, killed = time.time(), 0, False
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                rss = [int(l.split()[1]) // 1024 for l in f if l.startswith("VmRSS:")]
            peak = max([peak] + rss)
        except OSError:
            pass
        if peak > limit_mb or time.time() - t0 > timeout:
            proc.kill()
            killed = True
            proc.wait()
            break
        time.sleep(0.02)
    out.seek(0), err.seek(0)
    return None if killed else proc.returncode, out.read(), err.read(), peak, time.time() - t0


import signal
import time
p = bounded(["--script", "/dev/zero"], subprocess.DEVNULL, timeout=20)
check(p[0] == 1 and b"cannot read the script '/dev/zero': it is a device, not a regular file, a pipe or a terminal"
      in p[2] and not p[1], "--script /dev/zero is refused, not read", p)
p = bounded(["--script", TMP], subprocess.DEVNULL, timeout=20)
check(p[0] == 1 and b"it is a directory" in p[2], "--script DIR is refused", p)
for args in ([], ["--script", "-"], ["-e", 'tokenize "a"', "--script", "-"]):
    with open("/dev/zero", "rb") as zero:
        p = bounded(args, zero)
    want = b"standard input, line 1: a command line longer than 16 MiB, the most qkv reads; nothing from there on runs"
    check(p[0] == 1 and want in p[2] and p[3] < 200, f"{args}: /dev/zero on stdin stops at 16 MiB, says so",
          (p[0], p[2][-300:], f"{p[3]} MB"))
    check((b" a\n" in p[1]) == ("-e" in args), f"{args}: -e runs first, and nothing else does", p[1][:200])
with open("/dev/zero", "rb") as zero:
    p = bounded(["--script", "/dev/stdin"], zero)
check(p[0] == 1 and b"'/dev/stdin': it is a device" in p[2], "--script /dev/stdin is refused when that is /dev/zero",
      p[:3])
many = os.path.join(TMP, "open-quote.qkv")
with open(many, "wb") as f:
    f.write(b'tokenize "x"\ntokenize "never closed\n' + b"\n" * (20 << 20))
with open(many, "rb") as f:
    p = bounded([], f, timeout=30)
check(p[0] == 1 and b"standard input, line 2: a command line longer than 16 MiB" in p[2] and p[4] < 20,
      "an open quote over 20 million lines stops at 16 MiB, promptly", (p[0], p[2][-300:], round(p[4], 1)))
p = bounded(["--script", many], subprocess.DEVNULL, timeout=30)
check(p[0] == 1 and f"'{many}', line 2: a command line longer than 16 MiB".encode() in p[2] and b" x\n" in p[1],
      "so does a script file, after running what came before", (p[0], p[1][:100], p[2][-300:]))
# a pipe or FIFO is read as standard input is, as its lines come; a terminal is taken too
fifo = os.path.join(TMP, "cmds.fifo")
os.mkfifo(fifo)
writer = threading.Thread(target=lambda: open(fifo, "wb").write(b'tokenize "f"\n'))
writer.start()
p = run(["--script", fifo])
writer.join()
check(p.returncode == 0 and b" f\n" in p.stdout, "--script FIFO runs what its writer writes", (p.stdout, p.stderr))
p = run(["--script", "/dev/stdin"], stdin=b'tokenize "p"\n')
check(p.returncode == 0 and b" p\n" in p.stdout, "--script /dev/stdin from a pipe", (p.stdout, p.stderr))
# Ctrl-C while qkv waits for the next line of standard input: 130, as during a command (it said
# "cannot read standard input" and exited 1)
proc = subprocess.Popen([QKV, "--db", DB], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
proc.stdin.write(b'tokenize "w"\n')
proc.stdin.flush()
time.sleep(1.5)
proc.send_signal(signal.SIGINT)
so, se = proc.communicate(timeout=30)
check(proc.returncode == 130 and b" w\n" in so and not se, "Ctrl-C while waiting for input: 130, no error",
      (proc.returncode, so, se))

# a --model that cannot be opened, with --json: the {"error": ...} line on stdout as a command's
# error has (there was none), and on stderr a name that is not UTF-8 shown as valid text
bad_path = os.fsencode(TMP) + b"/no-model-\xff"
p = subprocess.run([os.fsencode(QKV), b"--db", os.fsencode(DB), b"--json", b"--model", bad_path, b"-e", b"model"],
                   capture_output=True, timeout=60)
sj = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
check(p.returncode == 1 and len(sj) == 1 and "no-model-\ufffd" in sj[0].get("error", "")
      and b"\xff" not in p.stderr and p.stderr.startswith(b"error: ")
      and "no-model-\ufffd" in p.stderr.decode("utf-8", "replace"),
      "--json --model BAD: the JSON error on stdout, the message valid UTF-8", (p.returncode, p.stdout, p.stderr))
# errors: a message on stderr, non-zero exit, the rest of the script not run
for cmd, needle in [
    ("frobnicate", "unknown command 'frobnicate'"),
    ('generate "x" max=abc', "max=abc"),
    ('generate "x" colour=red', "unknown option 'colour'"),
    ('tokenize "unterminated', "unterminated"),
    ('attention "abc" layer=99', "layer=99"),
    ("load /nonexistent/model", "cannot open '/nonexistent/model'"),
    ('generate "x" max=300', "context"),
    ("set temperature -1", "temperature"),
    ("set kv bf16", "set kv: auto, f32, f16 or q8_0 expected, not 'bf16'"),
    ("set kv", "a value is expected"),
    (r'tokenize "\q"', "unknown escape"),
]:
    p = run(["-e", cmd + "; model"])
    err = p.stderr.decode()
    check(p.returncode != 0, f"'{cmd}' fails", p.returncode)
    check(err.startswith("error: ") and needle in err, f"'{cmd}' says '{needle}'", err)
    check(err.count("\n") == 1, f"'{cmd}' gives one line", err)
    check(b"untrained" not in p.stdout, f"'{cmd}' stops the script", p.stdout)
    check(p.returncode > 0 and p.returncode < 128, f"'{cmd}' exits, no signal", p.returncode)

# quit (and its alias exit): the commands after it do not run, in every way of giving them
for word in ("quit", ":quit", "exit", "q", ":q"):
    p = run(["--json", "-e", f'tokenize "a"; {word}; generate "x" max=2; tokenize "b"'])
    check(p.returncode == 0, f"'{word}' exits 0", (p.returncode, p.stderr))
    out = jlines(p)
    check(len(out) == 2 and out[0]["pieces"] == ["a"] and out[1] == {"quit": True}, f"nothing runs after '{word}'",
          p.stdout)
p = run(["--json", "-e", "quit", "-e", 'tokenize "b"'])
check(p.returncode == 0 and jlines(p) == [{"quit": True}], "quit stops the later -e too", (p.stdout, p.stderr))
p = run(["--json", "--script", "-"], stdin=b'tokenize "a"\nquit\nfrobnicate\n')
check(p.returncode == 0 and len(jlines(p)) == 2 and not p.stderr, "quit in a script on stdin", (p.stdout, p.stderr))
p = run(["-e", 'tokenize "a"; quit; tokenize "b"'])
check(p.returncode == 0 and p.stdout == run(["-e", 'tokenize "a"']).stdout, "quit prints nothing in text mode",
      p.stdout)
# models: while none is loaded, the one the first command that needs a model opens ($QKV_MODEL here)
p = run(["--json", "-e", "models; load builtin; models"], env={"QKV_MODEL": "builtin"})
o = jlines(p)
check(len(o) == 3 and o[0]["default"] == "builtin" and not any(m["current"] for m in o[0]["models"]) and
      o[2]["default"] is None and [m["name"] for m in o[2]["models"] if m["current"]] == ["builtin"],
      "models names the default until a model is loaded", p.stdout)
p = run(["-e", "models"], env={"QKV_MODEL": "builtin"})
check(b"the first command that needs a model opens builtin, the default" in p.stdout, "and says so in text", p.stdout)
p = run(["--model", "builtin", "embed", "x"])
check(p.returncode == 0 and b" of 1 token:" in p.stdout, "embed of one token: singular", p.stdout[:80])
# a $QKV_MODEL that opens nothing is named as the source of the path (the error named a file alone)
p = run(["-e", "model"], env={"QKV_MODEL": os.path.join(TMP, "no-such-model")})
check(p.returncode == 1 and b"no-such-model" in p.stderr and b"(the model QKV_MODEL names" in p.stderr,
      "a bad $QKV_MODEL is named", p.stderr)
# an installed model is current however it was opened: by its name, its folder or a file in it
# (a GGUF loaded by its path was not: the model's name is the file's, not the folder's)
xdg = os.path.join(TMP, "xdg")
inst = os.path.join(xdg, "qkv", "models", "mine")
run(["-e", f"new-model gpt2 layers=1 heads=2 d=32 ctx=64 seed=5 out={inst}"])
src = os.path.join(TMP, "gguf-src")
run(["-e", f"new-model gpt2 layers=1 heads=2 d=32 ctx=64 seed=6 out={src}"])
os.makedirs(os.path.join(xdg, "qkv", "models", "ggufed"))
gf = os.path.join(xdg, "qkv", "models", "ggufed", "weights.gguf")
run(["--model", src, "-e", f"export gguf {gf}"])
for how, name in (("mine", "mine"), (inst, "mine"), (os.path.join(inst, "model.safetensors"), "mine"),
                  ("ggufed", "ggufed"), (gf, "ggufed")):
    p = run(["--json", "-e", f"load {how}; models"], env={"XDG_DATA_HOME": xdg})
    o = jlines(p)
    cur = [m["name"] for m in o[-1]["models"] if m["current"]] if p.returncode == 0 and o else p.stderr
    check(cur == [name], f"models after load {how}: the installed model is current", cur)
# a replay that loads or converts another model says so: the session keeps it (it switched the
# session's model without a word)
rdb = os.path.join(TMP, "replay-switch.db")
p = subprocess.run([QKV, "--db", rdb, "--model", "builtin", "--json", "-e",
                    'generate "a" max=3 seed=1; quantize q8_0; replay 1; replay 1'], capture_output=True, timeout=120)
o = jlines(p)
check(p.returncode == 0 and len(o) == 4 and o[2].get("session_model_changed") is True and
      o[3].get("session_model_changed") is False and o[2].get("identical") is True,
      "replay after quantize: the session's model changed, said once", [x.get("session_model_changed") for x in o])
p = subprocess.run([QKV, "--db", rdb, "--model", "builtin", "-e", 'quantize q8_0; replay 1'], capture_output=True,
                   timeout=120)
check(p.returncode == 0 and b"note: the session's model is now " in p.stdout and b"as run 1 ran: it stays loaded" in p.stdout,
      "and the text says so", p.stdout[-300:])
# a mistyped order over a pipe ends the run and loses the pending ranking; --keep-going (-k) runs
# the corrected line after it, the exit status still 1
for flags, stored in (([], False), (["--keep-going"], True), (["-k"], True)):
    kdb = os.path.join(TMP, "keep-%d.db" % len(flags[0] if flags else ""))
    p = subprocess.run([QKV, "--db", kdb, "--model", "builtin"] + flags,
                       input=b'rank "hi" k=2 max=2 seed=1\norder 1 1\norder 2 1\n', capture_output=True, timeout=120)
    check(p.returncode == 1 and b"candidate 1 is named twice" in p.stderr and
          (b"ranking 1 stored: 2 1" in p.stdout) == stored, f"a failed order over a pipe, {flags}", (p.stdout, p.stderr))
# a byte-order mark an editor put before the first command is skipped, on stdin and in a script (it
# read "unknown command 'tokenize'", the mark invisible)
bom = os.path.join(TMP, "bom.qkv")
with open(bom, "wb") as f:
    f.write(b'\xef\xbb\xbftokenize "a"\n')
for args, stdin in ((["--script", bom], None), ([], b'\xef\xbb\xbftokenize "a"\n')):
    p = subprocess.run([QKV, "--db", DB, "--model", "builtin"] + args, input=stdin, capture_output=True, timeout=120)
    check(p.returncode == 0 and b"unknown command" not in p.stderr, f"a BOM before the first command ({args})", p.stderr)
# export gguf writes over a GGUF only, and puts no second GGUF in a folder that opens by its one
# (the loaded model's, an installed one's): a checkpoint's model.safetensors was overwritten, and
# the installed folder then refused to open ("holds 2 GGUF files"), with every replay of its runs
ck = os.path.join(inst, "model.safetensors")
with open(ck, "rb") as f:
    ck_bytes = f.read()
p = run(["--model", src, "-e", f"export gguf {ck}"])
with open(ck, "rb") as f:
    same = f.read() == ck_bytes
check(p.returncode == 1 and b"exists and is not a GGUF file" in p.stderr and same,
      "export gguf over another model's safetensors: refused, the file kept", (p.stderr, same))
second = os.path.join(xdg, "qkv", "models", "ggufed", "second.gguf")
# (a GGUF opened by its file's path, elsewhere, is a file among others: export writes beside it)
for how, env, what in ((gf, {"XDG_DATA_HOME": xdg}, b"the folder of an installed model"),
                       ("ggufed", {"XDG_DATA_HOME": xdg}, b"the folder of the loaded model"),
                       (src, {"XDG_DATA_HOME": xdg}, b"the folder of an installed model")):
    p = run(["--model", how, "-e", f"export gguf {second}"], env=env)
    check(p.returncode == 1 and what in p.stderr and not os.path.exists(second),
          f"export gguf beside the GGUF of a model's folder (--model {os.path.basename(how)}): refused", p.stderr)
again = os.path.join(TMP, "again.gguf")
p = run(["--model", src, "-e", f"export gguf {again}; export gguf {again} type=f16"])
check(p.returncode == 0, "export gguf over a GGUF it wrote: allowed", p.stderr)
# what the folder holds besides models is listed with why its name loads nothing: a folder named
# builtin (the built-in model's name) and one with no model files (both were listed as "?", as if
# `load NAME` would open them); the models have no such note
os.makedirs(os.path.join(xdg, "qkv", "models", "builtin"))
os.makedirs(os.path.join(xdg, "qkv", "models", "notes"))
with open(os.path.join(xdg, "qkv", "models", "notes", "readme.txt"), "w") as f:
    f.write("not a model\n")
p = run(["--json", "-e", "models"], env={"XDG_DATA_HOME": xdg, "QKV_MODEL": "builtin"})
o = jlines(p)
why = {m["name"] + ("/" + m["path"].rsplit("/", 2)[-2] if "path" in m else ""): m.get("unusable")
       for m in (o[0]["models"] if o else [])}
check((why.get("builtin/models") or "").startswith("its name is the built-in model's") and
      (why.get("notes/models") or "").startswith("not a model") and why.get("mine/models", 1) is None and
      why.get("ggufed/models", 1) is None, "models: an unusable folder says why", why)
p = run(["-e", "models"], env={"XDG_DATA_HOME": xdg, "QKV_MODEL": "builtin"})
check(b"(not a model: no config.json, .gguf or .bin in it)" in p.stdout, "and in text", p.stdout)
p = run(["-e", "quit now"])
check(p.returncode != 0 and b"takes no positional argument" in p.stderr, "quit takes no argument", p.stderr)
p = run(["--json", "-e", "help"])
names = [c["name"] for c in jlines(p)[0]["commands"]] if p.returncode == 0 else []
check("quit" in names and "exit" in names and "q" in names, "help lists quit, exit and q", names)
p = run(["-e", "frobnicate; quit"])
check(p.returncode == 1, "a failure before quit still exits 1", p.returncode)
# the REPL (--no-tui on a pseudo-terminal) leaves at quit
import pty
import select
import signal
import time

def repl_session(chunks, args=("--json", "--no-tui"), env=None):
    """Run qkv interactively (the REPL: --no-tui) on a pseudo-terminal, writing chunks with a pause
    between them (a chunk that is a number: that signal sent to qkv, a float: a pause of that many
    seconds); returns (wait status or None, everything it printed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(env or {})
        os.execv(QKV, [QKV, "--db", DB] + list(args))
    seen, status, deadline = b"", None, time.time() + 60
    pending = list(chunks)
    next_at = time.time() + 0.5
    while status is None and time.time() < deadline:
        if pending and time.time() >= next_at:
            chunk = pending.pop(0)
            if isinstance(chunk, float):
                next_at = time.time() + chunk
                continue
            if isinstance(chunk, int):
                os.kill(pid, chunk)
            else:
                os.write(fd, chunk)
            next_at = time.time() + 0.4
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                pass
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)
    return status, seen


status, seen = repl_session([b'tokenize "a"\nquit\ntokenize "zzz"\n'])
check(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "the REPL leaves at quit",
      seen[-400:])
check(b'{"quit":true}' in seen and b'"pieces":["a"]' in seen and b'"pieces":["z"' not in seen,
      "the REPL runs nothing after quit", seen[-400:])
# the banner says untrained only of a model that is (it said so of SmolLM2 and the teaching model)
for name, untrained in (("builtin", True), ("teach", False)):
    status, seen = repl_session([b"quit\n"], args=("--no-tui",), env={"QKV_MODEL": name})
    check((b"(untrained, random weights" in seen) == untrained and b"\nmodel: " in seen,
          f"the REPL's banner on {name}", seen[:300])
# q and :q (what vi users type first) leave the REPL too
for word in (b"q", b":q"):
    status, seen = repl_session([b'tokenize "a"\n' + word + b'\ntokenize "zzz"\n'])
    check(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and b'{"quit":true}' in seen
          and b'"pieces":["z"' not in seen, f"the REPL leaves at {word.decode()}", seen[-400:])
# Ctrl-C at the interactive prompt, even twice, does not quit
status, seen = repl_session([b"\x03", b"\x03", b"\x03", b'tokenize "b"\n', b"quit\n"])
check(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and b'"pieces":["b"]' in seen,
      "Ctrl-C at the REPL prompt does not quit", seen[-400:])
# SIGTERM or SIGHUP at the prompt: the REPL leaves with 128+N (the history kept), running nothing more
for sig in (signal.SIGTERM, signal.SIGHUP):
    status, seen = repl_session([b'tokenize "a"\n', b'tokenize "half', int(sig), b'"\ntokenize "zzz"\n'])
    check(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 128 + sig
          and b'"pieces":["a"]' in seen and b'"pieces":["z"' not in seen and b'"pieces":["h' not in seen,
          f"{sig.name} at the REPL prompt: exit {128 + sig}, nothing more runs", (status, seen[-400:]))

# a prompt longer than the context: a clear error, or truncation when asked for
long = "a" * 400
p = run(["--json", "-e", f'generate "{long}" max=4'])
check(p.returncode != 0 and "truncate=true" in p.stderr.decode(), "too long a prompt is refused", p.stderr)
p = run(["--json", "-e", f'generate "{long}" max=4 truncate=true temperature=0'])
check(p.returncode == 0 and jlines(p)[0]["n_truncated"] == 400 + 3 - 256, "truncate=true keeps the end", p.stderr)

# odd UTF-8 goes through without harm
p = run(["--json", "-e", 'tokenize "\\xff\\xfe ok \\xe2\\x82"'])
check(p.returncode == 0, "invalid UTF-8 in a prompt is accepted", p.stderr)

# new-model, load and a model with a real tokenizer layout
d = os.path.join(TMP, "m")
p = run(["--json", "-e", f"new-model gpt2 layers=2 heads=2 d=32 ctx=64 seed=5 out={d}; load {d}; model"])
check(p.returncode == 0, "new-model then load", p.stderr)
o = jlines(p)
check(o[2]["n_layer"] == 2 and o[2]["n_ctx"] == 64 and o[2]["untrained"], "the written model is what was asked", o[2])
p = run(["--model", d, "--json", "-e", "model"])
check(jlines(p)[0]["path"] == d, "--model opens it", p.stdout)
# fewer key/value heads than heads: a Llama's grouped-query attention; GPT-2 and BERT have none,
# and new-model wrote a checkpoint nothing loads ("shape [32, 64], expected [32, 96]"), train
# failed with that error (before 2026-12-06)
text = os.path.join(TMP, "gqa.txt")
with open(text, "w") as fh:
    fh.write("the cat sees the dog. " * 40)
for fam, cmd in (("gpt2", "new-model gpt2"), ("bert", "new-model bert"), ("gpt2", f"train {text} family=gpt2 seq=16")):
    gq = os.path.join(TMP, "gqa-" + cmd.split()[0] + "-" + fam)
    p = run(["-e", f"{cmd} layers=1 heads=2 kv_heads=1 d=32 ctx=32 out={gq}"])
    err = p.stderr.decode()
    check(p.returncode == 1 and f"kv_heads=1: {fam} has a key/value head for each query head" in err
          and len(err.splitlines()) == 1 and not os.path.exists(os.path.join(gq, "config.json")),
          f"{cmd} kv_heads=1 (heads=2) is refused", err)
# a write that fails part-way (a full disk; here a file-size limit, whose SIGXFSZ qkv ignores:
# it killed qkv mid-write before 2026-12-07) leaves no folder of new-model's behind: it left the
# tokenizer and config.json without weights, a folder nothing could load
import resource
whole = os.path.join(TMP, "whole")
run(["-e", f"new-model gpt2 layers=2 heads=2 d=128 ctx=64 seed=5 out={whole}"])
sizes = {f: os.path.getsize(os.path.join(whole, f)) for f in os.listdir(whole)}
small = max(v for f, v in sizes.items() if not f.endswith(".safetensors"))
check(sizes.get("model.safetensors", 0) > 2 * small, "the weights are the largest file", sizes)


def fsize_limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # as a shell leaves it; qkv sets its own
    resource.setrlimit(resource.RLIMIT_FSIZE, (small + 4096, small + 4096))


part = os.path.join(TMP, "part", "model")
p = subprocess.run([QKV, "--db", DB, "-e", f"new-model gpt2 layers=2 heads=2 d=128 ctx=64 seed=5 out={part}"],
                   capture_output=True, timeout=120, preexec_fn=fsize_limit)
err = p.stderr.decode()
check(p.returncode == 1 and err.startswith("error: ") and len(err.splitlines()) == 1 and "too large" in err
      and not os.path.exists(part), "new-model past a file-size limit: one line, no folder left", (p.returncode, err,
      os.path.exists(part) and os.listdir(part)))
# weights bigger than the disk's free space: refused before a byte of them is written (a 2.6 TB
# shape was written until the disk filled, before 2026-12-07)
big = os.path.join(TMP, "too-big")
p = run(["-e", f"new-model gpt2 layers=200 heads=16 d=16384 ctx=64 out={big}"])
err = p.stderr.decode()
check(p.returncode == 1 and "its weights need 2.58 TB and the disk holding" in err and not os.path.exists(big),
      "new-model bigger than the disk: refused at once, nothing left", err)
gq = os.path.join(TMP, "gqa-llama")
p = run(["--json", "-e", f"new-model gpt2 layers=1 heads=2 kv_heads=2 d=32 ctx=32 out={gq}-gpt2; "
         f"new-model llama layers=1 heads=2 kv_heads=1 d=32 ctx=32 out={gq}; load {gq}; model"])
check(p.returncode == 0 and jlines(p)[-1]["n_kv_head"] == 1, "kv_heads=heads for GPT-2, kv_heads=1 for a Llama",
      p.stderr)
# a model with no learned positions: the error in the command's name, as pe rotary's is (it had none)
p = run(["--model", gq, "-e", "pe learned"])
err = p.stderr.decode()
check(p.returncode == 1 and err.startswith("error: pe learned: ") and "rotary" in err, "pe learned on a Llama", err)

# new-model out= writes over an untrained model (regenerated), never over a trained one (the
# teaching model, a train run's folder with its train_state.bin), another's tokenizer or the
# loaded model's files: before 2026-12-06 it replaced them all, exit 0
import hashlib
import shutil


def digests(folder):
    return {f: hashlib.sha256(open(os.path.join(folder, f), "rb").read()).hexdigest() for f in sorted(os.listdir(folder))}


NEW = "new-model gpt2 layers=1 heads=1 d=8 ctx=16 seed=10 out="
was = digests(d)
p = run(["-e", f"new-model gpt2 layers=2 heads=2 d=32 ctx=64 seed=6 out={d}; new-model gpt2 layers=2 heads=2 d=32 ctx=64 seed=5 out={d}"])
check(p.returncode == 0 and digests(d) == was, "new-model writes over an untrained model (the same one again)", p.stderr)
teach = os.path.join(os.environ.get("QKV_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")),
                     "data", "models", "teach")
victim = os.path.join(TMP, "trained-copy")
shutil.copytree(teach, victim)
corpus = os.path.join(TMP, "corpus.txt")
with open(corpus, "w") as fh:
    fh.write("the cat sat on the mat and the dog ran to the park\n" * 40)
run_dir = os.path.join(TMP, "train-run")
p = run(["-e", f"train {corpus} out={run_dir} family=gpt2 layers=1 heads=1 d=8 ctx=16 batch=1 seq=8 steps=2"])
check(p.returncode == 0 and os.path.exists(os.path.join(run_dir, "train_state.bin")), "a tiny train run", p.stderr)
tok_only = os.path.join(TMP, "tok-only")
os.makedirs(tok_only)
shutil.copy(os.path.join(d, "vocab.json"), tok_only)
for folder, model, want in ((victim, None, f"'{victim}' already holds a trained model (config.json)"),
                            (run_dir, None, f"'{run_dir}' already holds a trained model (config.json)"),
                            (tok_only, None, f"'{tok_only}' already holds vocab.json, which new-model writes"),
                            (d, d, f"'{d}' holds the loaded model (config.json)")):
    before = digests(folder)
    p = run((["--model", model] if model else []) + ["-e", NEW + folder])
    err = p.stderr.decode()
    check(p.returncode == 1 and len(err.splitlines()) == 1 and f"error: new-model: {want}" in err,
          f"new-model over {os.path.basename(folder)} is refused, naming the file", (p.returncode, err))
    check(digests(folder) == before, f"new-model over {os.path.basename(folder)} leaves it as it was")
# a new-model that fails makes no folder (its tokenizer files were left, and train then refused
# the folder: "already holds vocab.json")
for opts, want in (("prefix=foo.", "prefix=foo."), ("vocab=10", "smaller than the tokenizer")):
    gone = os.path.join(TMP, "nm-failed-" + opts.split("=")[0])
    p = run(["-e", f"new-model gpt2 layers=1 heads=2 d=32 ctx=64 {opts} out={gone}"])
    check(p.returncode == 1 and want in p.stderr.decode() and not os.path.exists(gone),
          f"new-model {opts} fails and makes no folder", (p.stderr, os.path.exists(gone) and os.listdir(gone)))

# a NaN in the weights (a damaged file): generate, logits and experiments say so (before
# 2026-12-06 generate gave token 0 three times with log-probabilities null, logits printed nan)
import shutil
import struct


def damaged_copy(name, value, whole, tensor="ln_f.weight"):
    """A copy of model d with tensor's first value (or all of them) set to value."""
    out = os.path.join(TMP, name)
    shutil.copytree(d, out)
    with open(os.path.join(out, "model.safetensors"), "r+b") as fh:
        (hn,) = struct.unpack("<Q", fh.read(8))
        a, b = json.loads(fh.read(hn))[tensor]["data_offsets"]
        fh.seek(8 + hn + a)
        fh.write(struct.pack("<f", value) * ((b - a) // 4 if whole else 1))
    return out


nd = damaged_copy("nan-model", float("nan"), True)
for cmd in ('generate "hi" max=3 temperature=0', 'logits "hi"'):
    p = run(["--model", nd, "-e", cmd])
    err = p.stderr.decode()
    check(p.returncode == 1 and "not finite numbers (NaN or infinite)" in err and "damaged" in err and len(err.splitlines()) == 1,
          f"NaN weights: {cmd} says so in one line", err)
# ... and quantized: the block types' kernels quantize their input, which turned the NaN (or an
# infinity) into zeros: uniform logits, "\u0000" generated, no error (before 2026-12-06); an
# infinity made infinite logits, which only NaN was checked for (float weights too)
ind = damaged_copy("inf-model", float("inf"), False)
for model, what in ((nd, "NaN"), (ind, "an infinity")):
    for typ in ("off", "q8_0", "q4_0", "int8"):
        for cmd in ('generate "hi" max=3 temperature=0', 'logits "hi"'):
            p = run(["--model", model, "-e", f"quantize {typ}", "-e", cmd])
            err = p.stderr.decode()
            check(p.returncode == 1 and "not finite numbers (NaN or infinite)" in err and len(err.splitlines()) == 1,
                  f"{what} in the weights, quantize {typ}: {cmd} says so in one line", (p.returncode, err))

# ... in a block: every command that reads the hidden states says so, not only those that read
# the logits (embed printed nan, similarity a cosine of 0, probe train an accuracy, heads and
# attention tables of NaN, with exit 0, before 2026-12-07)
bnd = damaged_copy("nan-block", float("nan"), False, "h.0.attn.c_attn.weight")
for cmd in ('embed "hi there"', 'similarity "a cat" "a dog"', 'attention "hi there" layer=1 head=0',
            'heads "hi there"', 'rollout "hi there"', 'layersim "hi there"', 'lens "hi there"',
            'probe train number n=40 steps=5'):
    p = run(["--model", bnd, "-e", cmd])
    err = p.stderr.decode()
    check(p.returncode == 1 and "hidden states that are not finite numbers (NaN or infinite) after block 0" in err
          and len(err.strip().splitlines()) == 1, f"NaN in a block's weights: {cmd} says so in one line",
          (p.returncode, err, p.stdout[-200:]))

# bench on an encoder: prefill only, embeddings per second; generation is refused
bd = os.path.join(TMP, "bert-bench")
run(["-e", f"new-model bert layers=1 heads=2 d=32 ff=64 ctx=40 seed=3 out={bd}"])
p = run(["--model", bd, "--json", "-e", "bench prompt=16 reps=1 embed=8"])
o = jlines(p)[0] if p.returncode == 0 else {}
check(o.get("prefill_tok_s", 0) > 0 and o.get("embed_per_s", 0) > 0 and o.get("embed_tokens") == 8,
      "bench on an encoder measures prefill and embeddings", (p.stderr, o))
check([o.get(k, "absent") for k in ("decode_tok_s_reps", "decode_bw_fraction_reps", "kv_bytes_per_token")] == [None] * 3,
      "bench on an encoder: no generation arrays, no KV cache (it gave [0] and bytes of a cache it does not keep)", o)
# rollout names the limit a long text hits first: the context (the built-in model's 256), not
# the maps; within a context of 4096, the 32 layers' maps, with the most tokens they allow (it
# said "too many for N layers of maps (or the context of C)" in both cases)
p = run(["-e", "rollout ids=" + ",".join(["5"] * 300)])
err = p.stderr.decode()
check(p.returncode == 1 and "rollout: 300 tokens do not fit in the context of 256" in err and "maps" not in err,
      "rollout beyond the context names the context", err)
deep = os.path.join(TMP, "deep")
run(["-e", f"new-model gpt2 layers=32 heads=1 d=8 ctx=4096 seed=3 out={deep}"])
p = run(["--model", deep, "-e", "rollout ids=" + ",".join(["5"] * 4000)])
err = p.stderr.decode()
check(p.returncode == 1 and "attention maps" in err and "at most 3952 tokens" in err and "context" not in err,
      "rollout within the context but past the maps' memory names the maps and the longest text", err)
# bench-train on an encoder: refused in bench-train's name, saying what it times and what an
# encoder can be trained as (it said "train: bert models are not trainable"); its options' errors
# are bench-train's too
p = run(["--model", bd, "-e", "bench-train steps=1 reps=1"])
err = p.stderr.decode()
check(p.returncode == 1 and len(err.splitlines()) == 1 and err.startswith("error: bench-train: ") and "encoder" in err
      and "language-model training" in err and "reward train" in err, "bench-train on an encoder is refused", err)
p = run(["--model", bd, "-e", "bench-train batch=0"])
check(p.returncode == 1 and p.stderr.decode().startswith("error: bench-train: batch=0"), "bench-train batch=0",
      p.stderr)
# compare before quantize names what to run (it listed "off" among the types to convert to)
p = run(["-e", 'compare "hi"'])
check(p.returncode != 0 and b"run quantize TYPE first" in p.stderr and b"off" not in p.stderr,
      "compare before quantize says what to run", p.stderr)
# no generation: its figures are null, not 0 (as prompt=0 gives null prefill figures)
check(all(k in o and o[k] is None for k in ("decode_tok_s", "decode_bw_fraction", "decode_bw_fraction_with_kv",
                                             "decode_bw_fraction_min", "decode_bw_fraction_max")),
      "bench on an encoder: the generation figures are null", o)
p = run(["--model", bd, "-e", "bench gen=4"])
check(p.returncode != 0 and b"encoder" in p.stderr, "bench gen= on an encoder is refused", p.stderr)
p = run(["--model", bd, "-e", "bench prompt=0"])
check(p.returncode != 0 and b"encoder" in p.stderr and b"prompt=" in p.stderr, "bench prompt=0 on an encoder is refused",
      p.stderr)
p = run(["--model", bd, "-e", "bench embed=41"])
check(p.returncode != 0 and b"context" in p.stderr, "bench embed= beyond the context is refused", p.stderr)
p = run(["--model", bd, "--json", "-e", "bench prompt=2 reps=1 embed=30"])
check(p.returncode == 0, "embed= longer than the prompt is fine", p.stderr)

# text tables: a token's label is one cell (a newline or an escape in a piece is shown, never
# raw, so rows stay rows), names are cut at a character, and on a terminal the C1 controls are
# shown too (a UTF-8 terminal may act on U+009B as on ESC [)
p = run(["-e", 'attention "a\\nb \\x1b[31mc" layer=0 head=0'])
pj = run(["--json", "-e", 'tokenize "a\\nb \\x1b[31mc"'])
n_tok = len(jlines(pj)[0]["ids"]) if pj.returncode == 0 else -1
rows = p.stdout.decode().split("\n")[1:-1]
check(p.returncode == 0 and len(rows) == n_tok and b"\x1b" not in p.stdout and "\u21b5" in rows[1],
      "attention: one row per token, the newline shown as a glyph, no raw escape", (p.stdout, n_tok))
p = run(["-e", 'attention "abc" layer=0 head=all; attention "abc" layer=all head=1'])
heads = [l for l in p.stdout.decode().split("\n") if l.startswith("layer ")]
check(p.returncode == 0 and heads == [f"layer 0 head {h} (rows: queries, columns: keys)" for h in range(4)]
      + [f"layer {l} head 1 (rows: queries, columns: keys)" for l in range(4)],
      "attention head=all / layer=all: the text shows every map asked for", p.stdout)
p = run(["-e", 'logits "x" top=40'])
check(p.returncode == 0 and len(p.stdout.decode().strip().split("\n")) >= 40 and b"\x1b" not in p.stdout
      and all(len(l.split("logit")) == 2 for l in p.stdout.decode().strip().split("\n")[-40:]),
      "logits top=40: one line a token, no raw control character", p.stdout)
adb = os.path.join(TMP, "annot.db")
name = "a" + "\u00e9" * 12  # 13 columns, 25 bytes: wider than the 10-column annotator cell
p = subprocess.run([QKV, "--db", adb, "--annotator", name, "-e",
                    'rank "Hi" k=2 max=2 seed=1; order 2 1; history; rankings'], capture_output=True, timeout=120)
try:
    t = p.stdout.decode("utf-8")
except UnicodeDecodeError:
    t = None
check(p.returncode == 0 and t is not None and name not in t and t.count(name[:9] + "\u2026 ") == 3,
      "history and rankings cut a long name at a character, with an ellipsis, in its column", (p.stderr, p.stdout))
import pty


def drain(mfd):
    """All a pseudo-terminal's other end was given, until it closed; mfd is closed after."""
    got = b""
    while True:
        try:
            chunk = os.read(mfd, 65536)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    os.close(mfd)
    return got


mfd, sfd = pty.openpty()
p = subprocess.run([QKV, "--db", DB, "-e", 'generate "q\\u009bz" max=1 seed=1; history 1'], stdout=sfd,
                   stderr=subprocess.PIPE, timeout=120)
os.close(sfd)
tty = drain(mfd)
check(p.returncode == 0 and b"\xc2\x9b" not in tty and b"<U+009B>" in tty,
      "on a terminal, a C1 control in the text is shown as <U+009B>", tty)
# and an error message on a terminal: a name read from a file or typed (a GGUF's architecture
# "\e[2J" cleared the screen as qkv said it was unknown), its control characters shown
mfd, sfd = pty.openpty()
p = subprocess.run([QKV, "--db", DB, "-e", 'load "nowhere-\x1b[2J-\u009b"'], stdout=subprocess.PIPE, stderr=sfd,
                   timeout=120)
os.close(sfd)
tty = drain(mfd)
check(p.returncode == 1 and b"\x1b" not in tty and b"\xc2\x9b" not in tty and b"nowhere-^[[2J-<U+009B>" in tty,
      "on a terminal, an error's control characters are shown", tty)

# positional encodings: the sinusoids of "Attention is all you need", learned ones, cosine
import math
for cmd, want in (("pe sinusoidal relative=true", b"relative=true is rotary's"),
                  ('attention "ab" layer=0 head=0 layer=1', b"layer= given twice (0 and 1)")):
    p = run(["-e", cmd])
    check(p.returncode != 0 and want in p.stderr, f"{cmd}: refused", p.stderr)
pe = jlines(run(["--json", "-e", "pe sinusoidal len=50 dim=16"]))[0]["matrix"]
err = max(abs(pe[p][k] - (math.sin if k % 2 == 0 else math.cos)(p / 10000 ** ((k - k % 2) / 16)))
          for p in range(50) for k in range(16))
check(err < 1e-6, "pe sinusoidal follows the formula", err)
cs = jlines(run(["--json", "-e", "pe learned len=10 cosine=true"]))[0]["matrix"]
check(len(cs) == 10 and all(abs(cs[i][i] - 1) < 1e-5 for i in range(10)) and cs[2][5] == cs[5][2],
      "pe learned cosine=true is a symmetric similarity matrix", cs[:2])

# what `save` writes after `pe ... cosine=true` is the cosine similarity itself, computed here
# with NumPy from the formula (sinusoidal) and from wpe.weight read out of the file (learned)
import numpy as np
import gpt2_ref


def saved_csv(path):
    with open(path) as f:
        rows = [r.split(",") for r in f.read().strip().split("\n")]
    return np.array([[float(x) for x in r[1:]] for r in rows[1:]])


def cosine(m):
    n = m / np.linalg.norm(m, axis=1, keepdims=True)
    return n @ n.T


pos, k = np.arange(4)[:, None], np.arange(8)[None, :]
ang = pos / 10000 ** ((k - k % 2) / 8)
sinus = np.where(k % 2 == 0, np.sin(ang), np.cos(ang))
cpath = os.path.join(TMP, "pe-cos.csv")
p = run(["-e", f"pe sinusoidal len=4 dim=8 cosine=true; save {cpath}"])
got = saved_csv(cpath) if p.returncode == 0 else None
check(got is not None and got.shape == (4, 4) and np.abs(got - cosine(sinus)).max() < 1e-5,
      "save after pe sinusoidal cosine=true writes the cosine similarity", (cosine(sinus), got))
# the saved SVG has the screen's axes and title: positions down, dimensions across, numbered
spath = os.path.join(TMP, "pe.svg")
p = run(["-e", f"pe sinusoidal len=4 dim=8; save {spath}"])
texts = re.findall(r"<text[^>]*>([^<]*)</text>", open(spath).read()) if p.returncode == 0 else []
check("sinusoidal position encoding: 4 positions x 8 dimensions" in texts and
      all(str(i) in texts for i in range(8)), "pe's SVG has its title with the sizes and numbered axes", texts)
pem = os.path.join(TMP, "pe-model")
run(["-e", f"new-model gpt2 layers=1 heads=2 d=32 ctx=40 seed=11 std=0.5 out={pem}"])
wpe = gpt2_ref.read_safetensors(os.path.join(pem, "model.safetensors"))["wpe.weight"]
p = run(["--model", pem, "--json", "-e", f"pe learned; pe learned len=12 cosine=true; save {cpath}"])
o = jlines(p) if p.returncode == 0 else [{}, {}]
got = np.array(o[0].get("matrix", []))
check(got.shape == wpe.shape and np.abs(got - wpe).max() < 1e-6,
      "pe learned is the model's wpe.weight, as read from model.safetensors", (wpe.shape, got.shape))
got = saved_csv(cpath) if p.returncode == 0 else None
check(got is not None and got.shape == (12, 12) and np.abs(got - cosine(wpe[:12])).max() < 1e-5,
      "save after pe learned cosine=true writes the cosine similarity of wpe.weight", (cosine(wpe[:12])[:2], got))

# compare's table: every row under the header's columns, a space token shown as "·" (it printed
# nothing, and the rows ran out of line with the header)
p = run(["--model", "builtin", "-e", "quantize int8", "-e", 'compare "ab ab"'])
lines = p.stdout.decode().split("\n")
at = next((i for i, l in enumerate(lines) if "KL (nats)" in l), len(lines))
hdr = lines[at] if at < len(lines) else ""
rows = [l for l in lines[at + 1:] if re.match(r"^ +\d+  ", l)]
col = hdr.find("KL (nats)")
check(p.returncode == 0 and len(rows) >= 3 and all(re.match(r"\d\.\d{3}e[-+]\d\d  (same|DIFF) ", r[col:]) for r in rows)
      and any("\u00b7" in r[:col] for r in rows), "compare's rows line up under its header, whitespace shown",
      "\n".join([hdr] + rows))

# a generation of one token decodes nothing after the prefill: its decoding speed is null, not 0
# (which the TUI showed as "0.0 tok/s"); two tokens have one
p = run(["--json", "-e", 'generate "x" max=1 stop=false', "-e", 'generate "x" max=2 stop=false'])
g1, g2 = (jlines(p) + [{}, {}])[:2] if p.returncode == 0 else ({}, {})
check(len(g1.get("ids", [])) == 1 and g1.get("decode_tok_s", 0) is None and g1.get("prefill_tok_s", 0) > 0 and
      len(g2.get("ids", [])) == 2 and g2.get("decode_tok_s", 0) > 0, "generate max=1: decode_tok_s null, max=2: a speed",
      (p.stderr, {k: g1.get(k) for k in ("ids", "prefill_tok_s", "decode_tok_s")}, g2.get("decode_tok_s")))

# neuron's table: the scores right-aligned under "score" and each rank of contributions in its
# column, whatever the numbers' widths (a score of -10 or less, or a dimension of two digits,
# pushed the rest of its row one column right)
nargs = ["--model", pem, "-e", 'neuron "The cat sat on the mat" head=1']
sc = (jlines(run(nargs[:2] + ["--json"] + nargs[2:])) or [{}])[0].get("scores") or [0]
p = run(nargs)
lines = p.stdout.decode().rstrip("\n").split("\n")
hdr, rows = (lines[1], lines[2:]) if len(lines) > 2 else ("", [])
ends = {hdr.find("score") + 5} | {12 + re.match(r" *-?[\d.]+", r[12:]).end() for r in rows}
starts = [{[m.start() for m in re.finditer(r"d\d+ [-+]", r)][k] for r in rows} for k in range(3)]
check(p.returncode == 0 and min(x for x in sc if x is not None) <= -10 and len(rows) == len(sc) and len(ends) == 1 and
      all(len(c) == 1 for c in starts), "neuron's columns line up, scores of -10 and less too", "\n".join(lines))

# settings a person typed are shown and logged as typed (0.9, not the float's 0.899999976), and
# the run still replays bit for bit (the float read back is the same float)
p = run(["--json", "-e", "set temperature 0.8; set top_p 0.3; set; generate \"Hi\" max=3 temperature=0.9 top_p=0.9 "
         "seed=5; history 1"])
objs = jlines(p)
st, gen, hist = objs[2], objs[3], objs[4]
row = (hist.get("runs") or [{}])[0]
shown = jlines(run(["--json", "-e", "show %d" % gen.get("run_id", 0)]))[0]
check(p.returncode == 0 and st.get("temperature") == 0.8 and st.get("top_p") == 0.3 and row.get("temperature") == 0.9
      and shown.get("temperature") == 0.9 and shown.get("top_p") == 0.9, "set, history and show give 0.8 / 0.3 / 0.9",
      (st.get("temperature"), st.get("top_p"), row.get("temperature"), shown.get("temperature"), shown.get("top_p")))
p = run(["--json", "-e", "replay %d" % gen.get("run_id", 0)])
check(p.returncode == 0 and jlines(p)[0].get("identical") is True, "a run at temperature 0.9 replays identical", p.stderr)

# save: what the last heatmap command showed, as CSV and SVG, written atomically
import csv as csvmod
import xml.etree.ElementTree as ET
svg, csvf = os.path.join(TMP, "a.svg"), os.path.join(TMP, "a.csv")
p = run(["--json", "-e", f'attention "abcd" layer=1 head=0; save {svg}; save {csvf}'])
att = jlines(p)[0]["matrix"]
check(p.returncode == 0 and os.path.exists(svg) and os.path.exists(csvf), "save writes the files", p.stderr)
rows = list(csvmod.reader(open(csvf)))
check(rows[0][1:] == ["a", "b", "c", "d"] and rows[3][0] == "c", "CSV has the token labels", rows[:2])
check(abs(float(rows[4][2]) - att[3][1]) < 1e-6 and rows[1][2] == "", "CSV has the values, masked cells empty", rows[1:])
root = ET.parse(svg).getroot()
check(root.tag.endswith("svg") and len([e for e in root.iter() if e.tag.endswith("rect")]) >= 10, "SVG parses, has cells", root.tag)
# the figure says what it shows: the title `save` reports, as its first text
title = jlines(p)[1]["title"]
texts = [e.text for e in root.iter() if e.tag.endswith("text")]
check("layer 1 head 0" in title and texts and texts[0] == title, "SVG carries its title", (title, texts[:2]))
# every map asked for is saved (before 2026-12-06 only the first): the SVG as a grid, layers down
# and heads across, the CSV as one long table, both against the JSON's layers[l][h]
gsvg, gcsv = os.path.join(TMP, "grid.svg"), os.path.join(TMP, "grid.csv")
p = run(["--json", "-e", f'attention "abcd" layer=all head=all; save {gsvg}; save {gcsv}; '
         f'attention "abcd" layer=all head=1; save {TMP}/col.csv'])
objs = jlines(p)
maps = objs[0]["layers"]
nl, nh = len(maps), len(maps[0])
check(p.returncode == 0 and objs[1].get("maps") == nl * nh and objs[2].get("maps") == nl * nh,
      "save after layer=all head=all counts every map", [o.get("maps") for o in objs[1:3]])
rows = list(csvmod.reader(open(gcsv)))
check(rows[0] == ["layer", "head", "query", "key", "query_token", "key_token", "weight"], "grid CSV header", rows[0])
got = {(int(r[0]), int(r[1]), int(r[2]), int(r[3])): float(r[6]) for r in rows[1:]}
want = {(l, h, i, j): maps[l][h][i][j] for l in range(nl) for h in range(nh) for i in range(4) for j in range(i + 1)}
check(set(got) == set(want) and max(abs(got[k] - want[k]) for k in want) < 1e-6,
      "grid CSV: every unmasked entry of every map, masked ones left out", (len(got), len(want)))
check(all(r[4] == "abcd"[int(r[2])] and r[5] == "abcd"[int(r[3])] for r in rows[1:]), "grid CSV names the tokens",
      rows[1:3])
root = ET.parse(gsvg).getroot()
texts = [e.text for e in root.iter() if e.tag.endswith("text")]
tips = [e.text for e in root.iter() if e.tag.endswith("title")]
check(texts[0] == objs[1]["title"] and "every head of every layer" in texts[0] and
      all(f"layer {l}" in texts for l in range(nl)) and all(f"head {h}" in texts for h in range(nh)),
      "grid SVG: the title, a row per layer, a column per head", texts[:8])
check(len(tips) == nl * nh * 10 and any(t.startswith(f"layer {nl - 1} head {nh - 1} 3,3: ") for t in tips),
      "grid SVG: a cell per unmasked entry of every map, each tooltip naming its map", (len(tips), tips[-1:]))
col = list(csvmod.reader(open(os.path.join(TMP, "col.csv"))))
check(objs[4].get("maps") == nl and {r[1] for r in col[1:]} == {"1"} and len({r[0] for r in col[1:]}) == nl,
      "head=1 of every layer saves one map a layer, named by its head", col[1:2])
p = run(["-e", "save /tmp/x.txt"])
check(p.returncode != 0 and b"nothing to save" in p.stderr, "save without a figure says so", p.stderr)
p = run(["-e", f'pe sinusoidal len=4 dim=4; save {TMP}/nodir/x.svg'])
check(p.returncode != 0 and b"cannot write" in p.stderr, "save into a missing directory fails cleanly", p.stderr)

# Ctrl-C in the middle of a generation: it stops, keeps (and logs) what was produced, exits 130
import signal
import time
big = os.path.join(TMP, "big")
run(["-e", f"new-model gpt2 layers=6 heads=8 d=512 ctx=2048 seed=2 out={big}"])


def interrupted(args, after=1.5, timeout=60, tries=4, too_late=None, too_early=None, sig=signal.SIGINT):
    """Run qkv ARGS, send sig (SIGINT) after `after` seconds; (returncode, stdout, stderr, seconds it took to stop).
    The machine's speed varies: a run that too_late(stdout, stderr) says had finished its work before the
    signal came is tried again (up to `tries` times in all) sending the signal twice as soon, and one
    that too_early says had not begun it (a loaded machine still opening the model) twice as late."""
    for _ in range(tries):
        proc = subprocess.Popen([QKV, "--db", DB] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(after)
        t0 = time.time()
        proc.send_signal(sig)
        try:
            so, se = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            so, se = proc.communicate()
        if too_late and too_late(so, se):
            after /= 2
        elif too_early and too_early(so, se):
            after *= 2
        else:
            break
    return proc.returncode, so, se, time.time() - t0


rc, so, se, took = interrupted(["--model", big, "--json", "-e", 'generate "x" max=2000 temperature=0; model'],
                               too_early=lambda so, se: b'"ids":[]' in so.replace(b" ", b""))
check(rc == 130 and took < 30, "SIGINT stops the generation promptly: exit status 130", (rc, round(took, 1), se))
lines = [json.loads(l) for l in so.decode().split("\n") if l]
check(len(lines) == 1 and lines[0].get("stop_reason") == "cancelled" and 0 < len(lines[0]["ids"]) < 2000,
      "the partial generation is printed, marked cancelled; the script stops", [(l.get("stop_reason"), len(l.get("ids", []))) for l in lines])
check(b"Sanitizer" not in se and b"error" not in se, "no crash, no error", se)
# Ctrl-C inside bench's generation: the repetition cut short is not counted (its time, of a few
# tokens, was divided by all of them: "median 651% of the read bandwidth" as the result)
rc, so, se, took = interrupted(["--model", big, "--json", "-e", "bench prompt=8 gen=2000 reps=1"], after=3,
                               too_late=lambda so, se: b"decode_tok_s" in so and b'"interrupted":false' in so)
check(rc == 130 and b"cancelled before the first repetition" in se and b"decode_tok_s" not in so,
      "bench stopped inside its first repetition: no figures", (rc, so[-300:], se[-300:]))

h = jlines(run(["--json", "-e", "history 1"]))[0]["runs"][0]
check(h["stop_reason"] == "cancelled" and h["run_id"] == lines[0]["run_id"], "the cancelled run is logged", h)
# its replay stops where it was stopped (before 2026-12-06 it ran on to max=2000: DIFFERENT)
rp = jlines(run(["--json", "-e", "replay %d" % h["run_id"]]))[0]
check(rp.get("identical") is True and len(rp.get("ids", [])) == len(lines[0]["ids"]),
      "a run stopped with Ctrl-C replays identical, to the token where it stopped",
      (rp.get("identical"), rp.get("first_difference"), len(rp.get("ids", [])), len(lines[0]["ids"])))
# Ctrl-C stopping a replay before the run's length: not reported as a difference (it said
# "DIFFERENT from token 153", identical false, of a run that reproduces)
full = jlines(run(["--model", big, "--json", "-e", 'generate "y" max=1500 temperature=0']))[0]
rc, so, se, took = interrupted(["--json", "-e", "replay %d" % full["run_id"]], after=1.5,
                               too_late=lambda so, se: b'"interrupted":false' in so,
                               too_early=lambda so, se: b'"ids":[]' in so.replace(b" ", b""))
rq = json.loads(so.decode().split("\n")[0]) if so.strip() else {}
check(rc == 130 and rq.get("identical", False) is None and rq.get("interrupted") is True
      and rq.get("first_difference") is None and 0 < len(rq.get("ids", [])) < 1500,
      "a replay stopped with Ctrl-C: identical null, interrupted, no difference claimed",
      (rc, rq.get("identical"), rq.get("interrupted"), rq.get("first_difference"), len(rq.get("ids", []))))
p = run(["-e", "replay %d" % full["run_id"]])  # and the text says how far it got (the whole replay here)
check(p.returncode == 0 and b"identical" in p.stdout, "the replay run to its end: identical", p.stdout[:200])

# SIGTERM (kill, timeout) and SIGHUP (the SSH connection dropped) stop the generation as Ctrl-C does,
# its tokens printed and logged as a cancelled run, then qkv leaves with 128+N (they ended it at once,
# the generation lost: no output, nothing logged)
for sig in (signal.SIGTERM, signal.SIGHUP):
    rc, so, se, took = interrupted(["--model", big, "--json", "-e", 'generate "x" max=2000 temperature=0; model'],
                                   too_early=lambda so, se: b'"ids":[]' in so.replace(b" ", b""), sig=sig)
    out = [json.loads(l) for l in so.decode().split("\n") if l]
    check(rc == 128 + sig and len(out) == 1 and out[0].get("stop_reason") == "cancelled"
          and 0 < len(out[0]["ids"]) < 2000 and b"Sanitizer" not in se,
          f"{sig.name} stops the generation, printed and marked cancelled; exit {128 + sig}",
          (rc, round(took, 1), so[-200:], se[-300:]))
    if out:
        h = jlines(run(["--json", "-e", "history 1"]))[0]["runs"][0]
        check(h["stop_reason"] == "cancelled" and h["run_id"] == out[0].get("run_id"),
              f"the run {sig.name} stopped is logged", (h, out[0].get("run_id")))
# ... and in the REPL, where it ended qkv too
status, seen = repl_session([b'generate "x" max=2000 temperature=0\n', 2.0, int(signal.SIGHUP), b'tokenize "zzz"\n'],
                            args=("--json", "--no-tui", "--model", big))
m = re.search(rb'\{"run_id":(\d+).*?"stop_reason":"cancelled"', seen)
check(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 129 and m is not None
      and b'"pieces":["z"' not in seen, "SIGHUP during a generation in the REPL: printed, cancelled, exit 129",
      (status, seen[-400:]))
if m:
    h = jlines(run(["--json", "-e", "history 1"]))[0]["runs"][0]
    check(h["stop_reason"] == "cancelled" and h["run_id"] == int(m.group(1)), "... and logged", h)
# ... and while qkv waits for the next line of its input
for sig in (signal.SIGTERM, signal.SIGHUP):
    proc = subprocess.Popen([QKV, "--db", DB], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(b'tokenize "w"\n')
    proc.stdin.flush()
    time.sleep(1.5)
    proc.send_signal(sig)
    so, se = proc.communicate(timeout=30)
    check(proc.returncode == 128 + sig and b" w\n" in so and not se, f"{sig.name} while waiting for input: "
          f"{128 + sig}, no error", (proc.returncode, so, se))

# Ctrl-C during rank: no ranking is pending or stored, and the message names the candidates that
# stay in the run log (it said only "rank: interrupted", and the session-end warning "nothing was
# stored" while the runs were)
n_rank = jlines(run(["--json", "-e", "rankings 1000"]))[0]
rc, so, se, took = interrupted(["--model", big, "-e", 'rank "x" k=8 max=400 temperature=1'],
                               too_late=lambda so, se: b"order them" in so)
# (a candidate cut off inside its generation is said to be: it was counted among the finished)
m = re.search(rb"rank: interrupted after (\d+) of 8 candidates \(logged as runs (\d+)\.\.(\d+); no ranking pending\)", se)
mc = re.search(rb"rank: interrupted during candidate (\d+) of 8: (\d+) finished, logged as runs (\d+)\.\.(\d+) with "
               rb"the last one cut off \(stop_reason cancelled\); no ranking pending", se)
check(rc == 130 and (m or mc) is not None, "SIGINT during rank names the candidates logged", (rc, se[-300:]))
if m or mc:
    logged = jlines(run(["--json", "-e", "history 20 kind=rank"]))[0]["runs"]
    reason = {r["run_id"]: r["stop_reason"] for r in logged}
    n, first, last = (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else \
        (int(mc.group(1)), int(mc.group(3)), int(mc.group(4)))
    finished = [reason.get(i) != "cancelled" for i in range(first, last + 1)]
    check(last - first + 1 == n and all(i in reason for i in range(first, last + 1)) and
          (all(finished) if m else finished == [True] * (n - 1) + [False] and int(mc.group(2)) == n - 1),
          "the interrupted rank's candidates are the runs it names, the cut-off one said so", (se[-300:], reason))
check(jlines(run(["--json", "-e", "rankings 1000"]))[0] == n_rank, "an interrupted rank stores no ranking", se[-200:])

# a model file cut shorter in place while loaded (a download or a copy over it): the next command
# says so (it crashed with SIGBUS reading the mapped weights past the new end)
cutdir = os.path.join(TMP, "cut-model")
run(["-e", f"new-model gpt2 layers=2 heads=2 d=32 ctx=64 seed=4 out={cutdir}"])
proc = subprocess.Popen([QKV, "--db", DB, "--model", cutdir], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
proc.stdin.write(b'logits "ab" top=1\n')
proc.stdin.flush()
first = proc.stdout.readline()
st = os.path.join(cutdir, "model.safetensors")
with open(st, "r+b") as fh:
    fh.truncate(1000)
proc.stdin.write(b'logits "abc" top=1\n')
so, se = proc.communicate(timeout=60)
check(first and proc.returncode == 1 and b"model.safetensors' is shorter than when it was loaded (1000 of " in se
      and b"load it again when it is whole" in se, "a loaded model file cut shorter: a clear error, no SIGBUS",
      (first, proc.returncode, se[-300:]))

# heads induction fills the context exactly when the model adds no first token (GPT-2): len = n_ctx / 2
(ind,) = jlines(run(["--json", "-e", "heads induction len=128"]))
check(len(ind["tokens"]) == 256, "heads induction len=128 fills a context of 256", len(ind.get("tokens", [])))
# without len=, a context under twice the default 50 takes the longest that fits (it was refused)
small = os.path.join(TMP, "ctx32")
run(["-e", f"new-model gpt2 layers=2 heads=2 d=32 ctx=32 seed=3 out={small}"])
(ind,) = jlines(run(["--model", small, "--json", "-e", "heads induction"]))
check(len(ind.get("tokens", [])) == 32, "heads induction on a context of 32: len 16 by default", len(ind.get("tokens", [])))
p = run(["--model", small, "-e", "heads induction len=20"])
check(p.returncode != 0 and b"len=20: twice that does not fit in the context of 32" in p.stderr, "len=20 asked for is refused",
      p.stderr)
p = run(["-e", "heads induction len=129"])
check(p.returncode != 0 and b"does not fit in the context of 256" in p.stderr, "len=129 does not", p.stderr)

# Ctrl-C in the middle of a long analysis: it stops within a block's time (or a probe's step), prints and
# logs nothing, exits 130 (before, each ran to its end and printed its result)
words = "the cat sat on a mat while dogs ran over hills and birds sang".split()
clean = " ".join(words[i % len(words)] for i in range(60))
for what, cmd in (("patch", f'patch "{clean} cat" "{clean} dog" wrong=#5'),
                  ("probe train", "probe train number n=120 steps=100000")):
    before = jlines(run(["--json", "-e", "probe runs"]))[0]
    rc, so, se, took = interrupted(["--model", big, "-e", cmd], timeout=30,
                                   too_late=lambda so, se, w=what: f"{w.split()[0]}: ".encode() not in se)
    check(rc == 130 and took < 10, f"SIGINT stops {what} promptly", (rc, round(took, 1)))
    check(f"{what.split()[0]}: ".encode() in se and b"interrupted" in se and not so.strip(), f"{what}: says interrupted, "
          "prints no result", (so[:200], se[-300:]))
    after = jlines(run(["--json", "-e", "probe runs"]))[0]
    check(after == before, f"{what}: no probe run logged", (before, after))

# Ctrl-C during quantize (a second or two on this model, Q6_K's search, the embedding too): it stops
# between chunks of rows, "quantize: interrupted", no report, exit 130 (it ran to its end, printed
# its whole report, then exited 130)
rc, so, se, took = interrupted(["--model", big, "-e", "quantize q6_k embed=true; model"], after=0.8, timeout=30,
                               too_late=lambda so, se: so.strip() != b"", too_early=lambda so, se: b"quantize" not in se)
check(rc == 130 and b"quantize: interrupted" in se and not so.strip() and took < 5,
      "SIGINT stops quantize, printing no report", (rc, round(took, 1), so[:200], se[-300:]))

# seed=: a non-negative integer below 2^53 (JSON keeps it exact); one past 64 bits is out of that
# range too, not "not an integer" (which it said before 2026-12-06)
for val, want in (("-1", "a non-negative integer expected"), ("abc", "a non-negative integer expected"),
                  ("9007199254740992", "must be below 2^53"), ("99999999999999999999", "must be below 2^53")):
    p = run(["-e", f'generate "x" max=1 seed={val}'])
    check(p.returncode == 1 and f"seed={val}: {want}".encode() in p.stderr, f"seed={val}: {want}", p.stderr)
p = run(["--json", "-e", 'generate "x" max=1 seed=9007199254740991'])
check(p.returncode == 0 and json.loads(p.stdout)["seed"] == 9007199254740991, "seed=2^53-1 is taken exactly", p.stdout[:200])
# rank's candidate i takes seed S+i-1: each below 2^53 too (candidate 2 of seed=2^53-1 was logged
# with seed 2^53, and replay then called the run damaged)
n_runs = len(jlines(run(["--json", "-e", "history 1000"]))[0]["runs"])
p = run(["-e", 'rank "x" k=3 max=1 seed=9007199254740990'])
check(p.returncode == 1 and b"candidate 3 would use seed 9007199254740992" in p.stderr and
      b"seed= up to 9007199254740989" in p.stderr, "rank: S+k-1 at 2^53 refused", p.stderr)
check(len(jlines(run(["--json", "-e", "history 1000"]))[0]["runs"]) == n_runs, "the refused rank logged nothing")
(rk,) = jlines(run(["--json", "-e", 'rank "x" k=3 max=1 seed=9007199254740989; skip']))[:1]
check([c["seed"] for c in rk.get("candidates", [])] == [9007199254740989, 9007199254740990, 9007199254740991],
      "rank: S = 2^53-k, every seed below 2^53", rk)

# rollout on the 32-layer model: Ctrl-C stops a 2,000-token text (exit 130, nothing printed;
# test_engine stops it in the layers' products); a 1,000-token one runs to its end, each row a
# distribution over the tokens up to its own (a decoder's rollout is lower triangular)
ids2k = ",".join(str(5 + i % 50) for i in range(2000))
# (since 2026-12-06 its products run in about a second: when it had printed its result before the
# signal came, it is tried again sending the signal sooner)
rc, so, se, took = interrupted(["--model", deep, "-e", "rollout ids=" + ids2k], timeout=30,
                               too_late=lambda so, se: b"rollout: " not in se)
check(rc == 130 and took < 10 and b"rollout: " in se and b"interrupted" in se and not so.strip(),
      "SIGINT stops rollout promptly, printing no result", (rc, round(took, 1), se[-300:]))
# lens on a 32-layer model of d=8 and GPT-2's 50,257 tokens: its blocks take little, the 33 passes
# through the head the rest (seconds): Ctrl-C there stops it too (it ran to its end and printed)
wide = os.path.join(TMP, "deep-wide")
run(["-e", f"new-model gpt2 layers=32 heads=1 d=8 ctx=1024 vocab=50257 seed=3 out={wide}"])
rc, so, se, took = interrupted(["--model", wide, "-e", "lens ids=" + ",".join(str(5 + i % 50) for i in range(1000))],
                               after=2, timeout=30, too_late=lambda so, se: so.strip() != b"",
                               too_early=lambda so, se: b"lens: " not in se)
check(rc == 130 and took < 10 and b"lens: interrupted" in se and not so.strip(),
      "SIGINT stops lens in its passes through the head, printing no result", (rc, round(took, 1), se[-300:]))
ro = jlines(run(["--model", deep, "--json", "-e", "rollout ids=" + ",".join(str(5 + i % 50) for i in range(1000))]))
R = ro[0]["matrix"] if ro else []
check(len(R) == 1000 and all(abs(sum(r) - 1) < 1e-4 for r in R) and
      all(v == 0 for i, r in enumerate(R) for v in r[i + 1:]) and min(min(r) for r in R) >= 0,
      "rollout of 1,000 tokens: rows sum to 1, nothing above the diagonal", len(R))

# a single .safetensors file with its tokenizer beside it, with and without config.json (then
# the shape is inferred, with GPT-2's head size of 64): the same logits as the directory
import shutil
d64 = os.path.join(TMP, "d64")
run(["-e", f"new-model gpt2 layers=2 heads=2 d=128 ctx=64 seed=9 std=0.2 out={d64}"])
lone = os.path.join(TMP, "lone")
os.makedirs(lone)
for f in ("vocab.json", "merges.txt"):
    shutil.copy(os.path.join(d64, f), lone)
shutil.copy(os.path.join(d64, "model.safetensors"), os.path.join(lone, "weights.safetensors"))
ref = jlines(run(["--model", d64, "--json", "-e", "logits ids=5,6,7 top=5"]))[0]["top"]
p = run(["--model", os.path.join(lone, "weights.safetensors"), "--json", "-e", "model; logits ids=5,6,7 top=5"])
check(p.returncode == 0, "a lone .safetensors without config.json opens", p.stderr)
if p.returncode == 0:
    info, lg = jlines(p)
    check(info["n_head"] == 2 and info["n_layer"] == 2 and info["n_ctx"] == 64, "the shape is inferred", info)
    check([t["id"] for t in lg["top"]] == [t["id"] for t in ref] and
          max(abs(a["logit"] - b["logit"]) for a, b in zip(lg["top"], ref)) < 1e-5, "same logits as the directory", lg)
shutil.copy(os.path.join(d64, "config.json"), lone)
p = run(["--model", os.path.join(lone, "weights.safetensors"), "--json", "-e", "model"])
check(p.returncode == 0 and jlines(p)[0]["untrained"], "with config.json beside it, it is read", p.stderr)
os.remove(os.path.join(lone, "merges.txt"))
p = run(["--model", os.path.join(lone, "weights.safetensors"), "-e", "model"])
check(p.returncode != 0 and b"merges" in p.stderr, "a missing tokenizer file is named", p.stderr)

# --tokenizer: a tokenizer alone (the real GPT-2 vocabulary, when ../shared is there)
shared = os.environ.get("QKV_SHARED_MODELS", "")
gtok = os.path.join(shared, "gpt2-bpe-tokenizer")
if shared and os.path.isdir(gtok):
    p = run(["--tokenizer", gtok, "--json", "-e", 'tokenize "Hello world"; tokenize "hello <|endoftext|>"; '
             'tokenize "hello <|endoftext|>" special=false'])
    t = jlines(p)
    check(p.returncode == 0 and t[0]["ids"] == [15496, 995], "--tokenizer alone: Hello world", p.stderr)
    check(t[1]["ids"] == [31373, 220, 50256], "<|endoftext|> is one token by default", t[1]["ids"])
    check(len(t[2]["ids"]) > 3 and 50256 not in t[2]["ids"], "special=false reads it as text", t[2]["ids"])
else:
    print(f"note: {gtok} absent: the --tokenizer checks with the real GPT-2 vocabulary did not run")
p = run(["--tokenizer", "/nonexistent", "-e", "model"])
check(p.returncode != 0 and b"/nonexistent" in p.stderr, "a missing --tokenizer is named", p.stderr)

# formats qkv does not read are named, not called broken safetensors (a .bin is read only when
# it is a llama2.c checkpoint whose header matches its size; a GGUF without keys names the first missing one)
for name, content, needle in [("m.gguf", b"GGUF\x03\x00\x00\x00" + bytes(16), b"general.architecture"),
                              ("m.bin", bytes(64), b"not a llama2.c checkpoint"),
                              ("m.pt", b"PK\x03\x04" + bytes(60), b"PyTorch zip")]:
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(content)
    p = run(["--model", path, "-e", "model"])
    check(p.returncode == 1 and needle in p.stderr and p.stderr.count(b"\n") == 1, f"{name}: the format is named", p.stderr)

# human (non-JSON) output
p = run(["-e", 'tokenize "a b"'])
check(b"3 tokens" in p.stdout, "tokenize prints a table", p.stdout)
p = run(["-e", "help"])
check(b"generate" in p.stdout and b"attention" in p.stdout, "help lists the commands", p.stdout)

# ---- options and settings, each shown to change what the next command does ----
import struct


def repl_json(lines, args=()):
    """The JSON objects the REPL prints for lines (it goes on after a failing command)."""
    status, seen = repl_session([("\n".join(lines) + "\nquit\n").encode()], ("--json", "--no-tui") + tuple(args))
    check(status is not None and os.WIFEXITED(status), "the REPL ran " + "; ".join(lines)[:80], seen[-300:])
    lines = seen.decode("utf-8", "replace").replace("\r", "").split("\n")
    return [json.loads(l[l.index('{"'):]) for l in lines if '{"' in l and not l.lstrip().startswith("qkv>")]


def rewrite_tensors(path, edit):
    """Rewrite the F32 tensors of a safetensors file in place: edit({name: float32 array}) changes them."""
    header, start, raw = gpt2_ref.read_safetensors_header(path)
    ts = {n: np.frombuffer(raw[start + i["data_offsets"][0]:start + i["data_offsets"][1]], dtype="<f4")
          .reshape(i["shape"]).copy() for n, i in header.items() if n != "__metadata__" and i["dtype"] == "F32"}
    edit(ts)
    out = bytearray(raw)
    for n, a in ts.items():
        b, e = header[n]["data_offsets"]
        out[start + b:start + e] = a.astype("<f4").tobytes()
    with open(path, "wb") as f:
        f.write(out)


# a model with a vocabulary of 300 and its own tokenizer; a second tokenizer that merges "a b"
om = os.path.join(TMP, "opt-model")
run(["-e", f"new-model gpt2 layers=2 heads=2 d=32 ctx=64 vocab=300 seed=21 std=0.3 out={om}"])
tokdir = os.path.join(TMP, "opt-tok")
os.makedirs(tokdir)
vocab = json.load(open(os.path.join(om, "vocab.json")))
vocab["ab"] = max(vocab.values()) + 1
json.dump(vocab, open(os.path.join(tokdir, "vocab.json"), "w"))
open(os.path.join(tokdir, "merges.txt"), "w").write("#version: 0.2\na b\n")

# load PATH tokenizer=PATH: the model with another tokenizer
p = run(["--json", "-e", f'load {om}; tokenize "abab"; load {om} tokenizer={tokdir}; tokenize "abab"; model'])
o = jlines(p) if p.returncode == 0 else []
check(len(o) == 5 and o[1]["ids"] == [64, 65, 64, 65] and o[3]["ids"] == [vocab["ab"]] * 2 and
      o[4]["path"] == om, "load tokenizer= replaces the model's tokenizer", (p.stderr, o[1:2], o[3:4]))

# a failed load keeps the old model: name, path and logits (the REPL goes on after the error)
bad = os.path.join(TMP, "opt-bad")
shutil.copytree(om, bad)
st = os.path.join(bad, "model.safetensors")
os.truncate(st, os.path.getsize(st) // 2)
o = repl_json([f"load {om}", "logits ids=5,6,7 top=5", f"load {bad}", "model", "logits ids=5,6,7 top=5",
               "load /nonexistent/dir", "model", "logits ids=5,6,7 top=5"])
errs = [x for x in o if "error" in x]
ok = [x for x in o if "error" not in x and "quit" not in x]
check(len(errs) == 2 and bad in errs[0]["error"] and "/nonexistent/dir" in errs[1]["error"],
      "both bad loads fail, naming the file", errs)
if check(len(ok) == 6, "six answers besides the errors", o):
    m0, l0, m1, l1, m2, l2 = ok
    check((m1["name"], m1["path"]) == (m0["name"], m0["path"]) == (m2["name"], m2["path"]) and m0["path"] == om,
          "after a failed load the model is the old one", (m0.get("path"), m1.get("path"), m2.get("path")))
    check(l0["top"] == l1["top"] == l2["top"], "after a failed load the logits are unchanged", (l0["top"][:1], l1["top"][:1]))

# --threads N and set threads N: reported by model and set; the results do not depend on them
res = {}
for n in (1, 2):
    p = run(["--model", om, "--threads", str(n), "--json", "-e",
             'model; logits "The cat sat on the mat" top=10 full=true; generate "The cat" max=12 temperature=0'])
    o = jlines(p) if p.returncode == 0 else [{}, {}, {}]
    check(o[0].get("threads") == n, f"--threads {n}: model reports {n} threads", o[0].get("threads"))
    res[n] = o
p = run(["--model", om, "--json", "-e", "set threads 1; model; set threads 2; model; set"])
o = jlines(p) if p.returncode == 0 else [{}] * 5
check([x.get("threads") for x in o] == [1, 1, 2, 2, 2], "set threads N: reported by set and model",
      [x.get("threads") for x in o])
if res[1][1] and res[2][1]:
    a1, a2 = np.array(res[1][1]["logits"]), np.array(res[2][1]["logits"])
    check(a1.shape == a2.shape and np.abs(a1 - a2).max() <= 1e-5, "the same logits on 1 and 2 threads",
          float(np.abs(a1 - a2).max()) if a1.shape == a2.shape else (a1.shape, a2.shape))
    check(res[1][2]["ids"] == res[2][2]["ids"], "the same greedy tokens on 1 and 2 threads",
          (res[1][2]["ids"], res[2][2]["ids"]))

# model reports the weights' type and the KV cache's (the TUI's header shows both): F32 weights
# under kv auto, then set kv f16, then quantized under auto again
p = run(["--model", om, "--json", "-e", "model; set kv f16; model; quantize q8_0; set kv auto; model"])
o = jlines(p) if p.returncode == 0 else []
mt = [(x.get("dtype"), x.get("kv_dtype")) for x in o if "n_layer" in x]
check(mt == [("F32", "F32"), ("F32", "F16"), ("Q8_0", "F16")], "model reports dtype and kv_dtype", (mt, p.stderr))

# set kv f16 / --kv f16: the KV cache's type, reported by set and bench (kv_dtype, its bytes at 2
# a value); the logits move by the rounding (more than nothing, less than 1e-2); in the middle of
# a session with a quantized model, bench against=original times both with it
T = 'logits "The cat sat on the mat" full=true'
a16 = None
p = run(["--model", om, "--json", "-e", f"set; {T}; set kv f16; {T}; bench prompt=8 gen=4 reps=1; set kv f32; "
         f"bench prompt=8 gen=4 reps=1; {T}; quantize q8_0; set kv f16; bench prompt=8 gen=4 reps=1 against=original"])
o = jlines(p) if p.returncode == 0 else [{}] * 11
check(p.returncode == 0 and len(o) == 11, "set kv f16 / f32 in a session", (p.stderr, len(o)))
if len(o) == 11 and o[1] and o[3]:
    check([(o[k].get("kv"), o[k].get("kv_dtype")) for k in (0, 2, 5, 9)] ==
          [("auto", "F32"), ("f16", "F16"), ("f32", "F32"), ("f16", "F16")], "set reports kv (auto: F32 for float weights)",
          [(o[k].get("kv"), o[k].get("kv_dtype")) for k in (0, 2, 5, 9)])
    a32, a16, b32 = (np.array(o[k]["logits"]) for k in (1, 3, 7))
    d = float(np.abs(a32 - a16).max())
    check(0 < d <= 1e-2, "kv f16 moves the logits by the rounding: 0 < max |d| <= 1e-2", d)
    check(np.array_equal(a32, b32), "set kv f32 again: the F32 cache's logits, bit for bit", float(np.abs(a32 - b32).max()))
    b16, b32q, bq = o[4], o[6], o[10]
    check((b16.get("kv_dtype"), b32q.get("kv_dtype"), bq.get("kv_dtype")) == ("F16", "F32", "F16"),
          "bench reports kv_dtype", (b16.get("kv_dtype"), b32q.get("kv_dtype"), bq.get("kv_dtype")))
    want = 2 * 2 * 32 * 4 * (8 + (4 + 1) / 2)  # K and V, 2 layers, 32 values a position, 4 bytes, mean context
    check(b32q.get("kv_bytes_per_token") == want and b16.get("kv_bytes_per_token") == want / 2,
          "bench counts the KV cache at 4 bytes a value in F32, 2 in F16",
          (b32q.get("kv_bytes_per_token"), b16.get("kv_bytes_per_token"), want))
    check("decode_ratio" in bq and bq.get("against", {}).get("dtype") == "F32" and
          bq.get("against", {}).get("kv_dtype") == "F16", "set kv after quantize: "
          "bench against=original runs", bq.get("against"))
p = run(["--model", om, "--kv", "f16", "--json", "-e", f"set; {T}"])
o = jlines(p) if p.returncode == 0 else [{}, {}]
check(o[0].get("kv") == "f16" and a16 is not None and
      o[1].get("logits") == a16.tolist(),
      "--kv f16: set reports it, the logits of set kv f16", (p.stderr, o[0].get("kv")))
# kv auto (the default): an F16 cache for quantized weights, F32 for F32 ones; after `quantize`
# the converted model's logits are those of set kv f16, the original's (bench against=original)
# those of F32, and `set kv auto` after f32 goes back
Q = 'logits "The cat sat on the mat" full=true'
p = run(["--model", om, "--json", "-e", f"quantize q8_0; set; {Q}; set kv f16; {Q}; set kv f32; {Q}; set kv auto; set; {Q}; "
         "bench prompt=8 gen=4 reps=1 against=original; quantize off; set; " + Q])
o = jlines(p) if p.returncode == 0 else [{}] * 14
check(p.returncode == 0 and len(o) == 14, "kv auto with quantize in a session", (p.stderr, len(o)))
if len(o) == 14 and o[2] and o[4] and o[6]:
    ks = [(o[k].get("kv"), o[k].get("kv_dtype")) for k in (1, 8, 12)]
    check(ks == [("auto", "F16"), ("auto", "F16"), ("auto", "F32")], "set: kv auto is F16 for Q8_0, F32 for the float model", ks)
    qa, q16, q32, qa2 = (o[k]["logits"] for k in (2, 4, 6, 9))
    check(qa == q16 and qa2 == q16 and q32 != q16, "kv auto after quantize: the F16 cache's logits, bit for bit",
          (qa == q16, qa2 == q16, q32 != q16))
    check(o[13]["logits"] == a32.tolist() if a16 is not None else False,
          "quantize off under kv auto: the float model's F32-cache logits", None)
    bq = o[10]
    check((bq.get("kv_dtype"), bq.get("against", {}).get("kv_dtype")) == ("F16", "F32"),
          "bench against=original under kv auto: F16 for the converted model, F32 for the original",
          (bq.get("kv_dtype"), bq.get("against", {}).get("kv_dtype")))
# kv auto on F16 and BF16 weights: the F16 cache (the cache no finer than the weights), whose
# logits are those of set kv f16 bit for bit; set kv f32 still gives the F32 cache's
for dt in ("f16", "bf16"):
    dm = os.path.join(TMP, "auto-" + dt)
    run(["-e", f"new-model gpt2 layers=2 heads=2 d=32 ctx=64 vocab=300 seed=21 std=0.3 dtype={dt} out={dm}"])
    p = run(["--model", dm, "--json", "-e", f"set; {Q}; set kv f16; {Q}; set kv f32; set; {Q}"])
    o = jlines(p) if p.returncode == 0 else [{}] * 7
    check(p.returncode == 0 and len(o) == 7, f"kv auto on {dt} weights: a session", (p.stderr, len(o)))
    if len(o) == 7 and o[1] and o[3] and o[6]:
        check([(o[k].get("kv"), o[k].get("kv_dtype")) for k in (0, 5)] == [("auto", "F16"), ("f32", "F32")],
              f"set: kv auto is F16 for {dt} weights", [(o[k].get("kv"), o[k].get("kv_dtype")) for k in (0, 5)])
        check(o[1]["logits"] == o[3]["logits"] and o[6]["logits"] != o[1]["logits"],
              f"kv auto on {dt} weights: the F16 cache's logits, bit for bit; f32 differs", None)
# set before any model is loaded (set needs none): kv auto has no type yet; set kv f16 has
for args, want, text in ((["-e", "set"], ("auto", None), "kv auto  "), (["-e", "set kv f16"], ("f16", "F16"), "kv f16  ")):
    p = run(["--json"] + args)
    o = jlines(p) if p.returncode == 0 else [{}]
    pt = run(args)
    check(p.returncode == 0 and (o[-1].get("kv"), o[-1].get("kv_dtype", "-")) == want and pt.returncode == 0 and
          text in pt.stdout.decode(), f"{' '.join(args)} before a model is loaded", (p.returncode, p.stderr[-300:], o[-1], pt.stdout))
# a bad option value after --db and --annotator: one line, exit 2 (and, under the sanitizers,
# nothing the earlier options took is leaked)
for bad, msg in ((["--threads", "0"], "error: --threads: a whole number in 1..256 expected, not '0'\n"),
                 (["--threads", "1x"], "error: --threads: a whole number in 1..256 expected, not '1x'\n"),
                 (["--annotator", "x", "--threads"], "error: --threads needs an argument\n"),
                 (["--annotator", "x", "--bogus"], "error: unknown option '--bogus'\n")):
    p = run(["-e", "set"] + bad)
    check(p.returncode == 2 and p.stderr.decode().startswith(msg) and "Sanitizer" not in p.stderr.decode(),
          f"{' '.join(bad)}: refused in one line", p.stderr[:300])
p = run(["--kv", "q8", "-e", "set"])
check(p.returncode == 2 and p.stderr.decode() == "error: --kv: auto, f32, f16 or q8_0 expected, not 'q8'\n",
      "--kv q8 is refused with one line", p.stderr)

# set kv q8_0 / --kv q8_0: the Q8_0 cache, for heads of a multiple of 32 values. set, model and
# bench report it, bench counts 34 bytes for 32 values; the logits move by its rounding (more than
# nothing; more than F16's) and --kv q8_0 gives the same; greedy generation runs on it, is logged
# with it and replays identical. On heads of 16 (om's) set kv q8_0 is refused in one line; --kv
# q8_0 there fails the first command that needs the cache with the sizes, and names the types
# that serve.
qm = os.path.join(TMP, "q8kv-model")
run(["-e", f"new-model gpt2 layers=2 heads=1 d=32 ctx=64 vocab=300 seed=21 std=0.3 out={qm}"])
p = run(["--model", qm, "--json", "-e", f"{T}; set kv q8_0; model; {T}; set kv f16; {T}; set kv q8_0; "
         "bench prompt=8 gen=4 reps=1; generate \"The cat\" max=6 temperature=0"])
o = jlines(p) if p.returncode == 0 else [{}] * 9
check(p.returncode == 0 and len(o) == 9, "set kv q8_0 in a session", (p.stderr, len(o)))
if len(o) == 9 and o[0] and o[3] and o[5]:
    check((o[1].get("kv"), o[1].get("kv_dtype"), o[2].get("kv_dtype"), o[7].get("kv_dtype")) ==
          ("q8_0", "Q8_0", "Q8_0", "Q8_0"), "set, model and bench report the Q8_0 cache",
          (o[1].get("kv"), o[1].get("kv_dtype"), o[2].get("kv_dtype"), o[7].get("kv_dtype")))
    l32, l8, l16 = (np.array(o[k]["logits"]) for k in (0, 3, 5))
    d8, d16 = float(np.abs(l32 - l8).max()), float(np.abs(l32 - l16).max())
    check(d16 < d8 <= 0.5, "kv q8_0 moves the logits by its rounding, more than f16's", (d8, d16))
    want = 2 * 2 * 34 * (8 + (4 + 1) / 2)  # K and V, 2 layers, a block of 32 values (34 bytes) a position
    check(o[7].get("kv_bytes_per_token") == want, "bench counts the Q8_0 cache at 34 bytes a block",
          (o[7].get("kv_bytes_per_token"), want))
    check(len(o[8].get("ids", [])) == 6 and o[8].get("kv") == "q8_0", "generate runs on the Q8_0 cache, logged as q8_0",
          (o[8].get("ids"), o[8].get("kv")))
    # replayed from another cache type, the run gets a Q8_0 cache of its own: identical
    p = run(["--model", qm, "--kv", "f32", "--json", "-e", "replay %d" % o[8].get("run_id", 0)])
    r = jlines(p)[0] if p.returncode == 0 else {}
    check(r.get("identical") is True, "a run on the Q8_0 cache replays identical under --kv f32", (p.stderr, r))
    p = run(["--model", qm, "--kv", "q8_0", "--json", "-e", f"set; {T}"])
    o2 = jlines(p) if p.returncode == 0 else [{}, {}]
    check(o2[0].get("kv") == "q8_0" and o2[1].get("logits") == l8.tolist(), "--kv q8_0: the logits of set kv q8_0",
          (p.stderr, o2[0].get("kv")))
p = run(["--model", om, "--json", "-e", "set kv f16; set kv q8_0; set"])
o = jlines(p)
Q8MSG = "the Q8_0 KV cache needs heads of a multiple of 32 values; this model's have 16 (set kv f16, f32 or auto)"
check(p.returncode == 1 and "set kv q8_0: " + Q8MSG in p.stderr.decode() and len(o) == 2 and "error" in o[1],
      "set kv q8_0 on heads of 16: refused in one line", (p.returncode, p.stderr, o))
# --kv q8_0 with such a model, or load of one under kv q8_0: refused when the model is loaded,
# with the same line, not at the first command that needs the cache
p = run(["--model", om, "--kv", "q8_0", "-e", T])
check(p.returncode == 1 and p.stderr.decode() == "error: " + Q8MSG + "\n", "--kv q8_0 --model (heads of 16): refused "
      "at load", p.stderr)
p = run(["--model", qm, "--kv", "q8_0", "--json", "-e", f"load {om}"])
check(p.returncode == 1 and Q8MSG in p.stderr.decode(), "load (heads of 16) under kv q8_0: refused", p.stderr)
o = [x for x in repl_json([f"load {om}", "model", "set kv q8_0", "model"], ("--model", qm, "--kv", "q8_0"))
     if "quit" not in x]
check(len(o) == 4 and o[0].get("error", "").endswith(Q8MSG) and o[1].get("head_dim") == 32 and
      o[1].get("kv_dtype") == "Q8_0" and o[2].get("kv") == "q8_0" and o[3].get("path") == qm,
      "the refused load keeps the model and its Q8_0 cache (the REPL goes on)", o)

# every set key changes what the next generate does (and set reports it)
G = 'generate "The cat" max=10'
base = jlines(run(["--model", om, "--json", "-e", f"set temperature 0; {G}"]))[1]
greedy = base["ids"]


def after_set(setting, gen=G, extra=()):
    p = run(list(extra) + ["--model", om, "--json", "-e", f"set {setting}; {gen}"])
    o = jlines(p) if p.returncode == 0 else [{}, {}]
    check(p.returncode == 0, f"set {setting}", p.stderr)
    return o[0], o[1]


s, g = after_set("temperature 0")
check(s.get("temperature") == 0 and g["temperature"] == 0 and all(st["id"] == st["top"][0]["id"] for st in g["steps"]),
      "set temperature 0: greedy", g.get("temperature"))
hot = [after_set("seed %d" % k, gen=G + " temperature=2")[1]["ids"] for k in (1, 2, 3)]
check(any(h != greedy for h in hot), "temperature 2 samples other tokens than greedy (sanity)", hot)
s, g = after_set("top_k 1", gen=G + " temperature=2 seed=1")
check(s.get("top_k") == 1 and g["top_k"] == 1 and g["ids"] == greedy, "set top_k 1: the most likely token only",
      (g.get("ids"), greedy))
s, g = after_set("top_p 0.001", gen=G + " temperature=2 seed=1")
check(abs(s.get("top_p", 0) - 0.001) < 1e-9 and g["ids"] == greedy, "set top_p 0.001: the most likely token only",
      (g.get("ids"), greedy))
# top_p 0 keeps the most likely token, as transformers does, and is logged as given (before
# 2026-12-06 it switched the filter off silently: unfiltered sampling, logged and shown as 1)
s, g = after_set("top_p 0", gen=G + " temperature=2 seed=1")
check(s.get("top_p") == 0 and g["top_p"] == 0 and g["ids"] == greedy, "set top_p 0: the most likely token only",
      (s.get("top_p"), g.get("top_p"), g.get("ids"), greedy))
g = jlines(run(["--model", om, "--json", "-e", G + " temperature=2 seed=1 top_p=0"]))[0]
shown = jlines(run(["--json", "-e", "show %d" % g.get("run_id", 0)]))[0]
check(g["ids"] == greedy and g["top_p"] == 0 and shown.get("top_p") == 0, "top_p=0: greedy ids, logged as 0",
      (g.get("ids"), g.get("top_p"), shown.get("top_p")))
o = jlines(run(["--model", om, "--json", "-e", f"set seed 77; {G} temperature=2; {G} temperature=2; set seed random; "
                f"{G} temperature=2; {G} temperature=2; set"]))
check(o[0]["seed"] == 77 and o[1]["seed"] == o[2]["seed"] == 77 and o[1]["ids"] == o[2]["ids"],
      "set seed N: every generation uses it", [(x.get("seed"), x.get("ids")) for x in o[1:3]])
check(o[3]["seed"] is None and o[4]["seed"] != o[5]["seed"] and o[6]["seed"] is None,
      "set seed random: a fresh seed each time, reported", [x.get("seed") for x in o[3:]])
s, g = after_set("max 3", gen='generate "The cat" temperature=0')
check(s.get("max") == 3 and len(g["ids"]) == 3 and g["stop_reason"] == "length", "set max 3: three tokens", g.get("ids"))
s, g = after_set("alts 2")
check(s.get("alts") == 2 and all(len(st["top"]) == 2 for st in g["steps"]), "set alts 2: two alternatives per step",
      [len(st["top"]) for st in g["steps"]])
# greedy, so the run cannot end early on a sampled end-of-text token (it did, sampled, in a CI run)
g = jlines(run(["--model", om, "--json", "-e", G + " alts=7 temperature=0"]))[0]
check(all(len(st["top"]) == 7 for st in g["steps"]) and len(g["steps"]) == len(greedy) == 10,
      "alts=7: seven alternatives per step", ([len(st["top"]) for st in g["steps"]], len(greedy)))
long = "ab" * 40  # 80 tokens: more than the context of 64 (the last of max=10 tokens is not fed back)
p = run(["--model", om, "-e", f'generate "{long}" max=10'])
check(p.returncode != 0 and b"truncate" in p.stderr, "a prompt longer than the context is refused", p.stderr)
s, g = after_set("truncate true", gen=f'generate "{long}" max=10 temperature=0')
check(s.get("truncate") is True and g["n_truncated"] == 80 + 10 - 1 - 64 and len(g["ids"]) == 10,
      "set truncate true: the oldest tokens are dropped", g.get("n_truncated"))
s, g = after_set("annotator zed")
check(s.get("annotator") == "zed", "set annotator: reported", s)
shown = jlines(run(["--json", "-e", "show %d" % g["run_id"]]))[0]
check(shown["annotator"] == "zed", "set annotator: the run is logged with it", shown.get("annotator"))

# generate "" starts from the beginning-of-text token
g = jlines(run(["--json", "-e", 'generate "" max=3 temperature=0']))[0]
eot = jlines(run(["--json", "-e", 'tokenize "<|endoftext|>"']))[0]["ids"]
check(len(eot) == 1 and g["prompt_ids"] == eot and len(g["ids"]) == 3, 'generate "" starts from <|endoftext|>',
      (g.get("prompt_ids"), eot))

# end-of-text: a model whose every next token is <|endoftext|> (the final norm's output is the
# end-of-text embedding, made the longest) stops there by default; stop=false (or set stop false)
# goes on past it
em = os.path.join(TMP, "eos-model")
shutil.copytree(om, em)
eos_id = vocab["<|endoftext|>"]


def always_eos(ts):
    ts["wte.weight"][eos_id] *= 10
    ts["ln_f.weight"][:] = 0
    ts["ln_f.bias"][:] = ts["wte.weight"][eos_id]


rewrite_tensors(os.path.join(em, "model.safetensors"), always_eos)
o = jlines(run(["--model", em, "--json", "-e", 'generate "The cat" max=8; generate "The cat" max=8 stop=false; '
                'set stop false; generate "The cat" max=8; set stop true; generate "The cat" max=8']))
d, nostop, s_off, setoff, _s_on, on = o
check(d["stop_reason"] == "eos" and len(d["ids"]) <= 1 and d["steps"][0]["top"][0]["id"] == eos_id,
      "stopping at end-of-text happens by default", (d.get("stop_reason"), d.get("ids")))
# the end-of-text token stays among the run's tokens (with its probability) but is not text: the
# completion, the run log and the exports hold what the model wrote before it
check(d["ids"] == [eos_id] and d["text"] == "" and nostop["text"] == "<|endoftext|>" * 8,
      "the end-of-text token a generation stopped at is not in its text", (d.get("text"), nostop.get("text")))
hist = max(jlines(run(["--json", "-e", "history"]))[0]["runs"], key=lambda r: r["run_id"])
check(hist["text"] == "" and hist["stop_reason"] == "eos", "nor in the logged run's text", hist.get("text"))
check(nostop["stop_reason"] == "length" and nostop["ids"] == [eos_id] * 8, "stop=false goes past end-of-text",
      (nostop.get("stop_reason"), nostop.get("ids")))
check(s_off.get("stop") is False and setoff["ids"] == [eos_id] * 8 and on["stop_reason"] == "eos",
      "set stop false / true", (setoff.get("ids"), on.get("stop_reason")))

# `qkv CMD ARGS...`: each argument as the shell passes it (spaces, quotes, '=', newlines, ';', '#',
# backslashes), the same tokens as the text quoted with C escapes in -e
def c_quote(t):
    return '"' + "".join({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}.get(ch, ch) for ch in t) + '"'


for text in ["a b", 'say "hi"', "x=1 y", "a=b", "max=2", "a\nb\\n;#c", "tab\there", "", "caf\u00e9 \U0001F600"]:
    p = subprocess.run([QKV, "--db", DB, "--json", "tokenize", text], capture_output=True, timeout=60)
    want = jlines(run(["--json", "-e", "tokenize " + c_quote(text)]))[0]["ids"]
    got = jlines(p)[0].get("ids") if p.returncode == 0 else p.stderr
    check(got == want and (want or not text), f"qkv tokenize {text!r}: the argument is the text", (got, want))
p = subprocess.run([QKV, "--db", DB, "--json", "tokenize", "special=false", "<|endoftext|>"], capture_output=True,
                   timeout=60)
check(p.returncode == 0 and len(jlines(p)[0]["ids"]) > 1, "qkv tokenize special=false TEXT: the option is an option",
      p.stderr)
p = subprocess.run([QKV, "--db", DB, "--json", "generate", "two words", "max=2", "temperature=0"], capture_output=True,
                   timeout=60)
o = jlines(p) if p.returncode == 0 else [{}]
check(len(o[0].get("ids", [])) == 2 and o[0].get("temperature") == 0, "qkv generate TEXT max=2 temperature=0", p.stderr)

# TERM=dumb gives the plain REPL, not the full-screen interface
status, seen = repl_session([b'tokenize "a"\n', b"quit\n"], ("--json",), {"TERM": "dumb"})
check(status is not None and os.WIFEXITED(status) and b"qkv> " in seen and b"\x1b[?1049h" not in seen and
      b'"pieces":["a"]' in seen, "TERM=dumb: the plain REPL", seen[-300:])
status, seen = repl_session([b"q\n"], ("--json",), {"TERM": "xterm"})
check(status is not None and b"\x1b[?1049h" in seen and b"qkv> " not in seen, "with a TERM, the TUI (sanity)",
      seen[-200:])

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
