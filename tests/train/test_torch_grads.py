#!/usr/bin/env python3
# test_torch_grads.py - suite 'reference': the trainer's loss and the gradient of every
# parameter equal PyTorch autograd's on the same weights and batch.
#
# For random-weight models that `qkv new-model` writes (GPT-2 tied; Llama with grouped-query
# heads, tied and untied; Qwen2 with q/k/v biases), tests/train/train_grad runs the trainer's
# forward and backward on a batch of B sequences (one target not counted) and writes the
# gradients in the model's own layout; transformers loads the same directory (float32, eager
# attention), computes the mean cross-entropy of the same batch and backpropagates.
#   - loss: |d| <= TOL_LOSS
#   - every parameter's gradient: max |d| <= TOL_GRAD * max(1e-3, max |torch grad|)
# With 1 and 2 threads. Then AdamW: STEPS optimizer steps on the batch split into ACCUM
# micro-batches (gradients accumulated), clipped to a global norm that the gradients exceed,
# learning rate warmed up then decayed by cosine, weight decay on matrices and embeddings only
# (torch: two parameter groups, clip_grad_norm_, torch.optim.AdamW): each step's gradient
# norm and learning rate, and every weight afterwards. AdamW divides each gradient by its own
# size, so where a gradient is below float32's rounding of the sum that made it (about 1e-6
# of the tensor's largest) the update is noise in both implementations. After one step: max
# |d| <= TOL_STEP * LR where |grad| >= GRAD_FLOOR * max |grad| of the tensor, and mean |d| <=
# TOL_STEP * LR over all. After 4 steps the noise has moved weights and so later gradients:
# mean |d| <= TOL_STEPS_MEAN * LR, max |d| <= TOL_STEPS * LR.
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_torch_grads.py QKV_BINARY TRAIN_GRAD_BINARY

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainref import fail, finish, load_causal_lm, np, qkv_cli, tensors, torch  # noqa: E402

TOL_LOSS = 2e-6
TOL_GRAD = 1e-5
TOL_STEP = 1e-4
TOL_STEPS = 0.5
TOL_STEPS_MEAN = 1e-3
GRAD_FLOOR = 1e-4
STD = 0.2
ACCUM, LR, MIN_LR, WD, CLIP, WARMUP = 3, 1e-2, 1e-3, 0.1, 0.5, 2

VARIANTS = [
    ('gpt2', 'gpt2', 'layers=2 heads=4 d=32 ctx=160 seed=51'),
    ('llama-gqa', 'llama', 'layers=2 heads=4 kv_heads=2 d=32 ff=48 ctx=160 seed=52'),
    ('llama-untied', 'llama', 'layers=2 heads=2 d=32 ctx=160 seed=53 tied=false'),
    ('qwen2-bias', 'qwen2', 'layers=2 heads=4 kv_heads=1 d=32 ctx=160 seed=54 tied=false'),
]


def torch_grads(model_dir, inputs, targets):
    m = load_causal_lm(model_dir)  # eval: no dropout (qkv's trainer has none); autograd runs all the same
    logits = m(input_ids=torch.tensor(inputs)).logits
    t = torch.tensor(targets)
    t = torch.where(t < 0, torch.full_like(t, -100), t)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1), ignore_index=-100)
    loss.backward()
    grads = {}
    for name, p in m.named_parameters():
        grads[name] = p.grad.detach().double().numpy()
    return loss.item(), grads


def lr_at(s, STEPS):
    if s < WARMUP:
        return LR * (s + 1) / WARMUP
    span = STEPS - 1 - WARMUP
    prog = min(1.0, (s - WARMUP) / span) if span > 0 else 0.0
    return MIN_LR + (LR - MIN_LR) * 0.5 * (1 + np.cos(np.pi * prog))


def torch_adamw(model_dir, inputs, targets, STEPS):
    """The weights after STEPS AdamW steps, and each step's (gradient norm, learning rate)."""
    m = load_causal_lm(model_dir)
    params = list(m.named_parameters())
    groups = [{'params': [p for _, p in params if p.dim() >= 2], 'weight_decay': WD},
              {'params': [p for _, p in params if p.dim() < 2], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.95), eps=1e-8)
    x, t = torch.tensor(inputs), torch.tensor(targets)
    t = torch.where(t < 0, torch.full_like(t, -100), t)
    mb = x.shape[0] // ACCUM
    trace, first = [], None
    for s in range(STEPS):
        opt.zero_grad()
        for k in range(ACCUM):
            logits = m(input_ids=x[k * mb:(k + 1) * mb]).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                     t[k * mb:(k + 1) * mb].reshape(-1), ignore_index=-100)
            (loss / ACCUM).backward()
        if first is None:
            first = {n: p.grad.detach().double().numpy().copy() for n, p in params}
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), CLIP)
        for g in opt.param_groups:
            g['lr'] = lr_at(s, STEPS)
        opt.step()
        trace.append((float(norm), lr_at(s, STEPS)))
    return {n: p.detach().double().numpy() for n, p in params}, trace, first


def file_name(hf_name, family):
    """The name a parameter of transformers' model has in the checkpoint's layout."""
    if family == 'gpt2' and hf_name.startswith('transformer.'):
        return hf_name[len('transformer.'):]
    return hf_name


def run_variant(name, family, opts, qkv, tgrad, tmp, rng):
    model_dir = os.path.join(tmp, name)
    db = os.path.join(tmp, 'qkv.db')
    p = qkv_cli.new_model(qkv, [family] + opts.split() + ['std=%g' % STD, 'out=' + model_dir], db)
    if p.returncode != 0:
        fail('%s: new-model: %s' % (name, p.stderr.strip()))
        return
    with open(os.path.join(model_dir, 'config.json')) as f:
        V = json.load(f)['vocab_size']
    # 11 tokens, and 150: beyond the trainer's blocks of 64 query rows in causal attention
    batches = []
    for B, T in ((3, 11), (2, 150)):
        inputs = rng.integers(0, V, size=(B, T)).tolist()
        targets = rng.integers(0, V, size=(B, T)).tolist()
        targets[1][4] = -1
        grads_at(name, family, model_dir, inputs, targets, tgrad, tmp)
        batches.append((inputs, targets))
    inputs, targets = batches[0]
    check_adamw(name, family, model_dir, inputs, targets, tgrad, tmp, 1, TOL_STEP, TOL_STEP)
    check_adamw(name, family, model_dir, inputs, targets, tgrad, tmp, 4, TOL_STEPS, TOL_STEPS_MEAN)


def grads_at(name, family, model_dir, inputs, targets, tgrad, tmp):
    B, T = len(inputs), len(inputs[0])
    want_loss, want = torch_grads(model_dir, inputs, targets)
    for threads in (1, 2):
        out = os.path.join(tmp, name + '-grads-%d' % threads)
        ids = ','.join(str(i) for row in inputs + targets for i in row)
        r = subprocess.run([tgrad, model_dir, out, str(B), str(T), str(threads), ids], capture_output=True, text=True)
        if r.returncode != 0:
            fail('%s: train_grad: exit %d: %s' % (name, r.returncode, r.stderr.strip()))
            continue
        got_loss = json.loads(r.stdout)['loss']
        tag = '%s (%d threads, T=%d)' % (name, threads, T)
        if not abs(got_loss - want_loss) <= TOL_LOSS:
            fail('%s: loss expected %.9g, got %.9g' % (tag, want_loss, got_loss))
        got = tensors(out)
        worst = 0.0
        for hf_name, g in want.items():
            fname = file_name(hf_name, family)
            if fname not in got:
                fail('%s: no gradient for %s (file names: %s)' % (tag, fname, sorted(got)[:6]))
                continue
            mine = got[fname]
            if mine.shape != g.shape:
                fail('%s: %s: shape expected %s, got %s' % (tag, fname, g.shape, mine.shape))
                continue
            scale = max(1e-3, float(np.max(np.abs(g))))
            d = np.abs(mine - g)
            i = np.unravel_index(int(np.argmax(d)), d.shape)
            err = float(d[i]) / scale
            worst = max(worst, err)
            if not err <= TOL_GRAD:
                fail('%s: gradient of %s: max err %.3g (relative to %.3g) > %g at %s: torch %.8g, qkv %.8g'
                     % (tag, fname, err, scale, TOL_GRAD, i, g[i], mine[i]))
        extra = set(got) - {file_name(k, family) for k in want}
        if extra:
            fail('%s: gradients of tensors torch does not have: %s' % (tag, sorted(extra)))
        print('ok %-28s loss %.7f (torch %.7f), %d tensors, worst relative gradient error %.2e'
              % (tag, got_loss, want_loss, len(want), worst), flush=True)


def check_adamw(name, family, model_dir, inputs, targets, tgrad, tmp, STEPS, tol, tol_mean):
    want, want_trace, grads = torch_adamw(model_dir, inputs, targets, STEPS)
    B, T = len(inputs), len(inputs[0])
    out = os.path.join(tmp, name + '-adamw-%d' % STEPS)
    ids = ','.join(str(i) for row in inputs + targets for i in row)
    r = subprocess.run([tgrad, model_dir, out, str(B), str(T), '2', ids, 'adamw']
                       + [str(v) for v in (STEPS, ACCUM, LR, MIN_LR, WD, CLIP, WARMUP)], capture_output=True, text=True)
    tag = name + ' adamw %d step%s' % (STEPS, 's' if STEPS > 1 else '')
    if r.returncode != 0:
        fail('%s: train_grad: exit %d: %s' % (tag, r.returncode, r.stderr.strip()))
        return
    trace = json.loads(r.stdout)['norms']
    if len(trace) != STEPS:
        fail('%s: %d steps reported, expected %d' % (tag, len(trace), STEPS))
        return
    for s, ((gn, glr), (wn, wlr)) in enumerate(zip(trace, want_trace)):
        if not abs(gn - wn) <= 1e-5 * max(1.0, wn) or not abs(glr - wlr) <= 1e-7:
            fail('%s: step %d: gradient norm, lr expected %.8g, %.8g; got %.8g, %.8g' % (tag, s, wn, wlr, gn, glr))
    if not all(wn > CLIP for wn, _ in want_trace):
        fail('%s: the gradients did not exceed the clip norm at every step: clipping untested' % tag)
    got = tensors(out)
    worst, total, count = 0.0, 0.0, 0
    for hf_name, w in want.items():
        mine = got.get(file_name(hf_name, family))
        if mine is None or mine.shape != w.shape:
            fail('%s: %s missing or of another shape' % (tag, hf_name))
            continue
        d = np.abs(mine - w)
        total += float(np.sum(d))
        count += d.size
        if STEPS == 1:  # elements whose gradient is above the noise floor
            g = np.abs(grads[hf_name])
            d = np.where(g >= GRAD_FLOOR * max(float(np.max(g)), 1e-30), d, 0.0)
        i = np.unravel_index(int(np.argmax(d)), d.shape)
        worst = max(worst, float(d[i]))
        if not d[i] <= tol * LR:
            fail('%s: %s: max |d| %.3g > %g at %s: torch %.9g, qkv %.9g' % (tag, hf_name, d[i], tol * LR, i, w[i], mine[i]))
    mean = total / max(1, count)
    if not mean <= tol_mean * LR:
        fail('%s: mean weight difference %.3g > %g' % (tag, mean, tol_mean * LR))
    print('ok %-28s x %d micro-batches, gradient norms %s, weight difference max %.2e mean %.2e (lr %g)'
          % (tag, ACCUM, ' '.join('%.3f' % n for n, _ in want_trace), worst, mean, LR), flush=True)


def main():
    qkv, tgrad = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        for name, family, opts in VARIANTS:
            run_variant(name, family, opts, qkv, tgrad, tmp, rng)
    return finish()


if __name__ == '__main__':
    sys.exit(main())
