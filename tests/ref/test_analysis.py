#!/usr/bin/env python3
# test_analysis.py - suite 'reference': qkv's analyses (heads, lens, patch) against the same
# quantities computed here from HF transformers on the same random-weight models (GPT-2, Llama
# with grouped-query attention, BERT with its masked-LM head) that `qkv new-model` writes:
#   - heads: entropy, previous-token, sink, self and induction scores computed with NumPy from
#     transformers' attentions (output_attentions=True), on random ids with repeats and on the
#     repeated random sequence of `heads induction`;
#   - lens: transformers' hidden_states -> final norm -> head (BERT: its MLM head), softmax; the
#     last layer equals the model's own prediction at every position;
#   - patch: the same sites patched with PyTorch forward hooks (the residual stream per layer x
#     position, each head's weighted values before the output projection, each MLP's output);
#     analytic checks: the last layer's residual at the answer's position restores 1, sites
#     before the first differing token of a decoder restore exactly 0; prompts of unequal token
#     length are refused.
# Then the real models when present: all-MiniLM-L6-v2's heads against transformers (layer 0
# head 2 is a previous-token head), llama2.c's stories260K lens and patch analytic checks.
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_analysis.py [QKV_BINARY]

import csv
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refenv  # noqa: E402

np, torch, transformers = refenv.need('numpy', 'torch', 'transformers')

import qkv_cli  # noqa: E402

TOL_STAT = 2e-5    # probability averages
TOL_ENTROPY = 1e-4 # nats
TOL_PROB = 1e-5    # lens probabilities
TOL_METRIC = 2e-4  # patched logit differences (fractions times the clean-corrupt span)

failures = []
worst = {'stat': 0.0, 'prob': 0.0, 'metric': 0.0}


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def close(what, kind, got, want, tol):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        fail('%s: shape expected %s, got %s' % (what, want.shape, got.shape))
        return False
    d = np.abs(got - want)
    d = np.where(np.isnan(got) & np.isnan(want), 0, np.where(np.isnan(d), np.inf, d))  # NaN only where expected
    i = np.unravel_index(int(np.argmax(d)), d.shape) if d.size else ()
    err = float(d[i]) if d.size else 0.0
    worst[kind] = max(worst[kind], err)
    if not err <= tol:
        fail('%s: max err %.3g > %g at %s: expected %.8g, got %.8g' % (what, err, tol, i, want[i], got[i]))
        return False
    return True


# ---------------------------------------------------------------------------------------
# References

def ref_stats(att, ids, rep=0, tail=0):
    """att [L, H, T, T] (float64): the statistics of analysis/heads.h per layer x head; rep > 0:
    ids end with a sequence of rep tokens written twice, then `tail` more (an encoder's [SEP]),
    and induction is scored on the second copy only, each row against the token after its place
    in the first (TransformerLens's repeated-random-tokens score)."""
    T = att.shape[-1]
    rows = np.arange(1, T)
    p = att[:, :, 1:, :]
    with np.errstate(divide='ignore', invalid='ignore'):
        ent = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0).sum(-1).mean(-1)
    prev = att[:, :, rows, rows - 1].mean(-1)
    sink = att[:, :, rows, 0].mean(-1)
    self_ = att[:, :, rows, rows].mean(-1)
    ind_sum, ind_rows = np.zeros(att.shape[:2]), 0
    for i in rows:
        if rep:
            keys = [i - rep + 1] if T - tail - rep <= i < T - tail else []
        else:
            keys = [j + 1 for j in range(i) if ids[j] == ids[i]]
        if keys:
            ind_rows += 1
            ind_sum += att[:, :, i, keys].sum(-1)
    ind = ind_sum / ind_rows if ind_rows else np.full(att.shape[:2], np.nan)
    return {'entropy': ent, 'prev_token': prev, 'sink': sink, 'self': self_, 'induction': ind}


class Family:
    """How to reach a transformers model's parts: blocks, each head's weighted values (the input of
    the attention output projection), each MLP's output, and the head on a hidden state."""

    def __init__(self, name, m):
        self.name, self.m = name, m
        if name == 'gpt2':
            self.blocks = m.transformer.h
            self.o_proj = [b.attn.c_proj for b in self.blocks]
            self.mlp = [b.mlp for b in self.blocks]
        elif name == 'llama':
            self.blocks = m.model.layers
            self.o_proj = [b.self_attn.o_proj for b in self.blocks]
            self.mlp = [b.mlp for b in self.blocks]
        else:
            self.blocks = (m.bert if hasattr(m, 'bert') else m).encoder.layer
            self.o_proj = [b.attention.output.dense for b in self.blocks]
            self.mlp = [b.output.dense for b in self.blocks]  # the down projection, before residual + LayerNorm

    def head(self, h):
        """Logits from a hidden state of the residual stream (not yet through the final norm)."""
        m = self.m
        if self.name == 'gpt2':
            return m.lm_head(m.transformer.ln_f(h))
        if self.name == 'llama':
            return m.lm_head(m.model.norm(h))
        return m.cls(h)

    def run(self, ids, hooks=()):
        """Logits [T, V] and (hidden states, attentions) with hooks (module, kind, fn) installed."""
        handles = []
        try:
            for mod, kind, fn in hooks:
                if kind == 'pre':
                    handles.append(mod.register_forward_pre_hook(fn, with_kwargs=True))
                else:
                    handles.append(mod.register_forward_hook(fn))
            with torch.no_grad():
                out = self.m(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        finally:
            for h in handles:
                h.remove()
        return out.logits[0].double().numpy(), out


def replace_first(x, new):
    """x with its hidden-state tensor replaced (a tensor, or a tuple whose first item is)."""
    return (new,) + tuple(x[1:]) if isinstance(x, tuple) else new


def hf_patch(fam, corrupt, site, clean_acts):
    """The corrupt run's logits with one site taken from the clean run's activations."""
    kind, layer, pos, head = site
    hd = fam.hd

    def rows(t, src):
        t = t.clone()
        if pos is None:
            t[0] = src[0]
        else:
            t[0, pos] = src[0, pos]
        return t

    if kind == 'resid' and layer == 0:
        def pre(mod, args, kwargs):
            if args:
                return (rows(args[0], clean_acts['emb']),) + tuple(args[1:]), kwargs
            kwargs = dict(kwargs)
            kwargs['hidden_states'] = rows(kwargs['hidden_states'], clean_acts['emb'])
            return args, kwargs
        hooks = [(fam.blocks[0], 'pre', pre)]
    elif kind == 'resid':
        def post(mod, args, out):
            t = out[0] if isinstance(out, tuple) else out
            return replace_first(out, rows(t, clean_acts['resid'][layer - 1]))
        hooks = [(fam.blocks[layer - 1], 'post', post)]
    elif kind == 'head':
        def pre_o(mod, args, kwargs):
            z = (args[0] if args else kwargs['input']).clone()
            z[0, :, head * hd:(head + 1) * hd] = clean_acts['z'][layer][0, :, head * hd:(head + 1) * hd]
            return ((z,) + tuple(args[1:]), kwargs) if args else (args, dict(kwargs, input=z))
        hooks = [(fam.o_proj[layer], 'pre', pre_o)]
    else:
        def post_m(mod, args, out):
            return replace_first(out, clean_acts['mlp'][layer].clone())
        hooks = [(fam.mlp[layer], 'post', post_m)]
    logits, _ = fam.run(corrupt, hooks)
    return logits


def hf_clean_acts(fam, clean):
    acts = {'resid': {}, 'z': {}, 'mlp': {}}
    hooks = []

    def pre0(mod, args, kwargs):
        acts['emb'] = (args[0] if args else kwargs['hidden_states']).detach().clone()
    hooks.append((fam.blocks[0], 'pre', pre0))
    for l in range(len(fam.blocks)):
        def post(mod, args, out, l=l):
            acts['resid'][l] = (out[0] if isinstance(out, tuple) else out).detach().clone()

        def pre_o(mod, args, kwargs, l=l):
            acts['z'][l] = (args[0] if args else kwargs['input']).detach().clone()

        def post_m(mod, args, out, l=l):
            acts['mlp'][l] = (out[0] if isinstance(out, tuple) else out).detach().clone()
        hooks += [(fam.blocks[l], 'post', post), (fam.o_proj[l], 'pre', pre_o), (fam.mlp[l], 'post', post_m)]
    logits, _ = fam.run(clean, hooks)
    return logits, acts


# ---------------------------------------------------------------------------------------
# Checks

def check_heads(tag, qkv, model, db, fam, ids, res=None):
    if res is None:
        (res,) = qkv_cli.json_cmds(qkv, model, ['heads %s' % qkv_cli.ids_arg(ids)], db)
    if res.get('ids') != list(ids):
        fail('%s: heads ids %s, expected %s' % (tag, res.get('ids'), list(ids)))
        return
    _, out = fam.run(list(ids))
    att = np.stack([a[0].double().numpy() for a in out.attentions])
    want = ref_stats(att, ids, res.get('len', 0), res.get('tail', 0))
    L, H = att.shape[:2]
    heads = res.get('heads', [])
    if [(h['layer'], h['head']) for h in heads] != [(l, h) for l in range(L) for h in range(H)]:
        fail('%s: heads: expected every layer x head in order, got %d entries' % (tag, len(heads)))
        return
    for k, w in want.items():
        got = np.array([np.nan if h[k] is None else h[k] for h in heads]).reshape(L, H)
        close('%s heads %s' % (tag, k), 'stat', got, w, TOL_ENTROPY if k == 'entropy' else TOL_STAT)
    return res


def check_lens(tag, qkv, model, db, fam, ids, target):
    cmds = ['lens %s top=3' % qkv_cli.ids_arg(ids), 'lens %s target=#%d' % (qkv_cli.ids_arg(ids), target)]
    res, res_t = qkv_cli.json_cmds(qkv, model, cmds, db)
    logits, out = fam.run(list(ids))
    hs = out.hidden_states
    L = len(hs) - 1
    final = logits.argmax(-1)
    layers = res.get('layers', [])
    if [x['layer'] for x in layers] != list(range(L + 1)):
        fail('%s: lens layers %s, expected 0..%d' % (tag, [x['layer'] for x in layers], L))
        return
    got_final = [t['id'] for t in res['final']]
    if got_final != [int(i) for i in final]:
        fail('%s: lens final predictions %s, transformers %s' % (tag, got_final, list(final)))
    for l in range(L + 1):
        with torch.no_grad():
            lg = logits if l == L else fam.head(hs[l]).double()[0].numpy()
        p = np.exp(lg - lg.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        T = len(ids)
        close('%s lens layer %d target_prob (final prediction)' % (tag, l), 'prob', layers[l]['target_prob'],
              p[np.arange(T), final], TOL_PROB)
        close('%s lens layer %d target_prob (#%d)' % (tag, l, target), 'prob', res_t['layers'][l]['target_prob'],
              p[:, target], TOL_PROB)
        top = layers[l]['top']
        got_p = np.array([[e['prob'] for e in pos] for pos in top])
        want_p = -np.sort(-p, axis=-1)[:, :3]
        close('%s lens layer %d top-3 probabilities' % (tag, l), 'prob', got_p, want_p, TOL_PROB)
        # the ids qkv names carry the probabilities it gives them
        got_ids = np.array([[e['id'] for e in pos] for pos in top])
        close('%s lens layer %d probability of the top ids' % (tag, l), 'prob', p[np.arange(T)[:, None], got_ids],
              got_p, TOL_PROB)
    # analytic: the last layer is the model's own prediction at every position
    last_top = [pos[0]['id'] for pos in layers[L]['top']]
    if last_top != got_final:
        fail('%s: lens at the last layer %s differs from the prediction %s' % (tag, last_top, got_final))
    if layers[L]['target_prob'] != [t['prob'] for t in res['final']]:
        fail('%s: lens at the last layer: probabilities differ from the prediction\'s' % tag)


def check_patch(tag, qkv, model, db, fam, clean, corrupt, causal, pos=None):
    cmd = 'patch clean_ids=%s corrupt_ids=%s' % (','.join(map(str, clean)), ','.join(map(str, corrupt)))
    if pos is not None:
        cmd += ' pos=%d' % pos
    T = len(clean)
    pos = T - 1 if pos is None else pos
    lc, acts = hf_clean_acts(fam, clean)
    lx, _ = fam.run(corrupt)
    if int(lx[pos].argmax()) == int(lc[pos].argmax()):
        # no default contrast: qkv asks for wrong=, and is given the corrupt run's second token
        p = qkv_cli.run(qkv, ['--model', model, '--db', db, '-e', cmd])
        if p.returncode == 0 or 'wrong=' not in p.stderr:
            fail('%s: both tops are the answer, patch did not ask for wrong=: %r' % (tag, p.stderr[-200:]))
        cmd += ' wrong=#%d' % int(np.argsort(-lx[pos])[1])
    (res,) = qkv_cli.json_cmds(qkv, model, [cmd], db)
    a, w = res['answer']['id'], res['wrong']['id']
    m_clean, m_corrupt = lc[pos, a] - lc[pos, w], lx[pos, a] - lx[pos, w]
    if res.get('answer', {}).get('id') != int(lc[pos].argmax()):
        fail('%s: patch answer %s, clean top token %d' % (tag, res.get('answer'), int(lc[pos].argmax())))
    close('%s patch clean metric' % tag, 'metric', res['clean'], m_clean, TOL_METRIC)
    close('%s patch corrupt metric' % tag, 'metric', res['corrupt'], m_corrupt, TOL_METRIC)
    span = m_clean - m_corrupt
    L, H = len(fam.blocks), fam.m.config.num_attention_heads

    def frac(site):
        lg = hf_patch(fam, corrupt, site, acts)
        return (lg[pos, a] - lg[pos, w] - m_corrupt) / span

    resid = np.array(res['resid'])
    first = min(i for i in range(T) if clean[i] != corrupt[i])
    same = [(0, p) for p in range(T) if p != first] + [(l, p) for l in range(L + 1) for p in range(first) if causal]
    if any(resid[l, p] != 0 for l, p in same):
        fail('%s: patching a residual equal in both runs restores %r, not exactly 0' % (tag, [resid[l, p] for l, p in same]))
    want = np.array([[frac(('resid', l, p, None)) for p in range(T)] for l in range(L + 1)])
    close('%s patch resid (x span %.3g)' % (tag, span), 'metric', resid * span, want * span, TOL_METRIC)
    heads = np.array(res['heads'])
    want = np.array([[frac(('head', l, None, h)) for h in range(H)] for l in range(L)])
    close('%s patch heads (x span %.3g)' % (tag, span), 'metric', heads * span, want * span, TOL_METRIC)
    mlp = np.array(res['mlp'])
    want = np.array([frac(('mlp', l, None, None)) for l in range(L)])
    close('%s patch mlp (x span %.3g)' % (tag, span), 'metric', mlp * span, want * span, TOL_METRIC)
    # analytic: the last layer's stream at the answer's position is everything the head reads
    # (in the metric's units: a re-run from the patched position reads the cache through other
    # GEMM shapes, which rounds differently)
    if abs(resid[L, pos] - 1) * abs(span) > 1e-5:
        fail('%s: patching the last residual at position %d restores %.6g, not 1' % (tag, pos, resid[L, pos]))
    if causal:  # before the first differing token, clean and corrupt are the same: nothing restored
        first = next(i for i in range(T) if clean[i] != corrupt[i])
        if np.any(np.abs(resid[:, :first]) * abs(span) > 1e-5):
            fail('%s: patching before the first difference (position %d) restores %s' % (tag, first,
                                                                                          resid[:, :first]))
        if np.any(resid[:, pos + 1:] != 0):  # never run: the answer cannot see them
            fail('%s: patching after the answer position restores something' % tag)
    # sites= visits only the kinds named: the same numbers, the others null
    # ... and save exports what was visited: rows the layers, columns the heads then the MLP (it
    # exported the figure before the patch, or said "nothing to save yet")
    csvs = [os.path.join(os.path.dirname(db), '%s-patch-%s.csv' % (''.join(c if c.isalnum() else '-' for c in tag), k))
            for k in ('hm', 'm')]
    before = ['heads ' + qkv_cli.ids_arg(clean)] if T > 1 else []  # a figure save wrote instead
    part, _, _, _ = qkv_cli.json_cmds(qkv, model, before + [cmd + ' sites=mlp,heads', 'save ' + csvs[0],
                                                            cmd + ' sites=mlp', 'save ' + csvs[1]], db)[len(before):]
    if part.get('sites') != ['heads', 'mlp'] or part.get('resid') is not None:
        fail('%s: patch sites=mlp,heads gives sites %s and resid %s' % (tag, part.get('sites'),
                                                                         'null' if part.get('resid') is None else '...'))
    elif part['heads'] != res['heads'] or part['mlp'] != res['mlp']:
        fail('%s: patch sites=mlp,heads: heads or mlp differ from the full run\'s' % tag)
    for path, cols, want in ((csvs[0], ['h%d' % h for h in range(H)] + ['mlp'],
                              [hr + [m] for hr, m in zip(res['heads'], res['mlp'])]),
                             (csvs[1], ['mlp'], [[m] for m in res['mlp']])):
        with open(path, newline='') as fh:
            rows = list(csv.reader(fh))
        got = [[float(v) for v in r[1:]] for r in rows[1:]]
        if rows[0][1:] != cols or [r[0] for r in rows[1:]] != [str(l) for l in range(L)] or \
                not np.allclose(got, want, rtol=1e-6, atol=1e-7):
            fail('%s: save after patch sites=%s: header %s, rows %s' % (tag, 'heads,mlp' if len(cols) > 1 else 'mlp',
                                                                      rows[0], [r[0] for r in rows[1:]]))
    (part,) = qkv_cli.json_cmds(qkv, model, [cmd + ' sites=resid'], db)
    if part.get('heads') is not None or part.get('mlp') is not None or part['resid'] != res['resid']:
        fail('%s: patch sites=resid: heads/mlp not null or resid differs from the full run\'s' % tag)
    return res


def check_rollout_attend(tag, qkv, model, db, fam, ids, causal):
    a = qkv_cli.ids_arg(ids)
    T = len(ids)
    ro, at, at2 = qkv_cli.json_cmds(qkv, model, ['rollout %s' % a, 'attend %s from=%d to=2 top=5' % (a, T - 1),
                                                 'attend %s from=1 to=%d' % (a, T - 1)], db)
    _, out = fam.run(list(ids))
    att = np.stack([x[0].double().numpy() for x in out.attentions])
    R = np.eye(T)
    for l in range(att.shape[0]):
        R = (0.5 * att[l].mean(0) + 0.5 * np.eye(T)) @ R
    close('%s rollout' % tag, 'prob', ro['matrix'], R, TOL_PROB)
    close('%s attend matrix' % tag, 'prob', at['matrix'], att[:, :, T - 1, 2], TOL_PROB)
    close('%s attend (future key)' % tag, 'prob', at2['matrix'], att[:, :, 1, T - 1], TOL_PROB)
    # a decoder's query and a later key: every head 0, and qkv says why rather than ranking zeros
    if at2.get('masked') is not causal or at.get('masked') is not False:
        fail('%s: attend masked %r / %r, the family is %s' % (tag, at2.get('masked'), at.get('masked'),
                                                               'causal' if causal else 'bidirectional'))
    if causal:
        text = qkv_cli.run(qkv, ['--model', model, '--db', db, '-e', 'attend %s from=1 to=%d' % (a, T - 1)]).stdout
        if 'cannot attend to the later position %d' % (T - 1) not in text:
            fail('%s: attend to a later position: no word of the causal mask in %r' % (tag, text[:300]))
    flat = att[:, :, T - 1, 2].ravel()
    got = [h['prob'] for h in at['heads']]
    close('%s attend top 5' % tag, 'prob', got, -np.sort(-flat)[:5], TOL_PROB)
    H = att.shape[1]
    for h in at['heads']:
        if abs(flat[h['layer'] * H + h['head']] - h['prob']) > TOL_PROB:
            fail('%s: attend lists layer %d head %d with %g, transformers %g' % (tag, h['layer'], h['head'], h['prob'],
                                                                                flat[h['layer'] * H + h['head']]))


def check_neuron(tag, qkv, model, db, fam, ids, causal):
    T, layer, head, query = len(ids), 1, 1, len(ids) - 3
    (res,) = qkv_cli.json_cmds(qkv, model, ['neuron %s layer=%d head=%d query=%d' % (qkv_cli.ids_arg(ids), layer, head,
                                                                                   query)], db)
    _, out = fam.run(list(ids))
    want = out.attentions[layer][0, head, query].double().numpy()
    seen = T if not causal else query + 1
    scores = np.array([np.nan if x is None else x for x in res['scores']])
    if causal and not np.all(np.isnan(scores[seen:])):
        fail('%s: neuron: future keys have scores %s' % (tag, scores[seen:]))
    sc = scores[:seen]
    p = np.exp(sc - sc.max())
    close('%s neuron softmax(scores) vs attention' % tag, 'prob', p / p.sum(), want[:seen], TOL_PROB)
    contrib = np.array(res['contributions'][:seen], dtype=np.float64)
    close('%s neuron contributions sum to the scores' % tag, 'prob', contrib.sum(-1), sc, 1e-4)
    q, k = np.array(res['q']), np.array(res['k'])
    close('%s neuron q k / sqrt(hd)' % tag, 'prob', q[None, :] * k[:seen] / np.sqrt(len(q)), contrib, 1e-5)
    if fam.name == 'gpt2':  # q and k straight from the weights: ln_1, c_attn, this head's slice
        blk = fam.blocks[layer]
        with torch.no_grad():
            qkv_out = blk.attn.c_attn(blk.ln_1(out.hidden_states[layer]))[0].double().numpy()
        d, hd = qkv_out.shape[1] // 3, fam.hd
        close('%s neuron q vs transformers' % tag, 'prob', q, qkv_out[query, head * hd:(head + 1) * hd], 1e-4)
        close('%s neuron k vs transformers' % tag, 'prob', k, qkv_out[:, d + head * hd:d + (head + 1) * hd], 1e-4)


def check_rotary(tag, qkv, model, db, fam):
    a, b = qkv_cli.json_cmds(qkv, model, ['pe rotary len=20', 'pe rotary len=12 relative=true'], db)
    inv = fam.m.model.rotary_emb.inv_freq.double().numpy()
    close('%s rotary frequencies vs transformers inv_freq' % tag, 'prob', a['frequencies'], inv, 1e-6)
    pos = np.arange(20)[:, None]
    close('%s rotary cos(position x frequency)' % tag, 'prob', a['matrix'], np.cos(pos * inv[None, :]), 1e-5)
    with torch.no_grad():
        cos, _ = fam.m.model.rotary_emb(torch.zeros(1, 20, 1), torch.arange(20)[None])
    close('%s rotary vs transformers cos' % tag, 'prob', a['matrix'], cos[0, :, :len(inv)].double().numpy(), 1e-5)
    d = np.arange(12)[:, None] - np.arange(12)[None, :]
    close('%s rotary relative q.k' % tag, 'prob', b['matrix'], np.cos(d[:, :, None] * inv).mean(-1), 1e-5)


def check_errors(tag, qkv, model, db):
    top_clean, top_corrupt = [qkv_cli.json_cmds(qkv, model, ['logits ids=%s top=1' % ids], db)[0]['top'][0]['id']
                              for ids in ('1,2,3', '1,2,4')]
    bad = [('patch clean_ids=1,2,3 corrupt_ids=1,2', 'same token length'),
           ('patch "a b" clean_ids=1,2 corrupt_ids=1,3', 'give'),
           ('patch clean_ids=1,2,3 corrupt_ids=1,2,3', 'wrong=TOKEN'),
           # the default side equals the token the other option names: that is what is said (it said
           # both prompts' top token was the same)
           ('patch clean_ids=1,2,3 corrupt_ids=1,2,4 wrong=#%d' % top_clean, 'the default answer'),
           ('patch clean_ids=1,2,3 corrupt_ids=1,2,4 answer=#%d' % top_corrupt, 'the default wrong'),
           ('patch clean_ids=1,2,3 corrupt_ids=1,2,3 answer=#1 wrong=#2', 'same logit difference'),
           ('patch clean_ids=1,2,3 corrupt_ids=1,2,4 answer=#1 wrong=#1', 'same token'),
           ('patch clean_ids=1,2,3 corrupt_ids=1,2,4 metric=prob', 'logit_diff'),
           ('patch clean_ids=1,2,3 corrupt_ids=1,2,4 pos=3', 'pos'),
           ('patch clean_ids=1,2,3 corrupt_ids=1,2,4 sites=resid,attn', 'sites='),
           ('patch clean_ids=1,2,3 corrupt_ids=1,2,4 sites=', 'sites='),
           ('heads ids=5', 'at least 2'),
           ('heads ids=5,6 stat=nope', 'stat='),
           ('heads ids=5,6 len=4', 'heads induction'),
           ('heads induction len=100000', 'context'),
           ('heads induction from=""', 'no tokens'),
           ('heads "ab" from="x"', 'go with `heads induction`'),
           ('lens ids=5,6 target=#99999999', 'token id'),
           ('lens ids=5,6 top=0', 'top'),
           ('attend ids=5,6,7 from=1', 'required'),
           ('neuron ids=5,6,7 query=3', 'query=3'),
           ('neuron ids=5,6,7 layer=9', 'layer'),
           ('attend ids=5,6,7 from=1 to=3', 'to=3')]
    if 'llama' not in tag:
        bad.append(('pe rotary', 'no rotary positions'))
    for cmd, want in bad:
        p = qkv_cli.run(qkv, ['--model', model, '--db', db, '-e', cmd])
        if p.returncode == 0 or want not in p.stderr or 'error:' not in p.stderr or p.returncode >= 128 or p.returncode < 0:
            fail('%s: %r: expected a clean error mentioning %r, got exit %d, stderr %r' % (tag, cmd, want, p.returncode,
                                                                                           p.stderr.strip()[:300]))


MODELS = [
    ('gpt2', 'gpt2', 'layers=3 heads=4 d=64 ctx=128 seed=51'),
    ('llama-gqa', 'llama', 'layers=3 heads=4 kv_heads=2 d=64 ctx=128 seed=52'),
    ('bert-mlm', 'bert', 'layers=2 heads=4 d=64 ctx=128 seed=53'),
]


def run_model(name, family, opts, qkv, tmp):
    t0 = time.time()
    model = os.path.join(tmp, name)
    db = os.path.join(tmp, 'qkv.db')
    p = qkv_cli.new_model(qkv, [family] + opts.split() + ['std=0.2', 'out=' + model], db)
    if p.returncode != 0:
        fail('%s: new-model: %s' % (name, p.stderr.strip()))
        return
    auto = transformers.AutoModelForMaskedLM if family == 'bert' else transformers.AutoModelForCausalLM
    m = auto.from_pretrained(model, dtype=torch.float32, attn_implementation='eager', local_files_only=True).eval()
    fam = Family('bert' if family == 'bert' else family, m)
    fam.hd = m.config.hidden_size // m.config.num_attention_heads
    (info,) = qkv_cli.json_cmds(qkv, model, ['model'], db)
    V, causal = info['vocab'], info['causal']
    rng = np.random.default_rng(len(name) * 7919)
    # heads: random ids with a repeated stretch (so that the induction score has rows)
    base = [int(i) for i in rng.integers(3, V, size=9)]
    ids = base + base[:6] + [int(i) for i in rng.integers(3, V, size=4)]
    check_heads(name + ' repeats', qkv, model, db, fam, ids)
    check_heads(name + ' no repeats', qkv, model, db, fam, list(range(10, 17)))
    (ind,) = qkv_cli.json_cmds(qkv, model, ['heads induction len=12 seed=7'], db)
    seq = ind['ids']
    # an encoder's sequence as it was trained: [CLS] ... [SEP] (before 2026-12-06 without [SEP])
    tail = 1 if family == 'bert' else 0
    if ind.get('tail') != tail or (tail and ind['tokens'][-1] != '[SEP]'):
        fail('%s: heads induction: expected %d token(s) after the repeats, got tail=%r, last token %r'
             % (name, tail, ind.get('tail'), ind['tokens'][-1]))
    seq = seq[:len(seq) - tail]
    first = len(seq) - 24
    # 12 distinct tokens repeated; a vocabulary of at most 512 (byte-level) draws them from the letters
    letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
    drawn = ind.get('from') == letters if V <= 512 else 'from' not in ind
    if (first not in (0, 1) or seq[first:first + 12] != seq[first + 12:] or not drawn
            or len(set(seq[first:first + 12])) != 12 or ind.get('distinct') is not True):
        fail('%s: heads induction ids are not 12 distinct %s repeated: %s (from %r)'
             % (name, 'letter tokens' if V <= 512 else 'tokens', seq, ind.get('from')))
    else:
        check_heads(name + ' induction', qkv, model, db, fam, ind['ids'], ind)
    # the from= option draws from the tokens of a text (the letters a small model knows): with
    # replacement when it has 4 (chance repeats in the first copy, which the second copy's score
    # ignores), distinct when it has 16
    tok, ind2, ind3 = qkv_cli.json_cmds(qkv, model, ['tokenize "dcba" special=false',
                                                     'heads induction len=12 seed=7 from="dcba"',
                                                     'heads induction len=12 seed=7 from="abcdefghijklmnop"'], db)
    seq, allowed = ind2['ids'][:len(ind2['ids']) - tail], set(tok['ids'])
    first = len(seq) - 24
    if (first not in (0, 1) or seq[first:first + 12] != seq[first + 12:] or not set(seq[first:]) <= allowed
            or len(set(seq[first:])) < 2 or ind2.get('from') != 'dcba' or ind2.get('distinct') is not False):
        fail('%s: heads induction from="dcba" ids are not 12 of %s repeated: %s' % (name, sorted(allowed), seq))
    else:
        check_heads(name + ' induction from', qkv, model, db, fam, ind2['ids'], ind2)
    seq = ind3['ids'][:len(ind3['ids']) - tail]
    first = len(seq) - 24
    if seq[first:first + 12] != seq[first + 12:] or len(set(seq[first:])) != 12 or ind3.get('distinct') is not True:
        fail('%s: heads induction from 16 letters: not 12 distinct repeated: %s' % (name, seq))
    else:
        check_heads(name + ' induction from distinct', qkv, model, db, fam, ind3['ids'], ind3)
    check_rollout_attend(name, qkv, model, db, fam, ids, causal)
    check_neuron(name, qkv, model, db, fam, ids, causal)
    if family == 'llama':
        check_rotary(name, qkv, model, db, fam)
    # lens
    check_lens(name, qkv, model, db, fam, [int(i) for i in rng.integers(3, V, size=11)], 5)
    # patch: one token differs; for the decoders also a second metric position
    clean = [int(i) for i in rng.integers(3, V, size=8)]
    corrupt = list(clean)
    corrupt[3] = (clean[3] + 17) % V
    check_patch(name, qkv, model, db, fam, clean, corrupt, causal)
    check_patch(name + ' pos=5', qkv, model, db, fam, clean, corrupt, causal, pos=5)
    # one token each: a decoder's one-token pass is a decoding step, whose output projection
    # ran inside the attention section, before the patched head (every head restored 0)
    check_patch(name + ' one token', qkv, model, db, fam, clean[3:4], corrupt[3:4], causal)
    check_errors(name, qkv, model, db)
    print('%-10s done (%.1f s)' % (name, time.time() - t0), flush=True)


def real_models(qkv, tmp):
    db = os.path.join(tmp, 'qkv.db')
    (listing,) = qkv_cli.json_cmds(qkv, None, ['models'], db)
    path = next((m['path'] for m in listing['models'] if m['name'] == 'minilm'), None)
    if path:
        m = transformers.AutoModel.from_pretrained(path, local_files_only=True, attn_implementation='eager').eval()
        tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        text = 'The cat sat on the mat. The cat sat on the mat.'
        ids = tok(text)['input_ids']
        (res,) = qkv_cli.json_cmds(qkv, path, ['heads "%s"' % text], db)
        fam = Family('bert', m)

        def run(ids, hooks=()):
            with torch.no_grad():
                out = m(torch.tensor([ids]), output_attentions=True)
            return None, out
        fam.run = run
        check_heads('minilm', qkv, path, db, fam, ids, res)
        h = res['heads'][0 * 6 + 2]
        if not h['prev_token'] > 0.99:
            fail('minilm: layer 0 head 2 previous-token score %.4f, expected > 0.99' % h['prev_token'])
        p = qkv_cli.run(qkv, ['--model', path, '--db', db, '-e', 'lens "a b"'])
        if p.returncode == 0 or 'no language-model head' not in p.stderr:
            fail('minilm: lens should be refused (no head), got %d %r' % (p.returncode, p.stderr))
        print('minilm: heads as transformers; layer 0 head 2 prev_token %.4f' % h['prev_token'])
    elif refenv.required():
        fail('minilm is not installed (./dev models)')
    shared = os.environ.get('QKV_SHARED_MODELS', os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared',
                                                               'models'))
    stories = os.path.join(shared, 'llama2c-stories260k', 'stories260K.bin')
    if os.path.exists(stories):
        lens, patch = qkv_cli.json_cmds(qkv, stories, ['lens "Once upon a time, there was a little girl"',
                                                      'patch "The cat was happy. The cat" "The dog was happy. The dog" wrong=#293'], db)
        L = len(lens['layers']) - 1
        if [p[0]['id'] for p in lens['layers'][L]['top']] != [t['id'] for t in lens['final']]:
            fail('stories260K: lens at the last layer differs from the prediction')
        r = np.array(patch['resid'])
        # both prompts' top is ' was' (qkv asks for wrong=: 'is' here); the first position is the same
        # token in both, so every layer's residual there restores exactly 0
        if abs(r[-1, -1] - 1) > 1e-5 or np.any(r[:, 0] != 0) or patch['clean_ids'][0] != patch['corrupt_ids'][0]:
            fail('stories260K: patch analytic checks: %s' % r)
        print('stories260K: lens final layer = prediction; patch: last residual restores %.6f' % r[-1, -1])


def one_layer_gpt2(qkv, tmp, name, words):
    """new-model gpt2 layers=1 ctx=16 WORDS into tmp/name: (its folder, the database), or (None, db)."""
    model, db = os.path.join(tmp, name), os.path.join(tmp, 'qkv.db')
    p = qkv_cli.new_model(qkv, ['gpt2', 'layers=1', 'ctx=16'] + words.split() + ['out=' + model], db)
    if p.returncode != 0:
        fail('%s: new-model: %s' % (name, p.stderr.strip()))
        return None, db
    return model, db


def hand_built_prev_token(qkv, tmp):
    """A GPT-2 whose layer 0 head 0 is built to attend to the previous token: token embeddings 0,
    position p coded as e_p - e_(p+8) (LayerNorm keeps it, scaled), the head's query of position p
    pointing at the key of position p-1. `heads` must score it 1 on previous-token."""
    from safetensors.numpy import load_file, save_file
    model, db = one_layer_gpt2(qkv, tmp, 'prev-token', 'heads=4 d=64 seed=9')
    if not model:
        return
    path = os.path.join(model, 'model.safetensors')
    w = load_file(path)
    key = {k.split('.', 1)[1] if k.startswith('transformer.') else k: k for k in w}
    d, big = 64, 10.0
    w[key['wte.weight']][:] = 0
    wpe = w[key['wpe.weight']]
    wpe[:] = 0
    for pos in range(8):
        wpe[pos, pos], wpe[pos, pos + 8] = 1.0, -1.0
    w[key['h.0.ln_1.weight']][:] = 1
    w[key['h.0.ln_1.bias']][:] = 0
    c_attn = w[key['h.0.attn.c_attn.weight']]  # Conv1D [in, out]: q | k | v
    c_attn[:, 0:16] = 0
    c_attn[:, d:d + 16] = 0
    w[key['h.0.attn.c_attn.bias']][0:16] = 0
    w[key['h.0.attn.c_attn.bias']][d:d + 16] = 0
    for pos in range(8):
        if pos:
            c_attn[pos, pos - 1] = big    # query of position pos: direction pos - 1
        c_attn[pos, d + pos] = big        # key of position pos: direction pos
    save_file(w, path, metadata={'format': 'pt'})
    (res,) = qkv_cli.json_cmds(qkv, model, ['heads ids=5,9,2,7,7,3,1,4'], db)
    h = res['heads'][0]
    if not (h['layer'], h['head']) == (0, 0) or abs(h['prev_token'] - 1) > 1e-6 or abs(h['entropy']) > 1e-5:
        fail('prev-token: the hand-built head scores %s, expected prev_token 1 and entropy 0' % h)
    else:
        print('hand-built previous-token head: prev_token %.7f, entropy %.2g' % (h['prev_token'], h['entropy']))


def tiny_vocabulary(qkv, tmp):
    """A GPT-2 of 8 tokens: lens top=12 lists the 8 (it read past the probabilities: id -1)."""
    import json
    from safetensors.numpy import load_file, save_file
    model, db = one_layer_gpt2(qkv, tmp, 'v8', 'heads=2 d=32 seed=4')
    if not model:
        return
    st = os.path.join(model, 'model.safetensors')
    w = load_file(st)
    for k in w:
        if k.endswith('wte.weight'):
            w[k] = np.ascontiguousarray(w[k][:8])
    save_file(w, st)
    with open(os.path.join(model, 'config.json')) as f:
        cfg = json.load(f)
    cfg['vocab_size'] = 8
    with open(os.path.join(model, 'config.json'), 'w') as f:
        json.dump(cfg, f)
    for name in os.listdir(model):
        if name.startswith(('vocab', 'merges', 'tokenizer')):
            os.remove(os.path.join(model, name))
    with open(os.path.join(model, 'vocab.json'), 'w') as f:
        json.dump({c: i for i, c in enumerate('abcdefgh')}, f)
    with open(os.path.join(model, 'merges.txt'), 'w') as f:
        f.write('#version: 0.2\n')
    try:
        (res,) = qkv_cli.json_cmds(qkv, model, ['lens ids=0,1,2,3 top=12'], db)
    except qkv_cli.QkvError as ex:
        fail('tiny vocabulary: %s' % ex)
        return
    tops = [row for layer in res['layers'] for row in layer['top']] if 'layers' in res else []
    bad = [e for row in tops for e in row if not 0 <= e.get('id', -1) < 8]
    if not tops or bad or any(len(row) != 8 for row in tops):
        fail('tiny vocabulary: lens top=12 of 8 tokens: %d rows, lengths %s, bad entries %s'
             % (len(tops), sorted({len(r) for r in tops}), bad[:3]))
    else:
        print('tiny vocabulary: lens top=12 lists the 8 tokens', flush=True)


def sliding_window(qkv, tmp):
    """attend from a position to a key outside a sliding window (Mistral's): masked, said so (it
    ranked the heads' zeros with masked false)."""
    import json
    model, db = os.path.join(tmp, 'mistral-w3'), os.path.join(tmp, 'qkv.db')
    p = qkv_cli.new_model(qkv, ['mistral', 'layers=1', 'heads=2', 'd=32', 'ctx=16', 'seed=6', 'out=' + model], db)
    if p.returncode != 0:
        fail('sliding window: new-model: %s' % p.stderr.strip())
        return
    cfg_path = os.path.join(model, 'config.json')
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg['sliding_window'] = 3
    with open(cfg_path, 'w') as f:
        json.dump(cfg, f)
    ids = 'ids=5,9,12,40,7,3'
    out, inside = qkv_cli.json_cmds(qkv, model, ['attend %s from=5 to=1' % ids, 'attend %s from=5 to=3' % ids], db)
    text = qkv_cli.run(qkv, ['--model', model, '--db', db, '-e', 'attend %s from=5 to=1' % ids]).stdout
    if out.get('masked') is not True or 'sliding window of 3' not in text or inside.get('masked') is not False:
        fail('sliding window: attend to a key outside it: masked %r (%r), inside it %r'
             % (out.get('masked'), text[:300], inside.get('masked')))
    else:
        print('sliding window: attend outside the window is masked', flush=True)
    # the titles show a token's control characters (this tokenizer's ids 1 and 3 are the bytes
    # \t and \x03: printed raw to the terminal before), as the attention view does
    for cmd in ('attend %s from=5 to=1' % ids, 'neuron %s layer=0 head=0 query=5' % ids.replace('5,9', '3,9'),
                'lens %s target=#1' % ids):
        out_text = qkv_cli.run(qkv, ['--model', model, '--db', db, '-e', cmd]).stdout
        raw = sorted({c for c in out_text if ord(c) < 32 and c != '\n'})
        if raw or not out_text:
            fail('%s prints control characters raw: %r' % (cmd, raw or out_text[:200]))


def main():
    qkv = qkv_cli.qkv_path()
    torch.set_num_threads(1)
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-analysis-')
    try:
        for name, family, opts in MODELS:
            try:
                run_model(name, family, opts, qkv, tmp)
            except qkv_cli.QkvError as ex:
                fail('%s: %s' % (name, ex))
        hand_built_prev_token(qkv, tmp)
        tiny_vocabulary(qkv, tmp)
        sliding_window(qkv, tmp)
        real_models(qkv, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('max err: head statistics %.3g (tol %g/%g), lens probabilities %.3g (tol %g), patched metric %.3g (tol %g)'
          % (worst['stat'], TOL_STAT, TOL_ENTROPY, worst['prob'], TOL_PROB, worst['metric'], TOL_METRIC))
    print('analysis: %d failure(s), %.1f s' % (len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
