#!/usr/bin/env python3
"""Headless mode and the command language, through the real binary.

-e, --script, commands on stdin, --json (one object per command per line), key=value
options, C escapes in quoted text, `error: ...` on stderr with a non-zero exit, and the
engine commands' JSON fields (DESIGN.md's table).
"""
import json
import os
import subprocess
import sys
import tempfile

QKV = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="qkv-headless-")
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
    return [json.loads(l) for l in p.stdout.decode().splitlines()]


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

# --script and stdin give the same as -e
script = os.path.join(TMP, "s.qkv")
with open(script, "w") as f:
    f.write('# a comment\ntokenize "x y"\nset temperature 0\ngenerate "x" max=3\n')
s1 = run(["--json", "--script", script])
s2 = run(["--json"], stdin=open(script, "rb").read())
strip = lambda p: [{k: v for k, v in o.items() if not k.endswith(("_s", "_ms")) and k not in ("seed", "run_id")} for o in jlines(p)]
check(s1.returncode == 0 and strip(s1) == strip(s2) and len(strip(s1)) == 3, "--script and stdin agree",
      (s1.stdout[:200], s2.stdout[:200]))

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

def repl_session(chunks):
    """Run the REPL (--no-tui) on a pseudo-terminal, writing chunks with a pause between them;
    returns (wait status or None, everything it printed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(QKV, [QKV, "--db", DB, "--json", "--no-tui"])
    seen, status, deadline = b"", None, time.time() + 60
    pending = list(chunks)
    next_at = time.time() + 0.5
    while status is None and time.time() < deadline:
        if pending and time.time() >= next_at:
            os.write(fd, pending.pop(0))
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
# q and :q (what vi users type first) leave the REPL too
for word in (b"q", b":q"):
    status, seen = repl_session([b'tokenize "a"\n' + word + b'\ntokenize "zzz"\n'])
    check(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and b'{"quit":true}' in seen
          and b'"pieces":["z"' not in seen, f"the REPL leaves at {word.decode()}", seen[-400:])
# Ctrl-C at the interactive prompt, even twice, does not quit
status, seen = repl_session([b"\x03", b"\x03", b"\x03", b'tokenize "b"\n', b"quit\n"])
check(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and b'"pieces":["b"]' in seen,
      "Ctrl-C at the REPL prompt does not quit", seen[-400:])

# a prompt longer than the context: a clear error, or truncation when asked for
long = "a" * 400
p = run(["--json", "-e", f'generate "{long}" max=4'])
check(p.returncode != 0 and "truncate=true" in p.stderr.decode(), "too long a prompt is refused", p.stderr)
p = run(["--json", "-e", f'generate "{long}" max=4 truncate=true temperature=0'])
check(p.returncode == 0 and jlines(p)[0]["truncated"] == 400 + 3 - 256, "truncate=true keeps the end", p.stderr)

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

# positional encodings: the sinusoids of "Attention is all you need", learned ones, cosine
import math
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
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
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
p = run(["-e", "save /tmp/x.txt"])
check(p.returncode != 0 and b"nothing to save" in p.stderr, "save without a figure says so", p.stderr)
p = run(["-e", f'pe sinusoidal len=4 dim=4; save {TMP}/nodir/x.svg'])
check(p.returncode != 0 and b"cannot write" in p.stderr, "save into a missing directory fails cleanly", p.stderr)

# Ctrl-C in the middle of a generation: it stops, keeps (and logs) what was produced, exits 130
import signal
import time
big = os.path.join(TMP, "big")
run(["-e", f"new-model gpt2 layers=6 heads=8 d=512 ctx=2048 seed=2 out={big}"])
proc = subprocess.Popen([QKV, "--db", DB, "--model", big, "--json", "-e", 'generate "x" max=2000 temperature=0; model'],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
time.sleep(1.5)
proc.send_signal(signal.SIGINT)
try:
    so, se = proc.communicate(timeout=60)
except subprocess.TimeoutExpired:
    proc.kill()
    so, se = proc.communicate()
    check(False, "SIGINT stops the generation promptly")
check(proc.returncode == 130, "SIGINT: exit status 130", (proc.returncode, se))
lines = [json.loads(l) for l in so.decode().splitlines()]
check(len(lines) == 1 and lines[0].get("stop_reason") == "cancelled" and 0 < len(lines[0]["ids"]) < 2000,
      "the partial generation is printed, marked cancelled; the script stops", [(l.get("stop_reason"), len(l.get("ids", []))) for l in lines])
check(b"Sanitizer" not in se and b"error" not in se, "no crash, no error", se)
h = jlines(run(["--json", "-e", "history 1"]))[0]["runs"][0]
check(h["stop_reason"] == "cancelled" and h["run_id"] == lines[0]["run_id"], "the cancelled run is logged", h)

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
p = run(["--tokenizer", "/nonexistent", "-e", "model"])
check(p.returncode != 0 and b"/nonexistent" in p.stderr, "a missing --tokenizer is named", p.stderr)

# formats qkv does not read yet are named, not called broken safetensors
for name, content, needle in [("m.gguf", b"GGUF\x03\x00\x00\x00" + bytes(32), b"GGUF"),
                              ("m.bin", bytes(64), b".bin/.pt checkpoints"),
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

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
