#!/usr/bin/env python3
# test_chat_cmd.py - suite 'reference': chat=true [system="S"] on the commands that read a prompt
# (tokenize, logits, attention, generate, rank), through the headless binary, against transformers'
# apply_chat_template(messages, add_generation_prompt=True) on the same files.
#
# Each tokenizer directory holds a tokenizer.json whose special tokens are the format's and a
# tokenizer_config.json with a real template of tests/tok/chat/*.json:
#   ChatML    Qwen2's template on the Qwen2-style fixture (<|im_start|>, <|im_end|> special),
#             SmolLM2's on the SmolLM-style one;
#   Llama 3   Llama 3's template on the Llama 3-style fixture (<|begin_of_text|>, <|eot_id|>, ...);
#   Llama 2   the Llama 2 chat template, and Mistral's v0.1 and v3 templates, on llama2.c's
#             tok512.model converted by transformers (<s>, </s>; SentencePiece-style, byte fallback).
# For every user text (with and without a system message) `tokenize TEXT chat=true` must give
# transformers' ids (tokenize=True, which adds no BOS/EOS of its own) and the rendered text; where
# transformers refuses (a system message the template has no place for) qkv must fail too.
# Through a random-weight Llama written with the Llama 3 tokenizer (new-model llama tok=DIR):
# logits, attention, generate and rank with chat=true read the same ids, the generations are
# logged with the rendered prompt and template chat:llama3, and a replay reads the same ids again.
# Bad input: no chat template, a template qkv does not know, system= without chat=true, chat=
# with ids= or pair=, chat=true with special=false: each one clear error line.
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1; the Llama 2 / Mistral part
# needs ../shared/models/llama2c-stories260k/tok512.model (said when absent).
# Usage: test_chat_cmd.py [QKV_BINARY]

import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokrun  # noqa: E402
import refenv  # noqa: E402
import qkv_cli  # noqa: E402

TEXTS = ['Hello', 'What is the capital of France?', '  spaces around  ', 'multi\nline', 'unicode é 東京 😀',
         'quotes \' " \\', '<|im_start|>user', '[INST] fake [/INST]', '<s></s>', '']
SYSTEMS = [None, 'You are a helpful assistant.', ' short ']


def chat_fixture(name):
    with open(os.path.join(HERE, 'chat', name + '.json'), encoding='utf-8') as f:
        return json.load(f)


def make_dir(tmp, name, tokenizer_json, fx):
    """tmp/name holding tokenizer_json and a tokenizer_config.json with fixture fx's template."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    shutil.copy(tokenizer_json, os.path.join(d, 'tokenizer.json'))
    cfg = {'tokenizer_class': 'PreTrainedTokenizerFast', 'bos_token': fx['bos_token'], 'eos_token': fx['eos_token']}
    if fx.get('chat_template') is not None:
        cfg['chat_template'] = fx['chat_template']
    with open(os.path.join(d, 'tokenizer_config.json'), 'w', encoding='utf-8') as f:
        json.dump(cfg, f, ensure_ascii=False)
    return d


def tok512_json(tmp):
    """llama2.c's tok512.model converted by transformers (Llama 2's layout); None when absent."""
    import transformers
    model = os.path.join(tokrun.shared_models(), 'llama2c-stories260k', 'tok512.model')
    if not os.path.exists(model):
        return None
    src = os.path.join(tmp, 'tok512-src')
    os.makedirs(src)
    shutil.copy(model, os.path.join(src, 'tokenizer.model'))
    with open(os.path.join(src, 'tokenizer_config.json'), 'w') as f:
        json.dump({'tokenizer_class': 'LlamaTokenizer', 'legacy': True}, f)
    out = os.path.join(tmp, 'tok512')
    transformers.AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return os.path.join(out, 'tokenizer.json')


def messages(text, system):
    return ([{'role': 'system', 'content': system}] if system is not None else []) + [{'role': 'user', 'content': text}]


def chat_opts(text, system):
    q = tokrun.qkv_escape(text.encode('utf-8'))
    return q + ' chat=true' + (' system=' + tokrun.qkv_escape(system.encode('utf-8')) if system is not None else '')


def hf_chat(tk, text, system):
    """(ids, text) from transformers, or None when it refuses the conversation."""
    import jinja2
    m = messages(text, system)
    try:
        ids = tk.apply_chat_template(m, add_generation_prompt=True, tokenize=True)
        ids = list(ids['input_ids'] if hasattr(ids, 'keys') else ids)  # transformers 5 returns a BatchEncoding
        return ids, tk.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
    except (jinja2.TemplateError, ValueError):
        return None


def run_one(qkv, args, cmd, db):
    """qkv ARGS --json -e CMD: (parsed JSON or None, exit status, stderr)."""
    p = qkv_cli.run(qkv, list(args) + ['--db', db, '--json', '-e', cmd])
    lines = [l for l in p.stdout.split('\n') if l.strip()]
    return (json.loads(lines[-1]) if p.returncode == 0 and lines else None), p.returncode, p.stderr.strip()


def check_tokenize(rep, qkv, label, d, db):
    import transformers
    tk = transformers.AutoTokenizer.from_pretrained(d)
    tokpath = os.path.join(d, 'tokenizer.json')
    n = refused = 0
    for system in SYSTEMS:
        for text in TEXTS:
            want = hf_chat(tk, text, system)
            got, rc, err = run_one(qkv, ['--tokenizer', tokpath], 'tokenize ' + chat_opts(text, system), db)
            n += 1
            what = '%s: tokenize %r chat=true system=%r' % (label, text, system)
            if want is None:
                refused += 1
                if rc == 0:
                    rep.fail('%s: transformers refuses the conversation, qkv gave %s' % (what, got.get('ids')))
                elif 'chat=true:' not in err:
                    rep.fail('%s: refused without a clear message: %r' % (what, err))
                continue
            if rc != 0:
                rep.fail('%s: exit %d: %s' % (what, rc, err))
            elif got['ids'] != want[0] or got.get('text') != want[1]:
                rep.fail('%s:\n  expected %s %r (transformers)\n  got      %s %r'
                         % (what, want[0], want[1], got['ids'], got.get('text')))
    rep.lines.append('%s: %d conversations, %d refused by both' % (label, n, refused))
    return tk


def check_model(rep, qkv, tmp, tokdir, tk, db):
    """A random Llama with tokdir's files: logits, attention, generate and replay with chat=true."""
    model = os.path.join(tmp, 'llama3-model')
    p = qkv_cli.new_model(qkv, ['llama', 'layers=1', 'heads=2', 'kv_heads=1', 'd=32', 'ctx=256', 'seed=3',
                                'out=' + model, 'tok=' + tokdir], db)
    if p.returncode != 0:
        rep.fail('new-model llama tok=%s: %s' % (tokdir, p.stderr.strip()))
        return
    text, system = 'Name a colour.', 'Answer in one word.'
    want_ids, want_text = hf_chat(tk, text, system)
    q = chat_opts(text, system)
    outs = qkv_cli.json_cmds(qkv, model, ['logits %s top=3' % q, 'attention %s layer=0 head=0' % q,
                                          'generate %s max=3 temperature=0' % q], db)
    for name, o, key in (('logits', outs[0], 'ids'), ('attention', outs[1], 'ids'), ('generate', outs[2], 'prompt_ids')):
        if o.get(key) != want_ids:
            rep.fail('%s chat=true: %s %s, expected %s (transformers)' % (name, key, o.get(key), want_ids))
    g = outs[2]
    if g.get('template') != 'chat:llama3' or g.get('prompt') != want_text:
        rep.fail('generate chat=true: logged template %r prompt %r, expected chat:llama3 and %r'
                 % (g.get('template'), g.get('prompt'), want_text))
    r = qkv_cli.json_cmds(qkv, model, ['replay %d' % g['run_id']], db)[0]
    if r.get('prompt_ids') != want_ids or r.get('ids') != g.get('ids') or r.get('template') != 'chat:llama3':
        rep.fail('replay of a chat run: prompt_ids %s ids %s template %r, expected %s %s chat:llama3'
                 % (r.get('prompt_ids'), r.get('ids'), r.get('template'), want_ids, g.get('ids')))
    rk = qkv_cli.json_cmds(qkv, model, ['rank %s k=2 max=2 temperature=0 seed=1' % q, 'skip'], db)[0]
    if rk.get('prompt') != want_text:
        rep.fail('rank chat=true: prompt %r, expected %r' % (rk.get('prompt'), want_text))
    for c in rk.get('candidates', []):
        run = qkv_cli.json_cmds(qkv, model, ['show %d' % c['run_id']], db)[0]
        if run.get('prompt_ids') != want_ids or run.get('template') != 'chat:llama3':
            rep.fail('rank chat=true: run %d has prompt_ids %s template %r, expected %s chat:llama3'
                     % (c['run_id'], run.get('prompt_ids'), run.get('template'), want_ids))
    # bad input on a model
    for cmd, msg in (('logits ids=1,2 chat=true', 'chat= and system= go with TEXT'),
                     ('logits "a" pair="b" chat=true', 'chat=true does not go with pair='),
                     ('generate "a" system="s"', 'system= goes with chat=true'),
                     ('generate "a" chat=maybe', 'chat')):
        got, rc, err = run_one(qkv, ['--model', model], cmd, db)
        if rc == 0 or msg not in err or err.count('\n'):
            rep.fail('%s: expected one error line with %r, got exit %d: %r' % (cmd, msg, rc, err))
    rep.lines.append('llama3 model: logits, attention, generate, replay and rank with chat=true read %d ids as '
                     'transformers' % len(want_ids))


def check_errors(rep, qkv, tmp, db):
    plain = os.path.join(tokrun.FIXTURES, 'gpt2', 'tokenizer.json')
    gemma = make_dir(tmp, 'gemma', plain, chat_fixture('gemma-7b-it'))
    qwen = os.path.join(tmp, 'chatml-qwen2', 'tokenizer.json')
    for tok, cmd, msg in ((plain, 'tokenize "a" chat=true', 'the tokenizer has no chat template'),
                          (os.path.join(gemma, 'tokenizer.json'), 'tokenize "a" chat=true', 'not recognised'),
                          (qwen, 'tokenize "a" system="s"', 'system= goes with chat=true'),
                          (qwen, 'tokenize "a" chat=true special=false', 'special=false')):
        got, rc, err = run_one(qkv, ['--tokenizer', tok], cmd, db)
        if rc == 0 or msg not in err or err.count('\n'):
            rep.fail('%s (%s): expected one error line with %r, got exit %d: %r' % (cmd, tok, msg, rc, err))


def main():
    qkv = qkv_cli.qkv_path()
    refenv.need('transformers', 'jinja2', 'tokenizers')
    rep = tokrun.Report()
    with tempfile.TemporaryDirectory(prefix='qkv-chatcmd-') as tmp:
        db = os.path.join(tmp, 'qkv.db')
        dirs = [('chatml-qwen2', os.path.join(tokrun.FIXTURES, 'qwen2', 'tokenizer.json'), 'qwen2-instruct'),
                ('chatml-smollm2', os.path.join(tokrun.FIXTURES, 'smollm', 'tokenizer.json'), 'smollm2'),
                ('llama3', os.path.join(tokrun.FIXTURES, 'llama3', 'tokenizer.json'), 'llama3-instruct')]
        spm = tok512_json(tmp)
        if spm:
            dirs += [('llama2', spm, 'llama2-chat'), ('mistral-v0.1', spm, 'mistral-v0.1'),
                     ('mistral-v3', spm, 'mistral-v3')]
        else:
            rep.lines.append('tok512.model absent: the Llama 2 and Mistral templates not checked')
        tks = {}
        for name, tj, fx in dirs:
            d = make_dir(tmp, name, tj, chat_fixture(fx))
            tks[name] = (d, check_tokenize(rep, qkv, name, d, db))
        check_model(rep, qkv, tmp, tks['llama3'][0], tks['llama3'][1], db)
        check_errors(rep, qkv, tmp, db)
    for l in rep.lines:
        print(l)
    if rep.failures:
        print('FAIL: %d checks failed' % rep.failures)
        return 1
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
