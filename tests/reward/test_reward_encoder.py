#!/usr/bin/env python3
# test_reward_encoder.py - suite 'reference': `reward train` / `reward score` on encoders (BERT).
#
#   - the synthetic preference set of test_reward.py (the chosen completion ends with " good");
#     head=linear on a random-weight BERT with pool=cls and pool=mean reaches >= 95% held-out
#     pair accuracy; the checkpoint is a BertForSequenceClassification (num_labels 1,
#     classifier.weight/bias, qkv_pooling) that transformers loads, and its classifier on the
#     pooled output of transformers' encoder gives the reward `reward score` gives (|d| <= 1e-4)
#     on the sentence pair transformers' own tokenizer makes ([CLS] prompt [SEP] completion [SEP],
#     token types 0/1; an empty completion alone; a prompt beyond the context cut at its start);
#     best_of= and reward score ranking= with it;
#   - head=full and head=lora: two AdamW steps equal PyTorch's (HF BertForSequenceClassification's
#     encoder, the classifier on the pooled vector, pairs tokenized by transformers' tokenizer),
#     every tensor (full) or the head and every adapter and the merged weights (lora), cls and mean;
#   - the real all-MiniLM-L6-v2 (sentence-transformers layout; skipped when absent): its default
#     pooling is its 1_Pooling config's (mean), held-out accuracy >= 90%, transformers agrees;
#   - bad input: pool=bogus, pool=last, pool= on a decoder, an encoder without a tokenizer, a
#     sentence-transformers encoder pooling by max, a reward model without qkv_pooling: one
#     error line naming the problem, nothing written.
# Usage: test_reward_encoder.py QKV_BINARY

import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_reward as R  # noqa: E402
from test_reward import bad, make_db, qjson  # noqa: E402
from trainref import fail, finish, np, qkv_cli, torch, transformers  # noqa: E402

MINILM = os.path.expanduser('~/.local/share/qkv/models/minilm')


def load_cls(model_dir):
    """transformers' BertForSequenceClassification of model_dir (one label), float32, eager, eval."""
    m = transformers.BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=1, dtype=torch.float32, attn_implementation='eager', local_files_only=True)
    m.eval()
    return m


def pooled(m, enc, pool):
    h = m.bert(**enc).last_hidden_state
    return h[:, 0] if pool == 'cls' else h.mean(dim=1)  # one sequence: no padding to mask


def hf_reward(m, tok, prompt, comp, pool):
    enc = tok(prompt, comp, return_tensors='pt')
    with torch.no_grad():
        return float(m.classifier(pooled(m, enc, pool))[0, 0]), enc['input_ids'][0].tolist()


def check_scores(qkv, db, rm, pool, what):
    """reward score against transformers on rm: the same ids, rewards within 1e-4."""
    m, tok = load_cls(rm), transformers.AutoTokenizer.from_pretrained(rm, local_files_only=True)
    if type(m).__name__ != 'BertForSequenceClassification':
        fail('%s: transformers made a %s' % (what, type(m).__name__))
    worst = 0.0
    # special-token text in either side read as the token, as transformers' tokenizer reads it
    for prompt, comp in (('Q1: how is item 3?', ' it looks good'), ('Hello', ' that was bad'), ('x', ''),
                         ('', ' we found it meh'), ('a [SEP] b [MASK]?', ' it [SEP] looks good')):
        s = qjson(qkv, db, 'reward score "%s" "%s" model=%s' % (prompt, comp, rm))
        if not s:
            return
        want, ids = hf_reward(m, tok, prompt, comp, pool)
        if s['ids'] != ids:
            fail('%s: reward score read ids %r, transformers\' tokenizer makes %r' % (what, s['ids'], ids))
        worst = max(worst, abs(want - s['reward']))
    # a prompt longer than the context: its start is cut ([CLS], its last tokens, [SEP], the completion,
    # [SEP]); transformers on those ids with token types 0 then 1 gives the same reward
    n_ctx = m.config.max_position_embeddings
    prompt, comp = ' '.join('w%d is here' % i for i in range(n_ctx)), ' it looks good'
    s = qjson(qkv, db, 'reward score "%s" "%s" model=%s' % (prompt, comp, rm))
    if s:
        a = tok(prompt, add_special_tokens=False)['input_ids']
        b = tok(comp, add_special_tokens=False)['input_ids']
        keep = n_ctx - 3 - len(b)
        want_ids = [tok.cls_token_id] + a[len(a) - keep:] + [tok.sep_token_id] + b + [tok.sep_token_id]
        types = [0] * (keep + 2) + [1] * (len(b) + 1)
        with torch.no_grad():
            enc = {'input_ids': torch.tensor([want_ids]), 'token_type_ids': torch.tensor([types])}
            want = float(m.classifier(pooled(m, enc, pool))[0, 0])
        if s['ids'] != want_ids or s['truncated'] != len(a) - keep:
            fail('%s: a long prompt read as %r (cut %r), want %r (cut %d)' % (what, s['ids'][:8], s['truncated'],
                                                                           want_ids[:8], len(a) - keep))
        worst = max(worst, abs(want - s['reward']))
    if not worst <= 1e-4:
        fail('%s: reward score and transformers differ by %.3g' % (what, worst))
    print('%s: transformers\' BertForSequenceClassification (classifier on the %s-pooled encoder output) gives '
          'reward score\'s rewards (max |d| %.2e)' % (what, pool, worst), flush=True)


def test_linear(qkv, tmp, bert, pool):
    db = os.path.join(tmp, 'lin-%s.db' % pool)
    make_db(qkv, db, 60)
    out = os.path.join(tmp, 'rm-' + pool)
    r = qjson(qkv, db, 'reward train base=%s head=linear pool=%s out=%s val=0.25 epochs=40 batch=16 lr=0.05 '
              'patience=0' % (bert, pool, out))
    if not r:
        return None
    if r['pool'] != pool or not r['heldout_pairs'] or not r['heldout_accuracy'] >= 0.95:
        fail('bert %s: pool %r, held-out accuracy %r on %d pairs (want >= 0.95)'
             % (pool, r['pool'], r['heldout_accuracy'], r['heldout_pairs']))
    print('bert linear pool=%s: held-out accuracy %.3f on %d pairs (chance 0.5)'
          % (pool, r['heldout_accuracy'], r['heldout_pairs']), flush=True)
    cfg = json.load(open(os.path.join(out, 'config.json')))
    if cfg.get('architectures') != ['BertForSequenceClassification'] or cfg.get('num_labels') != 1 \
            or cfg.get('qkv_pooling') != pool:
        fail('bert %s: config %r' % (pool, {k: cfg.get(k) for k in ('architectures', 'num_labels', 'qkv_pooling')}))
    card = open(os.path.join(out, 'README.md')).read()
    if '`%s`' % pool not in card or 'BertForSequenceClassification' not in card:
        fail('bert %s: the model card does not state the pooling' % pool)
    check_scores(qkv, db, out, pool, 'bert %s' % pool)
    R.test_best_of(qkv, db, 'builtin', out, 'bert %s (scoring gpt2 text)' % pool)
    R.test_score_ranking(qkv, db, out, 'bert %s' % pool)
    return out


def bt_steps(score, encs, pairs, params, lr, eps):
    """Two torch.optim.AdamW steps of params on the mean Bradley-Terry loss of score(enc)."""
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), eps=eps, weight_decay=0.0)
    for _ in range(2):
        opt.zero_grad()
        r = [score(e) for e in encs]
        loss = sum(-torch.nn.functional.logsigmoid(r[c] - r[j]) for c, j in pairs) / len(pairs)
        loss.backward()
        opt.step()


def ref_model(bert):
    m = load_cls(bert)
    with torch.no_grad():
        m.classifier.weight.zero_()
        m.classifier.bias.zero_()
    return m


def check_update(what, name, got, want, w0):
    dt, dq = want - w0, got - w0
    scale, err = float(np.max(np.abs(dt))), float(np.max(np.abs(dt - dq)))
    if not err <= 2e-3 * scale + 1e-6:
        fail('%s: %s: update differs from PyTorch\'s by %.3g (update size %.3g)' % (what, name, err, scale))
    # the relative figure of updates that are not zero (the key bias's gradient is: softmax
    # does not see a shift of every score of a row, and PyTorch's is rounding noise)
    return err / scale if scale > 1e-6 else 0.0


def test_steps(qkv, tmp, bert, head, pool):
    what = 'bert %s pool=%s' % (head, pool)
    db = os.path.join(tmp, '%s-%s.db' % (head, pool))
    make_db(qkv, db, 3, seed=9, tie_every=100)
    lr = 1e4
    common = 'reward train base=%s head=%s pool=%s val=0 batch=64 wd=0 clip=0 beta2=0.95 threads=1' % (bert, head, pool)
    if head == 'lora':
        common += ' r=4 alpha=8'
    out0, out2 = os.path.join(tmp, '%s-%s-0' % (head, pool)), os.path.join(tmp, '%s-%s-2' % (head, pool))
    if head == 'lora' and not qjson(qkv, db, common + ' out=%s steps=1 lr=1e-9 min_lr=1e-9' % out0):
        return
    r = qjson(qkv, db, common + ' out=%s steps=2 lr=%g min_lr=%g eps=%g' % (out2, lr, lr, lr))
    if not r:
        return
    tok = transformers.AutoTokenizer.from_pretrained(bert, local_files_only=True)
    encs, pairs = R.ranked_pairs(qkv, db, lambda p, o: tok(p, o, return_tensors='pt'))
    if r['train_pairs'] != len(pairs):
        fail('%s: %d training pairs, want %d' % (what, r['train_pairs'], len(pairs)))
    m = ref_model(bert)
    from safetensors.numpy import load_file
    got = {k: v.astype(np.float64) for k, v in load_file(os.path.join(out2, 'model.safetensors')).items()}
    worst = 0.0
    if head == 'full':
        w0 = {n: p.detach().clone().double().numpy() for n, p in m.named_parameters()}
        bt_steps(lambda e: m.classifier(pooled(m, e, pool))[0, 0], encs, pairs, m.parameters(), lr, lr)
        for name, p in m.named_parameters():
            if name.startswith('bert.pooler.'):
                continue  # not on the reward's path, and not stored
            if name not in got or got[name].size != p.numel():
                fail('%s: %s missing from the checkpoint or of another size' % (what, name))
                continue
            w = p.detach().double().numpy()
            worst = max(worst, check_update(what, name, got[name].reshape(w.shape), w, w0[name]))
        print('%s: two steps equal PyTorch\'s, every tensor (worst relative difference %.2e)' % (what, worst),
              flush=True)
        return
    A0 = {k: v[0] for k, v in R.adapters(out0).items()}
    if len(A0) != 8:  # query, key, value, attention.output.dense in each of 2 layers
        fail('%s: adapters on %r' % (what, sorted(A0)))
    cfg = json.load(open(os.path.join(out2, 'adapter_config.json')))
    if sorted(cfg.get('target_modules', [])) != ['attention.output.dense', 'attention.self.key',
                                                   'attention.self.query', 'attention.self.value']:
        fail('%s: adapter_config target_modules %r' % (what, cfg.get('target_modules')))
    for p in m.parameters():
        p.requires_grad_(False)
    m.classifier.weight.requires_grad_(True)
    mods = R.add_adapters(m, A0, 4, 8.0)
    train = [m.classifier.weight] + [x for mod, A, B in mods.values() for x in (A, B)]
    bt_steps(lambda e: m.classifier(pooled(m, e, pool))[0, 0], encs, pairs, train, lr, lr)
    ga = R.adapters(out2)
    worst = check_update(what, 'classifier.weight', got['classifier.weight'],
                         m.classifier.weight.detach().double().numpy(), 0 * got['classifier.weight'])
    for path, (mod, A, B) in mods.items():
        a, b = ga.get(path, (None, None))
        if a is None or b is None:
            fail('%s: no adapter for %s' % (what, path))
            continue
        worst = max(worst, check_update(what, path + ' A', a, A.detach().double().numpy(), A0[path]),
                    check_update(what, path + ' B', b, B.detach().double().numpy(), 0 * b))
        with torch.no_grad():
            merged = mod.weight.detach().double().numpy()
        if not float(np.max(np.abs(got[path + '.weight'] - merged))) <= 1e-5 * float(np.max(np.abs(merged))):
            fail('%s: the merged %s differs from PyTorch\'s' % (what, path))
    print('%s: two steps equal PyTorch\'s: the head and every adapter (worst relative difference %.2e), the merged '
          'weights' % (what, worst), flush=True)


def test_minilm(qkv, tmp):
    if not os.path.isfile(os.path.join(MINILM, 'model.safetensors')):
        print('skip: all-MiniLM-L6-v2 is not installed at %s' % MINILM, flush=True)
        return
    db = os.path.join(tmp, 'minilm.db')
    make_db(qkv, db, 60)
    out = os.path.join(tmp, 'rm-minilm')
    t0 = time.time()
    r = qjson(qkv, db, 'reward train base=%s head=linear out=%s val=0.25 epochs=40 batch=16 lr=0.05 patience=0'
              % (MINILM, out))
    if not r:
        return
    if r['pool'] != 'mean' or not r['heldout_accuracy'] >= 0.9:
        fail('minilm: pool %r (its 1_Pooling says mean), held-out accuracy %r' % (r['pool'], r['heldout_accuracy']))
    print('minilm linear (pool %s, its 1_Pooling config): held-out accuracy %.3f on %d pairs, %.1f s'
          % (r['pool'], r['heldout_accuracy'], r['heldout_pairs'], time.time() - t0), flush=True)
    check_scores(qkv, db, out, 'mean', 'minilm')


def test_bad(qkv, tmp, bert, rm):
    db = os.path.join(tmp, 'bad.db')
    make_db(qkv, db, 4)
    out = os.path.join(tmp, 'bad-out')
    bad(qkv, db, 'reward train base=%s out=%s pool=bogus' % (bert, out), "pool must be cls or mean", out=out)
    bad(qkv, db, 'reward train base=%s out=%s pool=last' % (bert, out), "pool must be cls or mean", out=out)
    bad(qkv, db, 'reward train base=builtin out=%s pool=mean' % out, 'pool= is for encoders', out=out)
    notok = os.path.join(tmp, 'bert-notok')
    os.makedirs(notok)
    for f in ('config.json', 'model.safetensors'):
        shutil.copy(os.path.join(bert, f), notok)
    bad(qkv, db, 'reward train base=%s out=%s' % (notok, out), 'no tokenizer', out=out)
    # a sentence-transformers folder that pools by max
    stmax = os.path.join(tmp, 'bert-max')
    shutil.copytree(bert, stmax)
    os.makedirs(os.path.join(stmax, '1_Pooling'))
    json.dump([{'idx': 0, 'name': '0', 'path': '', 'type': 'sentence_transformers.models.Transformer'},
               {'idx': 1, 'name': '1', 'path': '1_Pooling', 'type': 'sentence_transformers.models.Pooling'}],
              open(os.path.join(stmax, 'modules.json'), 'w'))
    json.dump({'word_embedding_dimension': 32, 'pooling_mode_max_tokens': True},
              open(os.path.join(stmax, '1_Pooling', 'config.json'), 'w'))
    bad(qkv, db, 'reward train base=%s out=%s' % (stmax, out), 'pools by max', out=out)
    # a BERT sequence classifier that does not say how it pools
    nopool = os.path.join(tmp, 'rm-nopool')
    shutil.copytree(rm, nopool)
    cfg = json.load(open(os.path.join(nopool, 'config.json')))
    del cfg['qkv_pooling']
    json.dump(cfg, open(os.path.join(nopool, 'config.json'), 'w'))
    bad(qkv, db, 'reward score "a" "b" model=%s' % nopool, 'without qkv_pooling')
    bad(qkv, db, 'reward score "a" "b" model=%s' % bert, 'no classifier.weight')
    print('bad input: one error line each', flush=True)


def main():
    qkv = qkv_cli.qkv_path()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        bert = os.path.join(tmp, 'bert')
        p = qkv_cli.new_model(qkv, ['bert', 'layers=2', 'heads=2', 'd=32', 'ctx=64', 'seed=61', 'std=0.1',
                                    'out=' + bert], os.path.join(tmp, 'models.db'))
        if p.returncode != 0:
            fail('bert: new-model: %s' % p.stderr.strip())
            return finish()
        rm = test_linear(qkv, tmp, bert, 'cls')
        test_linear(qkv, tmp, bert, 'mean')
        for head in ('full', 'lora'):
            for pool in ('cls', 'mean'):
                test_steps(qkv, tmp, bert, head, pool)
        test_minilm(qkv, tmp)
        if rm:
            test_bad(qkv, tmp, bert, rm)
    return finish()


if __name__ == '__main__':
    sys.exit(main())
